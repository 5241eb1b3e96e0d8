"""Parity of the MMRec adapter with MMRec itself: the same exported files, several seeds, both sides.

    python -m baselines.mmrec_parity [--models FREEDOM,SMORE,LGMRec,BM3] [--seeds 0,1,2]
                                     [--epochs 30] [--patience 5] [--users 1500 --items 600]
                                     [--mmrec-src PATH] [--json OUT.json]

A generated split with real content signal (:func:`make_synthetic`: topic latents visible,
noisily, in an "image" and a "text" feature set) is exported with
:func:`benchmark.data.interop.export_mmrec`. For each model and seed:

- **MMRec**: its own ``src/main.py`` runs as a subprocess from the user's checkout on those
  files, with a working directory whose ``configs/`` are the checkout's YAMLs with ``use_gpu:
  False``, the seed, epochs and early-stopping patience set, and each grid key fixed to the value
  the adapter uses (its first). Its "best valid" block (test metrics at the best validation
  epoch, MMRec's evaluator) is read from its log.
- **Ours**: the adapter (``mmrec-<model>``) with the same seed, epochs and patience, scored by
  our evaluator twice: with our test masking (train + valid items masked) and with MMRec's
  (train items only; MMRec does not mask validation items at test time), the latter being the
  like-for-like number.

MMRec's ``main.py`` needs the same shims as the adapter (:mod:`baselines.mmrec_compat`, plus the
``np.float`` alias its evaluator uses); the subprocess applies them before running ``main.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from baselines import mmrec_config as mconf
from baselines.mmrec_compat import locate_mmrec
from benchmark.data.interop import export_mmrec
from benchmark.demo.synthetic import make_synthetic
from benchmark.evaluation import evaluate
from benchmark.evaluation.evaluator import evaluate_topk
from benchmark.evaluation.masking import mask_with_csr, part_csr
from benchmark.evaluation.ranking import topk_items
from benchmark.features import ItemFeatures
from benchmark.registry import create_model
from benchmark.split import Split

log = logging.getLogger(__name__)

KEYS = ("recall@20", "ndcg@20")
DATASET = "parity"
# Run MMRec's main.py after the shims; argv is what main.py parses (-m MODEL -d DATASET).
_BOOTSTRAP = """
import runpy, sys
from baselines import mmrec_compat as c
src = sys.argv[1]
c.check_requirements(c.locate_mmrec(src))
c.apply_numpy_aliases(); c.apply_scipy_aliases(); c.install_torch_scatter_standin()
held = [c.device_redirect("cpu"), c.gpu_construction_semantics()]  # kept referenced: never exited
for ctx in held:
    ctx.__enter__()
sys.path.insert(0, src)
sys.argv = [src + "/main.py"] + sys.argv[2:]
runpy.run_path(src + "/main.py", run_name="__main__")
"""


# ------------------------------------------------------------------------------------- MMRec side
def mmrec_workdir(src: Path, root: Path, model: str, seed: int, epochs: int, patience: int) -> Path:
    """A working directory for ``main.py`` whose ``configs/`` fix this run's settings."""
    work = root / f"mmrec-{model}-{seed}"
    (work / "configs" / "dataset").mkdir(parents=True, exist_ok=True)
    (work / "configs" / "model").mkdir(parents=True, exist_ok=True)
    overall = mconf.read_yaml(src / "configs" / "overall.yaml")
    overall.update(
        {
            "use_gpu": False,
            "seed": [seed],
            "epochs": epochs,
            "stopping_step": patience - 1,
            "data_path": str(root / "data") + "/",
            "save_recommended_topk": False,
        }
    )
    own = mconf.model_yaml(src, model)
    resolved = mconf.resolve_model_config(src, model, {})
    grid = mconf.grid_keys(own)
    fixed = {k: ([resolved[k]] if k in grid and k not in mconf.TRAIN_KEYS else own[k]) for k in own}
    dataset = yaml.safe_load((root / "data" / DATASET / f"{DATASET}.yaml").read_text(encoding="utf-8"))
    for path, data in (("overall.yaml", overall), (f"dataset/{DATASET}.yaml", dataset), (f"model/{model}.yaml", fixed)):
        (work / "configs" / path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return work


def run_mmrec_main(src: Path, root: Path, model: str, seed: int, epochs: int, patience: int) -> dict[str, Any]:
    """MMRec's ``main.py`` on the exported files; its test and valid metrics at its best valid epoch."""
    work = mmrec_workdir(src, root, model, seed, epochs, patience)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), str(src)]))
    proc = subprocess.run(
        [sys.executable, "-c", _BOOTSTRAP, str(src), "-m", model, "-d", DATASET],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    logs = sorted((work / "log").glob("*.log"))
    text = logs[-1].read_text(encoding="utf-8") if logs else proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"MMRec main.py failed for {model} seed {seed}:\n{(proc.stderr or text)[-3000:]}")
    return parse_mmrec_log(text)


def parse_mmrec_log(text: str) -> dict[str, Any]:
    """MMRec's final "BEST" block (``Valid:``/``Test:`` metric lines) and its best epoch."""
    block = text.rsplit("BEST", 1)[-1]
    out: dict[str, Any] = {}
    for part in ("Valid", "Test"):
        m = re.search(rf"{part}: (.*)", block)
        if not m:
            raise ValueError(f"no {part}: line in MMRec's log")
        out[part.lower()] = {k.lower(): float(v) for k, v in re.findall(r"([\w@]+): ([\d.]+)", m.group(1))}
    scores = [float(v) for v in re.findall(r"valid_score: ([\d.]+)", text)]
    out["best_epoch"] = int(np.argmax(scores)) + 1 if scores else None  # first epoch with the max
    out["epochs_run"] = len(scores)
    return out


