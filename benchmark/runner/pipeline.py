"""``vlm4rec-bench run``: dataset → split → features → models × seeds → per-user metrics →
statistics → leaderboard, resumable unit by unit.

Layout of one run, ``<results_dir>/<experiment>/<timestamp>/``::

    config.resolved.yaml   the fully resolved config (defaults filled in)
    split.json             split fingerprint, summary, dataset checksums
    units/NAME.json        one (model, seed) unit: valid + test means, timings, model params
    units/NAME.parquet     its per-user test metrics (written atomically when the unit is done)
    per_user_metrics.parquet   all units, long format (model, seed, user_id, metrics…)
    metrics.json           means per model (averaged over seeds), seed spread, subsets
    statistics.json        paired tests vs the baseline, corrected over the whole table
    leaderboard.{md,tex,csv}, plots/*.png, provenance.json, wandb/

Resuming: a re-run of the same resolved config reuses the latest run directory of that
config and skips every unit whose files exist; ``force=True`` starts a new directory.
Nothing in ``metrics.json``/``statistics.json``/the leaderboard depends on wall time, so two
runs with the same seeds give identical files.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from benchmark.configuration import to_dict
from benchmark.features import ItemFeatures
from benchmark.io import atomic_open, read_json, write_json, write_parquet
from benchmark.producers import FeatureContext, produce
from benchmark.registry import create_model, get_model_factory
from benchmark.runner.config import ExperimentConfig
from benchmark.runner.provenance import device_info, git_commit, package_versions
from benchmark.runner.tracking import Tracker
from benchmark.split import Split

log = logging.getLogger(__name__)


@dataclass
class Unit:
    """One (model, seed) run."""

    model: str
    seed: int | None

    @property
    def key(self) -> str:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.model)
        return safe if self.seed is None else f"{safe}__seed{self.seed}"


@dataclass
class RunResult:
    run_dir: Path
    split: Split
    means: dict[str, dict[str, float]]
    tests: list[dict[str, Any]]
    units_run: list[str] = field(default_factory=list)
    units_skipped: list[str] = field(default_factory=list)


class StageTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        log.info("stage %s …", stage)
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0
            log.info("stage %s done in %.1f s", stage, self.seconds[stage])


def config_hash(cfg: ExperimentConfig) -> str:
    """Hash of everything that changes results (logging and output paths excluded)."""
    d = to_dict(cfg)
    for k in ("logging", "results_dir", "description"):
        d.pop(k, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resolve_run_dir(cfg: ExperimentConfig, force: bool = False, run_dir: str | Path | None = None) -> Path:
    """The run directory: given, or the latest one of the same config (resume), or a new one."""
    if run_dir is not None:
        return Path(run_dir)
    base = Path(cfg.results_dir) / cfg.experiment
    h = config_hash(cfg)
    if not force and base.is_dir():
        for d in sorted((p for p in base.iterdir() if p.is_dir()), reverse=True):
            marker = d / "config.hash"
            if marker.exists() and marker.read_text().strip() == h:
                log.info("resuming %s (same config %s)", d, h)
                return d
    stamp = time.strftime("%Y%m%d-%H%M%S")
    d = base / stamp
    n = 1
    while d.exists():
        d = base / f"{stamp}-{n}"
        n += 1
    return d


# ---------------------------------------------------------------------------------------- dataset
def dataset_dirs(cfg: ExperimentConfig) -> tuple[Path, Path]:
    """(raw dir, split dir) in the data cache for this dataset config."""
    ds = cfg.dataset
    root = Path(cfg.cache_dir) / ds.name
    key = hashlib.sha256(json.dumps(to_dict(ds), sort_keys=True, default=str).encode()).hexdigest()[:10]
    return root / "raw", root / f"{ds.protocol if ds.source in ('demo', 'files') else ds.source}-{ds.split_seed}-{key}"


def build_split(cfg: ExperimentConfig, timer: StageTimer) -> tuple[Split, Path, Path | None, dict[str, Any]]:
    """Build (or load the cached) split for ``cfg.dataset``; also return dataset file checksums."""
    ds = cfg.dataset
    raw_dir, split_dir = dataset_dirs(cfg)
    checksums: dict[str, Any] = {}
    if (split_dir / "split.json").exists():
        split = Split.load(split_dir)
        checksums = recorded_checksums(split.params)
        log.info("using cached split %s (fingerprint %s)", split_dir, split.fingerprint[:12])
        return split, split_dir, raw_dir if raw_dir.exists() else None, checksums

    with timer("dataset"):
        if ds.source == "demo":
            from benchmark.demo import generate_demo

            # relative image URLs keep the files (and so the split's recorded checksums and its
            # fingerprint) identical wherever the cache lives
            paths = generate_demo(raw_dir, **({"image_urls": "relative"} | dict(ds.demo)))
            split = _prepare_files(cfg, "2023", str(paths.reviews), str(paths.meta), split_dir)
        elif ds.source == "files":
            split = _prepare_files(cfg, ds.release, ds.reviews, ds.meta, split_dir)
            raw_dir = Path(ds.reviews).parent  # type: ignore[arg-type]
        elif ds.source == "prepared":
            split_dir = Path(ds.path)  # type: ignore[arg-type]
            split = Split.load(split_dir)
            raw_dir = None
        elif ds.source == "official-2023":
            from benchmark.data.interop import import_2023_official

            catalogue = None
            if ds.meta:
                from benchmark.data.readers import read_meta

                catalogue, _ = read_meta(ds.meta, "2023", strict=ds.strict)
            split = import_2023_official(ds.path, ds.category, ds.variant or "last_out_w_his", catalogue=catalogue)
            split.save(split_dir)
            raw_dir = Path(ds.path)  # type: ignore[arg-type]
        elif ds.source in ("align-macridvae", "mmrec"):
            from benchmark.data import interop

            if ds.source == "align-macridvae":
                split, feats = interop.import_align_macridvae(ds.path)
            else:
                split, feats = interop.import_mmrec(ds.path, ds.category or ds.name)
            split.save(split_dir)
            for f in feats.values():
                f.save(split_dir / "features")
            raw_dir = Path(ds.path)  # type: ignore[arg-type]
        else:  # pragma: no cover - the config validator rejects it
            raise ValueError(f"unknown dataset source {ds.source}")
    return split, split_dir, raw_dir, recorded_checksums(split.params)


def recorded_checksums(params: Any, prefix: str = "") -> dict[str, str]:
    """Every ``sha256`` the split's parameters record for its source files, by dotted key path."""
    out: dict[str, str] = {}
    if isinstance(params, dict):
        if isinstance(params.get("sha256"), str):
            out[prefix or "source"] = params["sha256"]
        for k, v in params.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if k == "files" and isinstance(v, dict):  # importers record {file name: sha256}
                out.update({f"{key}.{name}": h for name, h in v.items() if isinstance(h, str) and len(h) == 64})
            elif k != "sha256":
                out.update(recorded_checksums(v, key))
    elif isinstance(params, list):
        for i, v in enumerate(params):
            out.update(recorded_checksums(v, f"{prefix}[{i}]"))
    return out


