"""Read a 2023-format reviews file and 5-core it: our code vs plain pandas, in one run.

    python -m benchmark.perf.read_kcore [--n 2000000] [--small] [--k 5] [--cache-dir DIR]

Generates an Amazon-2023-layout ``reviews.jsonl.gz`` (power-law users and items, the release's
fields with short texts, ms timestamps) once into a temp directory (reused by later runs of the
same size and seed), then times, each in a fresh subprocess:

``ours``    ``benchmark.data.readers.read_reviews`` + ``benchmark.filtering.kcore``
``pandas``  ``pandas.read_json(path, lines=True)`` + a groupby/transform("size") k-core loop

and prints lines/s, the ratio (ours / pandas throughput) and peak RSS of each process
(``resource.getrusage(RUSAGE_SELF).ru_maxrss`` in the child, interpreter and imports included).
Both k-cores must keep the same number of rows; the script fails otherwise.
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
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SMALL_N = 5000


def generate(path: Path, n: int, seed: int = 0) -> None:
    """Write ``n`` Amazon-2023-layout review lines with Zipf-distributed users and items."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(10, n // 8), max(10, n // 20)
    # Zipf ranks folded into a fixed id space give a heavy head and a long tail, like the release.
    users = (rng.zipf(1.35, n) - 1) % n_users
    items = (rng.zipf(1.25, n) - 1) % n_items
    ratings = rng.integers(1, 6, n)
    ts = rng.integers(1_300_000_000_000, 1_690_000_000_000, n)
    words = np.array(
        [
            "great",
            "product",
            "works",
            "fine",
            "would",
            "buy",
            "again",
            "not",
            "as",
            "described",
            "love",
            "it",
            "smells",
            "nice",
            "cheap",
            "quality",
        ]
    )
    tmp = path.with_name(path.name + ".part")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as fh:
        block = 50_000
        for start in range(0, n, block):
            stop = min(n, start + block)
            text_len = rng.integers(3, 25, stop - start)
            lines = []
            for k, j in enumerate(range(start, stop)):
                text = " ".join(words[rng.integers(0, len(words), text_len[k])])
                asin = f"B{items[j]:09d}"
                lines.append(
                    json.dumps(
                        {
                            "rating": float(ratings[j]),
                            "title": text[:20],
                            "text": text,
                            "images": [],
                            "asin": asin,
                            "parent_asin": asin,
                            "user_id": f"AE{users[j]:026d}",
                            "timestamp": int(ts[j]),
                            "helpful_vote": 0,
                            "verified_purchase": True,
                        }
                    )
                )
            fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def _run_ours(path: Path, k: int) -> dict:
    from benchmark.data.readers import read_reviews
    from benchmark.filtering import kcore

    t0 = time.perf_counter()
    df, report = read_reviews(path, "2023")
    t1 = time.perf_counter()
    out, _ = kcore(df, user_k=k, item_k=k)
    t2 = time.perf_counter()
    return {
        "lines": report.lines_read,
        "rows_read": len(df),
        "rows_kcore": len(out),
        "read_s": t1 - t0,
        "kcore_s": t2 - t1,
    }


def _run_pandas(path: Path, k: int) -> dict:
    import pandas as pd

    t0 = time.perf_counter()
    df = pd.read_json(path, lines=True, compression="gzip")
    t1 = time.perf_counter()
    n_read = len(df)
    df = df[["user_id", "parent_asin", "rating", "timestamp"]]
    while True:
        n = len(df)
        df = df[df.groupby("user_id")["user_id"].transform("size") >= k]
        df = df[df.groupby("parent_asin")["parent_asin"].transform("size") >= k]
        if len(df) == n:
            break
    t2 = time.perf_counter()
    return {"rows_read": n_read, "rows_kcore": len(df), "read_s": t1 - t0, "kcore_s": t2 - t1}


def _worker(which: str, path: Path, k: int) -> None:
    logging.disable(logging.WARNING)
    result = _run_ours(path, k) if which == "ours" else _run_pandas(path, k)
    result["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps(result))


def _measure(which: str, path: Path, k: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark.perf.read_kcore", "--worker", which, "--file", str(path), "--k", str(k)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{which} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2_000_000, help="reviews to generate (default 2,000,000)")
    ap.add_argument("--small", action="store_true", help=f"{SMALL_N} reviews (for tests)")
    ap.add_argument("--k", type=int, default=5, help="k-core on users and items (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "vlm4rec-perf")
    ap.add_argument("--worker", choices=("ours", "pandas"), help=argparse.SUPPRESS)
    ap.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.file, args.k)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    n = SMALL_N if args.small else args.n
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    path = args.cache_dir / f"reviews_2023_n{n}_seed{args.seed}.jsonl.gz"
    if not path.exists():
        t = time.perf_counter()
        generate(path, n, args.seed)
        log.info("generated %s (%.1f MiB) in %.1f s", path, path.stat().st_size / 2**20, time.perf_counter() - t)
    else:
        log.info("reusing %s", path)
    results = {name: _measure(name, path, args.k) for name in ("ours", "pandas")}
    if results["ours"]["rows_read"] != n or results["pandas"]["rows_read"] != n:
        raise SystemExit(
            f"expected {n} rows read; got {results['ours']['rows_read']} (ours), "
            f"{results['pandas']['rows_read']} (pandas)"
        )
    if results["ours"]["rows_kcore"] != results["pandas"]["rows_kcore"]:
        raise SystemExit(
            f"k-core results differ: ours {results['ours']['rows_kcore']} rows, "
            f"pandas {results['pandas']['rows_kcore']}"
        )
    print(f"{n} reviews, {args.k}-core keeps {results['ours']['rows_kcore']} rows")
    print(f"{'':8}{'read s':>9}{'kcore s':>9}{'total s':>9}{'lines/s':>12}{'peak MiB':>10}")
    rate = {}
    for name, r in results.items():
        total = r["read_s"] + r["kcore_s"]
        rate[name] = n / total
        print(f"{name:8}{r['read_s']:9.2f}{r['kcore_s']:9.2f}{total:9.2f}{rate[name]:12,.0f}{r['maxrss_mib']:10.0f}")
    print(
        f"ratio ours/pandas throughput: {rate['ours'] / rate['pandas']:.2f}x "
        f"(peak memory {results['ours']['maxrss_mib'] / results['pandas']['maxrss_mib']:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