# ------------------------------------------------------------------------------------- our side
def mmrec_masked_test(model: Any, split: Split, ks: Sequence[int] = (20,)) -> dict[str, float]:
    """Our metrics on ``split.test`` with MMRec's masking (train items only) and its users (in train)."""
    test = split.test
    users = np.intersect1d(test["user_id"].unique(), split.train["user_id"].unique())
    lists = []
    for start in range(0, len(users), 1024):
        uid = torch.as_tensor(users[start : start + 1024], dtype=torch.long)
        scores = model.score(uid).float().cpu().clone()
        mask_with_csr(scores, uid, part_csr(split, ("train",)))
        lists.append(topk_items(scores, max(ks))[0].numpy())
    rel = test.loc[test["user_id"].isin(users), ["user_id", "item_id"]].rename(
        columns={"user_id": "user", "item_id": "item"}
    )
    res = evaluate_topk(np.concatenate(lists), rel, ks, ("recall", "ndcg"), users=users.tolist())
    return {k: float(v) for k, v in res.means().items()}


def run_ours(
    src: Path, split: Split, feats: dict[str, ItemFeatures], model: str, seed: int, epochs: int, patience: int
) -> dict[str, Any]:
    """The adapter on the same split and features; test metrics under both masking rules."""
    rec = create_model(
        f"mmrec-{model.lower()}",
        image_feature="image",
        text_feature="text",
        mmrec_src=str(src),
        seed=seed,
        train={"max_epochs": epochs, "patience": patience},
    ).fit(split, feats)
    ours = evaluate(rec, split, part="test", ks=(20,), metrics=("recall", "ndcg"), progress=False).means()
    return {
        "test_mmrec_masking": mmrec_masked_test(rec, split),
        "test": {k: float(v) for k, v in ours.items()},
        "best_valid": rec.best_value,
        "best_epoch": rec.best_epoch,
        "epochs_run": len(rec.loss_history),
    }


# ------------------------------------------------------------------------------------- both
def parity(
    models: Sequence[str],
    seeds: Sequence[int],
    epochs: int,
    patience: int,
    n_users: int,
    n_items: int,
    mmrec_src: str | None = None,
) -> pd.DataFrame:
    """One row per (model, seed): MMRec's test metrics and ours, best epochs."""
    src = locate_mmrec(mmrec_src)
    split, raw = make_synthetic(n_users, n_items, 64, text_dim=48, seed=7)
    feats = {"image": raw["clip_image"], "text": raw["text"]}
    root = Path(tempfile.mkdtemp(prefix="mmrec-parity-"))
    rows = []
    try:
        export_mmrec(split, root / "data" / DATASET, DATASET, features=feats)
        for model in models:
            for seed in seeds:
                theirs = run_mmrec_main(src, root, model, seed, epochs, patience)
                ours = run_ours(src, split, feats, model, seed, epochs, patience)
                row: dict[str, Any] = {"model": model, "seed": seed}
                for key in KEYS:
                    row[f"mmrec_{key}"] = theirs["test"][key]
                    row[f"ours_{key}"] = round(ours["test_mmrec_masking"][key], 4)
                    row[f"ours_ourmask_{key}"] = round(ours["test"][key], 4)
                row["mmrec_best_epoch"], row["ours_best_epoch"] = theirs["best_epoch"], ours["best_epoch"]
                row["mmrec_valid_recall@20"], row["ours_valid_recall@20"] = (
                    theirs["valid"]["recall@20"],
                    round(ours["best_valid"], 4),
                )
                log.info("%s", row)
                rows.append(row)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model: mean and sd over seeds of each side, and the mean paired difference."""
    out = []
    for model, g in table.groupby("model", sort=False):
        row: dict[str, Any] = {"model": model, "seeds": len(g)}
        for key in KEYS:
            a, b = g[f"mmrec_{key}"], g[f"ours_{key}"]
            row[f"mmrec {key}"] = f"{a.mean():.4f} ± {a.std(ddof=1) if len(g) > 1 else 0:.4f}"
            row[f"ours {key}"] = f"{b.mean():.4f} ± {b.std(ddof=1) if len(g) > 1 else 0:.4f}"
            row[f"max |diff| {key}"] = f"{(a - b).abs().max():.4f}"
        out.append(row)
    return pd.DataFrame(out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="FREEDOM,SMORE,LGMRec,BM3")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--patience", type=int, default=5, help="evaluations without improvement (MMRec: stopping_step + 1)")
    p.add_argument("--users", type=int, default=1500)
    p.add_argument("--items", type=int, default=600)
    p.add_argument("--mmrec-src", default=None, help="MMRec's src/ (default: $VLM4REC_MMREC_SRC)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, help="also write the per-seed table here")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if a.threads:
        torch.set_num_threads(a.threads)
    seeds = [int(s) for s in a.seeds.split(",")]
    table = parity(a.models.split(","), seeds, a.epochs, a.patience, a.users, a.items, a.mmrec_src)
    print(table.to_markdown(index=False))
    print()
    print(summary(table).to_markdown(index=False))
    if a.json:
        Path(a.json).write_text(json.dumps(table.to_dict(orient="records"), indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