def _prepare_files(
    cfg: ExperimentConfig, release: str | None, reviews: str | None, meta: str | None, out: Path
) -> Split:
    from benchmark.prepare import PrepareConfig, prepare

    ds = cfg.dataset
    pc = PrepareConfig(
        release=release,
        reviews=reviews,
        meta=meta,
        user_kcore=ds.user_kcore if ds.user_kcore is not None else ds.kcore,
        item_kcore=ds.item_kcore if ds.item_kcore is not None else ds.kcore,
        dedupe=ds.dedupe,
        image_only=ds.image_only,
        protocol=ds.protocol,
        seed=ds.split_seed,
        protocol_params=dict(ds.protocol_params),
        strict=ds.strict,
        out=str(out),
    )
    return prepare(pc)


# --------------------------------------------------------------------------------------- features
def build_features(
    cfg: ExperimentConfig, split: Split, split_dir: Path, raw_dir: Path | None, timer: StageTimer
) -> dict[str, ItemFeatures]:
    """Produce (or load from cache) every configured feature set."""
    cache = Path(cfg.cache_dir) / cfg.dataset.name / "cache"
    feats: dict[str, ItemFeatures] = {}
    imported = split_dir / "features"
    if imported.is_dir():  # features shipped with an imported dataset (Align-MacridVAE, MMRec)
        for meta in sorted(imported.glob("*.json")):
            feats[meta.stem] = ItemFeatures.load(imported, meta.stem)
    ctx = FeatureContext(
        split=split, split_dir=split_dir, cache_dir=cache, raw_dir=raw_dir, device=cfg.evaluation.device, progress=True
    )
    with timer("features"):
        for fc in cfg.features:
            if fc.name in feats:  # an imported dataset shipped it (e.g. Align-MacridVAE's CLIP features)
                log.info("features %s: using the dataset's own file, not producer %s", fc.name, fc.producer)
                continue
            key = hashlib.sha256(
                json.dumps([fc.producer, fc.params, split.fingerprint], sort_keys=True, default=str).encode()
            ).hexdigest()[:16]
            fdir = cache / "features"
            fname = f"{fc.name}-{key}"
            if (fdir / f"{fname}.safetensors").exists():
                f = ItemFeatures.load(fdir, fname)
                f.name = fc.name
                log.info("features %s: cached (%s)", fc.name, fname)
            else:
                t0 = time.perf_counter()
                f = produce(fc.producer, ctx, fc.params, output_name=fc.name)
                f.provenance["wall_seconds"] = round(time.perf_counter() - t0, 3)
                f.provenance["split_fingerprint"] = split.fingerprint
                stored = ItemFeatures(fname, f.values, f.mask, f.provenance)
                stored.save(fdir)
                log.info("features %s: %d×%d, coverage %.1f%%", fc.name, f.n_items, f.dim, 100 * f.coverage)
            feats[fc.name] = f
    return feats


