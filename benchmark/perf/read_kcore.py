"""Read, dedupe and 5-core generated Amazon reviews: ours vs the in-memory layer vs plain pandas,
at several sizes, each engine in a fresh process (a scaling table of lines/s and peak memory).

    python -m benchmark.perf.read_kcore [--sizes 2M,10M,30M] [--release 2023|2018] [--small]
                                        [--k 5] [--budget SIZE] [--cache-dir DIR] [--keep]

Generates a reviews file of each size in the release's layout (``--release 2023``:
``{Cat}.jsonl.gz`` with ms timestamps; ``2018``: ``{Cat}.json.gz``) once into ``--cache-dir``
(deleted after measuring unless ``--keep``; reused when kept). Users and items get Pareto(1.5)
activity over n/2.6 users and n/12 items — the shape of the 2018 Clothing file (32M reviews,
12M users, 2.7M items, a 5-core keeping about a third) — so few pairs repeat, as in the release.

``ours``    ``data prepare`` end to end, out of core (:mod:`benchmark.prepare.engine`, default
            memory budget): read → dedupe (earliest) → k-core → ``mmrec`` split → files written
``memory``  the in-memory data layer (the reference pipeline's stages): ``read_reviews`` into
            pandas, ``dedupe``, ``kcore`` — run where it fits (``--memory-max``, default 10M lines)
``pandas``  ``pandas.read_json(lines=True)`` + stable sort/``drop_duplicates`` + a groupby/
            ``transform("size")`` k-core loop — run where it fits (``--pandas-max``, default 2M)

Peak memory is the child's ``ru_maxrss`` (interpreter, imports and DuckDB included); for ``ours``,
whose large files are parsed by one worker process per core, the sampled peak of the whole
process tree when higher, and its peak during the read stage and during the out-of-core stages
(RSS of all its processes summed, sampled every 50 ms). ``CPU s`` is the child's user + system time over all its threads: on a shared machine wall
time stretches with the other load, CPU time much less, so ``lines/CPU-s`` compares engines
measured at different moments. The three k-cores must keep the same number of rows; the script
fails otherwise.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SMALL_N = 5000
ENGINES: tuple[str, ...] = ("ours", "memory", "pandas")
_TEXTS = [
    " ".join(w)
    for w in np.random.default_rng(7).choice(
        ["great", "product", "works", "fine", "would", "buy", "again", "not", "as", "described", "love", "it"],
        size=(512, 12),
    )
]


def generate(path: Path, n: int, seed: int = 0, release: str = "2023") -> None:
    """Write ``n`` review lines of ``release``'s layout (users and items Pareto-weighted)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(10, int(n / 2.6)), max(10, n // 12)
    cum_u = np.cumsum(rng.pareto(1.5, n_users) + 1)
    cum_i = np.cumsum(rng.pareto(1.5, n_items) + 1)
    line = _line_2023 if release == "2023" else _line_2018
    tmp = path.with_name(path.name + ".part")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as fh:
        for start in range(0, n, 200_000):
            m = min(n, start + 200_000) - start
            users = np.searchsorted(cum_u, rng.random(m) * cum_u[-1])
            items = np.searchsorted(cum_i, rng.random(m) * cum_i[-1])
            ratings = rng.integers(1, 6, m)
            ts = rng.integers(1_300_000_000, 1_690_000_000, m)
            texts = rng.integers(0, len(_TEXTS), m)
            fh.write("".join(map(line, users.tolist(), items.tolist(), ratings.tolist(), ts.tolist(), texts.tolist())))
    os.replace(tmp, path)


def _line_2023(u: int, i: int, r: int, ts: int, t: int) -> str:
    # exactly json.dumps of the release's record (same keys, same order, same spacing)
    text = _TEXTS[t]
    return (
        f'{{"rating": {r}.0, "title": "{text[:20]}", "text": "{text}", "images": [], "asin": "B{i:09d}", '
        f'"parent_asin": "B{i:09d}", "user_id": "AE{u:026d}", "timestamp": {ts * 1000 + t}, '
        f'"helpful_vote": 0, "verified_purchase": true}}\n'
    )


def _line_2018(u: int, i: int, r: int, ts: int, t: int) -> str:
    text = _TEXTS[t]
    return (
        f'{{"overall": {r}.0, "verified": true, "reviewTime": "06 17, 2018", "reviewerID": "A{u:013d}", '
        f'"asin": "B{i:09d}", "style": {{"Size:": " Large"}}, "reviewerName": "J. Doe", "reviewText": "{text}", '
        f'"summary": "{text[:20]}", "unixReviewTime": {ts}}}\n'
    )


