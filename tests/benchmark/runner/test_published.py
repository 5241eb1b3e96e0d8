"""Shipped published numbers: one file per source, a dataset picked from a multi-dataset table,
the configs' paper names present in their table, MMRec's table as MMRec prints it, and `claims`
on an mmrec-* run putting MMRec's numbers and caveats beside ours."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from benchmark.errors import ConfigError
from benchmark.runner.claims import claims_report, load_published
from benchmark.runner.config import load_config, shipped_configs

METRICS = ["recall@10", "recall@20", "recall@50", "ndcg@10", "ndcg@20", "ndcg@50"]


def test_a_dataset_is_picked_from_mmrecs_table():
    baby = load_published("mmrec_published:baby")
    assert baby["methods"]["FREEDOM"]["recall@20"] == 0.0992 and "19,445 users" in baby["dataset"]
    assert any("MMRec's own processed files" in c for c in baby["protocol_caveats"])
    assert baby["claims"][0]["better"] == "FREEDOM"
    assert "LATTICE" not in load_published("mmrec_published:elec")["methods"]  # printed as "-"
    with pytest.raises(ConfigError, match=r"name one, mmrec_published:<baby\|sports\|foodrec\|elec>"):
        load_published("mmrec_published")
    with pytest.raises(ConfigError, match="covers one dataset"):
        load_published("vlm4rec_published:baby")
    with pytest.raises(ConfigError, match="shipped: mmrec_published, vlm4rec_published"):
        load_published("no_such_table")


def test_a_config_naming_a_missing_table_is_refused():
    with pytest.raises(ConfigError, match="published 'mmrec_published' covers several datasets"):
        load_config("mmrec-baby", ["published=mmrec_published"])


def test_shipped_configs_map_to_methods_of_their_table():
    for name in shipped_configs():
        cfg = load_config(name)
        if cfg.published is None:
            continue
        methods = load_published(cfg.published)["methods"]
        mapped = [m.paper_name for m in cfg.models if m.paper_name]
        assert mapped and set(mapped) <= set(methods), (name, set(mapped) - set(methods))


def test_paper_configs_cover_every_fusion_of_the_text_claim():
    claim = next(c for c in load_published()["claims"] if c["id"] == "text-beats-every-fusion")
    for name in ("paper-clothing", "paper-clothing-fair", "paper-clothing-import"):
        mapped = {m.paper_name for m in load_config(name).models}
        assert set(claim["than"]) <= mapped, (name, set(claim["than"]) - mapped)
        assert {"SMORE (LLaVA + vision)", "SMORE (BERT + vision)"} <= mapped


def test_mmrec_table_is_mmrecs_readme(mmrec_src):
    readme = mmrec_src.parent / "evaluation" / "README.md"
    section = readme.read_text(encoding="utf-8").split("## Experimental Results")[1].split("###")[0]
    printed: dict[str, dict[str, list[str]]] = {}
    dataset = ""
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 8 or "Model" in cells or set(cells[1]) <= {"-"}:
            continue
        dataset = cells[0].strip("*").lower() or dataset
        printed.setdefault(dataset, {})[cells[1]] = [re.sub(r"[*_]", "", c) for c in cells[2:]]
    assert set(printed) == {"baby", "sports", "foodrec", "elec"}
    for ds, models in printed.items():
        shipped = load_published(f"mmrec_published:{ds}")["methods"]
        assert set(shipped) == {m for m, v in models.items() if v[0] != "-"}
        for model, values in shipped.items():
            assert [values[k] for k in METRICS] == [float(v) for v in models[model]], (ds, model)


def test_claims_on_an_mmrec_run_show_mmrecs_numbers_beside_ours(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "run"
    (d / "units").mkdir(parents=True)
    names = {"FREEDOM": "FREEDOM", "BM3": "BM3", "BPR-MF": "BPR"}
    for ours in names:
        frame = pd.DataFrame({"user_id": np.arange(50), **{k: rng.uniform(0, 0.2, 50) for k in METRICS}})
        frame.to_parquet(d / "units" / f"{ours}.parquet")
        (d / "units" / f"{ours}.json").write_text(json.dumps({"model": ours, "seed": None}))
    models = [{"name": ours, "model": "x", "paper_name": paper} for ours, paper in names.items()]
    config = {"experiment": "mmrec-baby", "dataset": {"name": "t"}, "models": models}
    (d / "config.resolved.yaml").write_text(yaml.safe_dump({**config, "published": "mmrec_published:baby"}))
    (d / "split.json").write_text(json.dumps({"fingerprint": "f" * 64}))
    md, report = claims_report(d)
    row = next(r for r in report["table"] if r["paper_method"] == "FREEDOM" and r["metric"] == "recall@20")
    assert row["published"] == 0.0992 and row["ours"] is not None
    assert "MMRec's own processed files" in md and "github.com/enoche/MMRec" in md
    (claim,) = report["claims"]
    assert claim["verdict"] in ("not testable", "contradicted") and "LATTICE" in claim["missing"]
    assert claim["n_pairs_tested"] == 2  # FREEDOM vs BM3 and vs BPR


def test_mmrec_configs_have_mmrecs_models():
    for name in ("mmrec-baby", "mmrec-sports", "mmrec-clothing"):
        models = {m.model for m in load_config(name).models}
        for model in ("FREEDOM", "LGMRec", "BM3", "LATTICE", "SMORE", "MGCN", "DRAGON"):
            assert f"mmrec-{model.lower()}" in models, (name, model)