# ----------------------------------------------------------------------------------------- models
def units_for(cfg: ExperimentConfig) -> list[Unit]:
    """Stochastic models (constructor takes ``seed``) run once per seed; others once."""
    out = []
    for m in cfg.models:
        takes_seed = "seed" in inspect.signature(get_model_factory(m.model)).parameters
        if takes_seed:
            out.extend(Unit(m.name, s) for s in (m.seeds or cfg.seeds))
        else:
            out.append(Unit(m.name, None))
    return out


def run_unit(
    cfg: ExperimentConfig, unit: Unit, split: Split, feats: dict[str, ItemFeatures], run_dir: Path, tracker: Tracker
) -> dict[str, Any]:
    """Fit one model with one seed, evaluate on valid then (once) on test, write atomically."""
    from benchmark.evaluation import evaluate

    mc = next(m for m in cfg.models if m.name == unit.model)
    params = dict(mc.params)
    if unit.seed is not None:
        params["seed"] = unit.seed
    seed = unit.seed if unit.seed is not None else 0
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    model = create_model(mc.model, **params)
    if hasattr(model, "set_logger"):
        model.set_logger(tracker.lightning_logger())
    ev = cfg.evaluation
    t0 = time.perf_counter()
    model.fit(split, feats)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    users = {
        p: users_with_feature(split, feats[ev.users_with_feature], p) if ev.users_with_feature else None
        for p in ("valid", "test")
    }
    valid = evaluate(
        model,
        split,
        part="valid",
        ks=tuple(ev.ks),
        metrics=tuple(ev.metrics),
        batch_size=ev.batch_size,
        device=ev.device,
        users=users["valid"],
        progress=False,
    )
    test = evaluate(
        model,
        split,
        part="test",
        ks=tuple(ev.ks),
        metrics=tuple(ev.metrics),
        batch_size=ev.batch_size,
        device=ev.device,
        users=users["test"],
        progress=False,
        keep_topk=ev.subsets,
    )  # the cold-start subset re-scores the kept top-K lists
    eval_s = time.perf_counter() - t1
    subsets: dict[str, Any] = {}
    if ev.subsets:
        try:
            from benchmark.evaluation.subsets import subset_metrics

            sub = subset_metrics(test, split)
            subsets = json.loads(sub.to_json(orient="records"))
        except Exception as exc:  # subsets are a report extra; never lose the unit for them
            log.warning("subset metrics failed for %s: %s", unit.key, exc)
    describe = model.describe() if hasattr(model, "describe") else {"class": type(model).__name__, "params": params}
    record = {
        "model": unit.model,
        "registered_model": mc.model,
        "seed": unit.seed,
        "params": params,
        "model_info": describe,
        "valid": {k: float(v) for k, v in valid.means().items()},
        "test": {k: float(v) for k, v in test.means().items()},
        "n_users_test": int(test.n_users),
        "n_excluded_test": int(test.n_excluded),
        "n_users_valid": int(valid.n_users),
        "subsets": subsets,
        "timing": {"fit_seconds": round(fit_s, 3), "eval_seconds": round(eval_s, 3)},
        "split_fingerprint": split.fingerprint,
    }
    units = run_dir / "units"
    per_user = test.per_user.copy()
    write_parquet(units / f"{unit.key}.valid.parquet", valid.per_user)
    write_parquet(units / f"{unit.key}.parquet", per_user)
    write_json(units / f"{unit.key}.json", record)  # written last: its presence marks the unit done
    tracker.log_metrics(
        {f"valid/{k}": v for k, v in record["valid"].items()} | {f"test/{k}": v for k, v in record["test"].items()}
    )
    return record