# ------------------------------------------------------------------------------- workers
class RssSampler(threading.Thread):
    """Resident set size every ``every`` seconds, so a stage's peak can be read afterwards."""

    def __init__(self, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.every, self.samples, self.running = every, [(time.perf_counter(), _rss())], True

    def run(self) -> None:
        while self.running:
            self.samples.append((time.perf_counter(), _rss()))
            time.sleep(self.every)

    def peak(self, start: float, stop: float) -> float:
        inside = [r for t, r in self.samples if start <= t <= stop]
        return max(inside, default=0.0)


def _rss() -> float:
    """Resident MiB of this process and its children (the parsing workers) together."""
    import psutil

    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:  # a worker that just ended
            pass
    return total / 2**20


def _run_ours(path: Path, k: int, release: str, budget: str | None) -> dict:
    from benchmark.prepare import dataset_from_mapping
    from benchmark.prepare.engine import prepare_files_out_of_core

    values = {"source": "files", "release": release, "reviews": str(path), "protocol": "mmrec", "kcore": k}
    if budget:
        values["memory_budget"] = budget
    if os.environ.get("READ_KCORE_PARSE_WORKERS"):
        values["parse_workers"] = int(os.environ["READ_KCORE_PARSE_WORKERS"])
    ds = dataset_from_mapping(values)
    out = Path(tempfile.mkdtemp(prefix="read-kcore-ours-", dir=path.parent))
    sampler = RssSampler()
    sampler.start()
    t0 = time.perf_counter()
    prepare_files_out_of_core(ds, out)
    t1 = time.perf_counter()
    sampler.running = False
    summary = json.loads((out / "summary.json").read_text())
    laps = summary["stage_seconds"]
    read_end = t0 + laps["sources"] + laps["read"]
    for f in out.iterdir():
        f.unlink()
    out.rmdir()
    return {
        "lines": summary["read_reports"]["reviews"]["lines_read"],
        "rows_read": summary["stages"]["read"]["rows"],
        "rows_kcore": summary["stages"]["kcore"]["rows_out"],
        "read_s": laps["sources"] + laps["read"],
        "filter_s": laps["filter"],
        "split_s": laps["split"] + laps["write"],
        "total_s": t1 - t0,
        "read_peak_mib": sampler.peak(t0, read_end),
        "engine_peak_mib": sampler.peak(read_end, t1),
        "tree_peak_mib": sampler.peak(t0, t1),
    }


def _run_memory(path: Path, k: int, release: str, budget: str | None) -> dict:
    from benchmark.data.readers import read_reviews
    from benchmark.filtering import dedupe, kcore

    t0 = time.perf_counter()
    df, report = read_reviews(path, release)
    t1 = time.perf_counter()
    out, _ = kcore(dedupe(df, "earliest")[0], user_k=k, item_k=k)
    t2 = time.perf_counter()
    return {"rows_read": len(df), "rows_kcore": len(out), "read_s": t1 - t0, "filter_s": t2 - t1, "total_s": t2 - t0}


def _run_pandas(path: Path, k: int, release: str, budget: str | None) -> dict:
    import pandas as pd

    user, item, ts = (
        ("user_id", "parent_asin", "timestamp") if release == "2023" else ("reviewerID", "asin", "unixReviewTime")
    )
    t0 = time.perf_counter()
    df = pd.read_json(path, lines=True, compression="gzip")
    t1 = time.perf_counter()
    n_read = len(df)
    df = df[[user, item, ts]].sort_values(ts, kind="stable").drop_duplicates([user, item]).sort_index()
    while True:
        n = len(df)
        df = df[df.groupby(user)[user].transform("size") >= k]
        df = df[df.groupby(item)[item].transform("size") >= k]
        if len(df) == n:
            break
    t2 = time.perf_counter()
    return {"rows_read": n_read, "rows_kcore": len(df), "read_s": t1 - t0, "filter_s": t2 - t1, "total_s": t2 - t0}


WORKERS = {"ours": _run_ours, "memory": _run_memory, "pandas": _run_pandas}


def _worker(which: str, path: Path, k: int, release: str, budget: str | None) -> None:
    logging.disable(logging.WARNING)
    result = WORKERS[which](path, k, release, budget)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the parsing workers, once joined
    # the process's own peak, or — with parsing workers — the sampled peak of all processes together
    result["maxrss_mib"] = max(usage.ru_maxrss / 1024, result.pop("tree_peak_mib", 0.0))  # KiB on Linux
    # CPU seconds of every thread and worker (DuckDB's included): a shared machine stretches wall
    # time, not this
    result["cpu_s"] = usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime
    print(json.dumps(result))


def _measure(which: str, path: Path, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "benchmark.perf.read_kcore", "--worker", which, "--file", str(path)]
    cmd += ["--k", str(args.k), "--release", args.release] + (["--budget", args.budget] if args.budget else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{which} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------- driver
def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def measure_size(n: int, args: argparse.Namespace) -> dict[str, dict]:
    """Generate (or reuse) the file of ``n`` lines and run every engine that fits."""
    path = (
        args.cache_dir
        / f"reviews_{args.release}_v2_n{n}_seed{args.seed}.json{'l' if args.release == '2023' else ''}.gz"
    )
    if not path.exists():
        t = time.perf_counter()
        generate(path, n, args.seed, args.release)
        log.info("generated %s (%.1f MiB) in %.1f s", path, path.stat().st_size / 2**20, time.perf_counter() - t)
    limits = {"ours": float("inf"), "memory": args.memory_max, "pandas": args.pandas_max}
    try:
        results = {e: _measure(e, path, args) for e in args.engines if n <= limits[e]}
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
    for name, r in results.items():
        if r["rows_read"] != n:
            raise SystemExit(f"{name}: expected {n} rows read, got {r['rows_read']}")
    if len({r["rows_kcore"] for r in results.values()}) > 1:
        raise SystemExit(f"k-core results differ: { {e: r['rows_kcore'] for e, r in results.items()} }")
    return results


def print_table(table: dict[int, dict[str, dict]], k: int) -> None:
    print(
        f"{'lines':>11} {'engine':8}{'read s':>9}{'filter s':>9}{'split s':>9}{'total s':>9}{'lines/s':>11}"
        f"{'CPU s':>8}{'lines/CPU-s':>12}{'peak MiB':>10}  {k}-core rows"
    )
    for n, results in table.items():
        for name, r in results.items():
            split = f"{r['split_s']:9.1f}" if "split_s" in r else f"{'-':>9}"
            print(
                f"{n:>11,} {name:8}{r['read_s']:9.1f}{r['filter_s']:9.1f}{split}{r['total_s']:9.1f}"
                f"{n / r['total_s']:11,.0f}{r['cpu_s']:8.1f}{n / r['cpu_s']:12,.0f}{r['maxrss_mib']:10.0f}"
                f"  {r['rows_kcore']:,}"
            )
    for n, results in table.items():
        if "ours" in results:
            r = results["ours"]
            print(
                f"ours at {n:,} lines: peak {r['read_peak_mib']:.0f} MiB while reading, "
                f"{r['engine_peak_mib']:.0f} MiB in the engine"
            )
        if "ours" in results and len(results) > 1:
            base = results["ours"]
            ratios = ", ".join(
                f"{e} {r['total_s'] / base['total_s']:.2f}x the time ({r['cpu_s'] / base['cpu_s']:.2f}x the CPU), "
                f"{r['maxrss_mib'] / base['maxrss_mib']:.2f}x the memory"
                for e, r in results.items()
                if e != "ours"
            )
            print(f"at {n:,} lines, relative to ours: {ratios}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="2M", help="comma-separated line counts, e.g. 2M,10M,30M (default 2M)")
    ap.add_argument("--n", type=int, help="one size (overrides --sizes)")
    ap.add_argument("--small", action="store_true", help=f"{SMALL_N} reviews (for tests)")
    ap.add_argument("--release", choices=("2023", "2018"), default="2023", help="layout of the generated file")
    ap.add_argument("--k", type=int, default=5, help="k-core on users and items (default 5)")
    ap.add_argument("--budget", help="memory budget for ours (default: the engine's default share of RAM)")
    ap.add_argument(
        "--parse-workers",
        type=int,
        help="processes parsing the file for ours (default: cores - 1 from 4 cores on, else 1)",
    )
    ap.add_argument("--engines", default=",".join(ENGINES), help=f"subset of {','.join(ENGINES)}")
    ap.add_argument("--memory-max", type=parse_size, default=10_000_000, help="largest size for the in-memory layer")
    ap.add_argument("--pandas-max", type=parse_size, default=2_000_000, help="largest size for plain pandas")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "vlm4rec-perf")
    ap.add_argument("--keep", action="store_true", help="keep the generated files for the next run")
    ap.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.file, args.k, args.release, args.budget)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.parse_workers:  # read by the ours worker process
        os.environ["READ_KCORE_PARSE_WORKERS"] = str(args.parse_workers)
    args.engines = [e for e in args.engines.split(",") if e]
    unknown = set(args.engines) - set(ENGINES)
    if unknown:
        ap.error(f"--engines: unknown {sorted(unknown)}; allowed: {', '.join(ENGINES)}")
    sizes = [SMALL_N] if args.small else [args.n] if args.n else [parse_size(s) for s in args.sizes.split(",")]
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    table = {}
    for n in sizes:
        table[n] = measure_size(n, args)
        print_table({n: table[n]}, args.k)  # partial results as they come
    print(f"\nscaling table ({args.release} layout, {os.cpu_count()} cores):")
    print_table(table, args.k)
    return 0


if __name__ == "__main__":
    sys.exit(main())
