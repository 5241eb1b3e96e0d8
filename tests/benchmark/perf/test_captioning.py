"""The captioning perf script's CPU path (tiny model): runs, reports both methods and the ratio."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.slow
def test_captioning_perf_tiny(capsys):
    from benchmark.perf.captioning import main

    assert (
        main(["--tiny", "--n-items", "3", "--batch-sizes", "1,3", "--dtypes", "fp32,4bit", "--max-new-tokens", "3"])
        == 0
    )
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith(("paper-script", "one-item-loop", "vlm4rec-batched"))]
    assert len(lines) == 4  # the paper's script (batch 8), the one-item loop, two batch sizes for fp32
    assert lines[0].split()[:3] == ["paper-script", "fp32", "8"] and lines[0].rstrip().endswith("1.00x")
    assert all(ln.rstrip().endswith("x") for ln in lines)
    # tokens/s column: forced length 3 → tokens = 3 * items
    for ln in lines:
        f = ln.split()
        assert abs(float(f[6]) - 3.0 * float(f[5])) <= 0.05 + 3 * 0.005  # printed to 1 and 2 decimals
    if not torch.cuda.is_available():
        assert "SKIPPED dtype=4bit" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_full_size_needs_a_gpu(capsys):
    from benchmark.perf.captioning import main

    with pytest.raises(SystemExit):
        main(["--size", "7b"])
    assert "--size 7b is built in fp16 on a CUDA device" in capsys.readouterr().err


@pytest.mark.slow
def test_gpu_check_smoke_path_runs_every_step(tmp_path, capsys):
    """The GPU script's CPU-size path: the evaluator step and the captioning table, as JSON too."""
    import json

    from benchmark.perf.gpu_check import main

    assert main(["--smoke", "--out", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "r.json").read_text())
    ev = result["evaluator"]
    assert ev["users"] == 2000 and ev["ours_s"] > 0 and ev["floor_s"] > 0 and 0 <= ev["recall@20"] <= 1
    rows = result["captioning"]["rows"]
    assert [(r["method"], r["batch_size"]) for r in rows] == [
        ("paper-loop", 1),
        ("vlm4rec-batched", 1),
        ("vlm4rec-batched", 2),
    ]
    assert all(abs(r["tokens_per_s"] / r["items_per_s"] - 3) < 0.05 for r in rows)  # forced length
    assert rows[0]["speedup_vs_loop"] == 1.0 and all(r["projected_clothing_h"] > 0 for r in rows)
    assert "38,493 items" in out and "evaluator 2,000 users" in out