def users_with_feature(split: Split, feature: ItemFeatures, part: str) -> np.ndarray:
    """Users whose train part and ``part`` each contain at least one item that has ``feature``."""
    has = feature.mask.numpy()
    ok = None
    for p in ("train", part):
        df = split.part(p)
        u = np.unique(df["user_id"].to_numpy()[has[df["item_id"].to_numpy()]])
        ok = u if ok is None else np.intersect1d(ok, u)
    return ok


# -------------------------------------------------------------------------------------- aggregate
def load_units(run_dir: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[pd.DataFrame]]]:
    """Finished units of a run directory, grouped by model."""
    records: dict[str, list[dict[str, Any]]] = {}
    frames: dict[str, list[pd.DataFrame]] = {}
    for meta in sorted((run_dir / "units").glob("*.json")):
        rec = read_json(meta)
        pq = meta.with_suffix(".parquet")
        if not pq.exists():
            continue
        records.setdefault(rec["model"], []).append(rec)
        frames.setdefault(rec["model"], []).append(pd.read_parquet(pq))
    return records, frames


def summarise(
    run_dir: Path,
    model_order: list[str],
    baseline: str,
    test: str,
    correction: str,
    alpha: float,
    n_resamples: int,
    fingerprint: str,
    plot_metric: str | None,
    metrics_order: list[str] | None = None,
    title: str = "",
) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]], dict[str, Any]]:
    """Seed-average per-user metrics, test against the baseline, write tables and plots."""
    from benchmark.report import plots, tables
    from benchmark.stats import aggregate_seeds, compare

    records, frames = load_units(run_dir)
    present = [m for m in model_order if m in frames]
    if not present:
        raise RuntimeError(f"no finished units in {run_dir}")
    per_model: dict[str, pd.DataFrame] = {}
    spread: dict[str, Any] = {}
    long_frames = []
    for m in present:
        agg, sp = aggregate_seeds(frames[m])
        per_model[m] = agg
        spread[m] = sp
        for rec, df in zip(records[m], frames[m]):
            long_frames.append(df.assign(model=m, seed=-1 if rec["seed"] is None else rec["seed"]))
    long = pd.concat(long_frames, ignore_index=True)
    cols = ["model", "seed", "user_id"] + [c for c in long.columns if c not in ("model", "seed", "user_id")]
    write_parquet(run_dir / "per_user_metrics.parquet", long[cols])

    metric_cols = metrics_order or [c for c in per_model[present[0]].columns if c != "user_id"]
    means = {m: {c: float(per_model[m][c].mean()) for c in metric_cols} for m in present}
    base = baseline if baseline in present else present[0]
    tests: list[dict[str, Any]] = []
    if len(present) > 1:
        tests = compare(
            per_model,
            baseline=base,
            metrics=metric_cols,
            test=test,
            correction=correction,
            alpha=alpha,
            n_resamples=n_resamples,
            seed=0,
        )
    n_users = int(len(per_model[present[0]]))
    write_json(
        run_dir / "metrics.json",
        {
            "means": means,
            "seed_spread": spread,
            "n_users": n_users,
            "split_fingerprint": fingerprint,
            "units": {
                m: [
                    {"seed": r["seed"], "valid": r["valid"], "test": r["test"], "subsets": r.get("subsets", [])}
                    for r in records[m]
                ]
                for m in present
            },
        },
    )
    write_json(
        run_dir / "statistics.json",
        {
            "baseline": base,
            "test": test,
            "correction": correction,
            "alpha": alpha,
            "n_users": n_users,
            "comparisons": tests,
        },
    )
    caption = {
        "title": title,
        "test": test,
        "correction": correction,
        "alpha": alpha,
        "n_users": n_users,
        "fingerprint": fingerprint[:12],
    }
    spread_means = {m: {k: v for k, v in sp.items()} for m, sp in spread.items()}
    for fmt, ext in (("md", "md"), ("latex", "tex"), ("csv", "csv")):
        text = tables.leaderboard(
            means, tests, fmt=fmt, baseline=base, caption=caption, metrics=metric_cols, spread=spread_means
        )
        with atomic_open(run_dir / f"leaderboard.{ext}", "w", encoding="utf-8") as fh:
            fh.write(text)
    if tests:
        with atomic_open(run_dir / "statistics.md", "w", encoding="utf-8") as fh:
            fh.write(tables.comparison_table(tests, fmt="md"))
    write_subsets(run_dir, records, present, metric_cols)
    pm = plot_metric or next((c for c in metric_cols if c.startswith("recall@")), metric_cols[0])
    (run_dir / "plots").mkdir(exist_ok=True)
    plots.plot_metric_bars(per_model, pm, run_dir / "plots" / f"bars_{pm.replace('@', '_at_')}.png")
    plots.plot_metric_vs_k(means, run_dir / "plots" / "metrics_vs_k.png")
    return means, tests, spread


