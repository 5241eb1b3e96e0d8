"""Every user error is one line and exit code 2, never a traceback (issue 12, defect 12)."""

from __future__ import annotations

import errno
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import main


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_directory_given_as_the_config(tmp_path: Path, caplog) -> None:
    assert main(["run", str(tmp_path)]) == 2
    assert len(errors(caplog)) == 1 and "is a directory" in errors(caplog)[0]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["run", "demo", "-o", "seeds=[0,1"], "not valid YAML"),
        (["data", "prepare", "--release", "2023", "--reviews", "x", "--param", "a=[1", "--out", "o"], "not valid YAML"),
        (
            [
                "run",
                "demo",
                "-o",
                "dataset.source=files",
                "-o",
                "dataset.release='2023'",
                "-o",
                "dataset.reviews=/no/such",
            ],
            "does not exist",
        ),
    ],
)
def test_bad_values_on_the_command_line(argv: list[str], needle: str, caplog) -> None:
    assert main(argv) == 2
    assert len(errors(caplog)) == 1 and needle in errors(caplog)[0]


def test_full_disk_is_one_line(monkeypatch, caplog) -> None:
    import benchmark.runner.pipeline as pipeline

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/results/demo/x/units/A.parquet")

    monkeypatch.setattr(pipeline, "run_experiment", full)
    assert main(["run", "demo"]) == 2
    (msg,) = errors(caplog)
    assert "No space left on device" in msg and "A.parquet" in msg and "free some disk space" in msg


def test_help_does_not_import_torch() -> None:
    # rough edge: `--help` took 3.6 s and 735 MB because every command's module imported torch
    code = (
        "import sys\n"
        "from benchmark.cli import main\n"
        "for argv in (['--help'], ['run', '--help'], ['describe', '--help'], ['features', '--help'],"
        " ['data', 'prepare', '--help'], ['evaluate', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'open_clip',"
        " 'pytorch_lightning', 'lightning', 'scipy', 'matplotlib')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("command", ["run", "describe", "features", "encode"])
def test_an_edited_split_is_one_line_in_every_command(tmp_path: Path, command: str, caplog) -> None:
    import pandas as pd

    d = tmp_path / "s"
    _tiny_split().save(d)
    items = pd.read_parquet(d / "items.parquet")
    items["title"] = "edited"
    items.to_parquet(d / "items.parquet", index=False)
    argv = {
        "run": ["run", str(_run_config(tmp_path, d))],
        "describe": ["describe", str(d), "--describer", "precomputed", "--descriptions-file", str(tmp_path / "x")],
        "features": ["features", str(d), "--kind", "pixels", "--out", str(tmp_path / "o")],
        "encode": ["encode", str(d), "--text", "title", "--out", str(tmp_path / "o")],
    }[command]
    assert main(argv) == 2
    (msg,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "catalogue checksum" in msg


def _run_config(tmp: Path, split_dir: Path) -> Path:
    import yaml

    cfg = {
        "experiment": "edited",
        "dataset": {"name": "edited", "source": "prepared", "path": str(split_dir)},
        "models": [{"name": "Pop", "model": "popularity"}],
        "logging": {"logger": "none"},
        "results_dir": str(tmp / "r"),
        "cache_dir": str(tmp / "c"),
    }
    path = tmp / "edited.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _tiny_split():
    import pandas as pd

    from benchmark.split import Split

    parts = {
        "train": pd.DataFrame({"user": ["u1", "u2"], "item": ["a", "b"], "rating": 1.0, "timestamp": [1, 2]}),
        "valid": pd.DataFrame({"user": ["u1"], "item": ["c"], "rating": 1.0, "timestamp": [3]}),
        "test": pd.DataFrame({"user": ["u2"], "item": ["a"], "rating": 1.0, "timestamp": [4]}),
    }
    return Split.from_parts(parts, None, "test", {})