def write_subsets(
    run_dir: Path, records: dict[str, list[dict[str, Any]]], models: list[str], metric_cols: list[str]
) -> pd.DataFrame | None:
    """``subsets.{csv,md}``: each model's metrics on all users, on cold-start test items and per
    user-activity bucket (training interactions), averaged over seeds, beside the overall row."""
    rows = []
    for m in models:
        for rec in records[m]:
            for r in rec.get("subsets") or []:
                rows.append({"model": m, "seed": rec["seed"], **r})
    if not rows:
        return None
    df = pd.DataFrame(rows)
    order = {name: i for i, name in enumerate(dict.fromkeys(df["subset"]))}
    cols = [c for c in metric_cols if c in df.columns]
    agg = df.groupby(["model", "subset"], sort=False)[["n_users"] + cols].mean().reset_index()
    agg["_m"] = agg["model"].map({m: i for i, m in enumerate(models)})
    agg["_s"] = agg["subset"].map(order)
    agg = agg.sort_values(["_m", "_s"]).drop(columns=["_m", "_s"]).reset_index(drop=True)
    agg["n_users"] = agg["n_users"].round().astype(int)
    with atomic_open(run_dir / "subsets.csv", "w", encoding="utf-8") as fh:
        agg.to_csv(fh, index=False, float_format="%.6g")
    lines = ["| model | subset | users | " + " | ".join(cols) + " |", "|---|---|---:|" + "---:|" * len(cols)]
    for r in agg.to_dict("records"):  # not itertuples: it renames the "metric@k" columns
        vals = " | ".join("—" if pd.isna(r[c]) else f"{r[c]:.4f}" for c in cols)
        lines.append(f"| {r['model']} | {r['subset']} | {r['n_users']} | {vals} |")
    lines += [
        "",
        "Subsets: `all` = every evaluated user; `cold_items` = only test items with no training "
        "interaction as relevant (users without one excluded); `activity [a, b)` = users with a ≤ "
        "training interactions < b. Means over seeds.",
    ]
    with atomic_open(run_dir / "subsets.md", "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return agg


# ------------------------------------------------------------------------------------------- main
def run_experiment(
    cfg: ExperimentConfig, *, force: bool = False, run_dir: str | Path | None = None, logger_kind: str | None = None
) -> RunResult:
    """Run every stage of ``cfg``; resumable (see module docstring)."""
    from tqdm.auto import tqdm

    timer = StageTimer()
    t_start = time.perf_counter()
    kind = logger_kind or cfg.logging.logger
    rdir = resolve_run_dir(cfg, force=force, run_dir=run_dir)
    rdir.mkdir(parents=True, exist_ok=True)
    with atomic_open(rdir / "config.resolved.yaml", "w", encoding="utf-8") as fh:
        yaml.safe_dump(to_dict(cfg), fh, sort_keys=False)
    with atomic_open(rdir / "config.hash", "w") as fh:
        fh.write(config_hash(cfg) + "\n")
    log.info("run directory: %s", rdir)

    split, split_dir, raw_dir, checksums = build_split(cfg, timer)
    write_json(
        rdir / "split.json",
        {
            "fingerprint": split.fingerprint,
            "protocol": split.protocol,
            "params": split.params,
            "summary": split.summary(),
            "split_dir": str(split_dir),
            "dataset_checksums": checksums,
        },
    )
    feats = build_features(cfg, split, split_dir, raw_dir, timer)

    units = units_for(cfg)
    done, ran = [], []
    with timer("models"):
        for unit in tqdm(units, desc="models", unit="run"):
            if (rdir / "units" / f"{unit.key}.json").exists() and (rdir / "units" / f"{unit.key}.parquet").exists():
                done.append(unit.key)
                continue
            mc = next(m for m in cfg.models if m.name == unit.model)
            tracker = Tracker(
                kind,
                rdir,
                cfg.logging.project,
                cfg.logging.entity,
                group=cfg.experiment,
                name=unit.key,
                config={
                    "model": mc.model,
                    "params": mc.params,
                    "seed": unit.seed,
                    "split_fingerprint": split.fingerprint,
                },
            )
            try:
                rec = run_unit(cfg, unit, split, feats, rdir, tracker)
            finally:
                tracker.finish()
            ran.append(unit.key)
            log.info("%s: %s", unit.key, ", ".join(f"{k}={v:.4f}" for k, v in rec["test"].items()))

    with timer("statistics"):
        metric_cols = [f"{m}@{k}" for m in cfg.evaluation.metrics for k in cfg.evaluation.ks]
        means, tests, _ = summarise(
            rdir,
            [m.name for m in cfg.models],
            cfg.baseline,
            cfg.statistics.test,
            cfg.statistics.correction,
            cfg.statistics.alpha,
            cfg.statistics.n_resamples,
            split.fingerprint,
            cfg.statistics.plot_metric,
            metrics_order=metric_cols,
            title=cfg.description or cfg.experiment,
        )

    provenance = {
        "experiment": cfg.experiment,
        "config_hash": config_hash(cfg),
        "split_fingerprint": split.fingerprint,
        "split_dir": str(split_dir),
        "dataset_checksums": checksums,
        "features": {
            n: {
                "checksum": f.checksum(),
                "shape": [f.n_items, f.dim],
                "coverage": f.coverage,
                "provenance": f.provenance,
            }
            for n, f in feats.items()
        },
        "packages": package_versions(),
        "git": git_commit(),
        "device": device_info(),
        "wall_seconds": {k: round(v, 3) for k, v in timer.seconds.items()}
        | {"total": round(time.perf_counter() - t_start, 3)},
        "units_run": ran,
        "units_skipped_as_done": done,
    }
    write_json(rdir / "provenance.json", provenance)

    summary_tracker = Tracker(
        kind,
        rdir,
        cfg.logging.project,
        cfg.logging.entity,
        group=cfg.experiment,
        name="summary",
        config={"split_fingerprint": split.fingerprint},
        job_type="summary",
    )
    try:
        metric_cols = list(next(iter(means.values())).keys())
        summary_tracker.log_table(
            "leaderboard", ["model"] + metric_cols, [[m] + [means[m][c] for c in metric_cols] for m in means]
        )
        for png in sorted((rdir / "plots").glob("*.png")):
            summary_tracker.log_image(f"plots/{png.stem}", png)
        summary_tracker.log_artifact(f"split-{split.fingerprint[:12]}", "split", [split_dir])
        summary_tracker.log_artifact(
            f"results-{cfg.experiment}",
            "results",
            [
                rdir / n
                for n in (
                    "metrics.json",
                    "statistics.json",
                    "leaderboard.md",
                    "leaderboard.csv",
                    "per_user_metrics.parquet",
                    "provenance.json",
                    "config.resolved.yaml",
                )
            ],
        )
    finally:
        summary_tracker.finish()
    return RunResult(rdir, split, means, tests, ran, done)
