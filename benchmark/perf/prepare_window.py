"""Peak memory of preparing the paper's data from a full-size 2018 review file.

    python -m benchmark.perf.prepare_window [--n 32000000] [--meta-items N] [--small] [--peer]
                                            [--cache-dir DIR]

Generates (once, reused by later runs of the same size and seed) an Amazon-2018-layout
``Clothing_Shoes_and_Jewelry.json.gz`` of ``n`` review lines — the release's fields, timestamps
at 00:00 UTC, Zipf-distributed users and items, 10% of the reviews inside the recipe's window
(2018-03-01 … 2018-09-30) and the rest before or after it — and a ``meta_…json.gz`` of
``--meta-items`` items (default n / 12, the release's ratio of items to reviews). Then, in a
fresh subprocess, it prepares the split exactly as ``vlm4rec-bench data prepare`` does with
``recipe: align-macridvae`` (read with the streaming date window → metadata of the items read
→ dedupe/k-core → paper split → save) and prints the wall time and the subprocess's peak RSS
(``ru_maxrss``, interpreter and imports included).

``--peer`` also runs the same preparation with the window applied *after* reading the whole
file (``benchmark.data.window.filter_date_window`` on the full table): what the reader would
hold without the streaming filter. At 32M lines that needs far more memory than the machine
may have; run it at a smaller ``--n`` and compare.

The full 2018 Clothing file has 32,292,099 lines; the real share inside the window is not
known here (it is printed from the real file by ``data prepare``'s ``summary.json``), so the
10% is an assumption: peak memory grows with the rows kept, not with the lines read.
"""

from __future__ import annotations

import argparse
import datetime as dt
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

SMALL_N = 20_000
CATEGORY = "Clothing_Shoes_and_Jewelry"
WINDOW = ("2018-03-01", "2018-10-01")
IN_WINDOW = 0.10
_ALNUM = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype="S1")


def _ids(prefix: str, codes: np.ndarray, length: int, salt: int) -> np.ndarray:
    """Deterministic id strings (``A…`` reviewers, ``B0…`` asins) for integer codes, vectorised."""
    x = (codes.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt)) & np.uint64(2**63 - 1)
    chars = []
    for _ in range(length - len(prefix)):
        chars.append(_ALNUM[(x % np.uint64(36)).astype(np.int64)])
        x //= np.uint64(36)
    body = np.char.add(chars[0], chars[1]) if len(chars) > 1 else chars[0]
    for c in chars[2:]:
        body = np.char.add(body, c)
    return np.char.add(prefix.encode(), body).astype(str)


def _days(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unix seconds at 00:00 UTC: ``IN_WINDOW`` of them inside the window, the rest before/after."""
    epoch = dt.date(1970, 1, 1)
    lo, hi = ((dt.date.fromisoformat(d) - epoch).days for d in WINDOW)
    first, last = (dt.date(2010, 1, 1) - epoch).days, (dt.date(2018, 10, 5) - epoch).days
    inside = rng.random(n) < IN_WINDOW
    outside_days = np.concatenate([np.arange(first, lo), np.arange(hi, last)])
    days = np.where(inside, rng.integers(lo, hi, n), outside_days[rng.integers(0, len(outside_days), n)])
    return days.astype(np.int64) * 86_400


def generate_reviews(path: Path, n: int, seed: int = 0) -> None:
    """Write ``n`` Amazon-2018-layout review lines (see module docstring)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(50, int(n * 0.39)), max(20, n // 12)  # the release: 12.5M users, 2.7M items
    tmp = path.with_name(path.name + ".part")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as fh:
        block = 200_000
        for start in range(0, n, block):
            m = min(n, start + block) - start
            users = _ids("A", (rng.zipf(1.4, m) - 1) % n_users, 14, 1)
            items = _ids("B0", (rng.zipf(1.3, m) - 1) % n_items, 10, 2)
            ts = _days(rng, m)
            stars = rng.integers(1, 6, m)
            lines = [
                f'{{"overall": {s}.0, "verified": true, "reviewTime": "{time.strftime("%m %d, %Y", time.gmtime(t))}", '
                f'"reviewerID": "{u}", "asin": "{i}", "style": {{"Size:": " Large", "Color:": " Black"}}, '
                f'"reviewerName": "J. Doe", "reviewText": "Fits well, good quality for the price. Would buy again.", '
                f'"summary": "Five Stars", "unixReviewTime": {t}}}'
                for u, i, t, s in zip(users, items, ts.tolist(), stars.tolist())
            ]
            fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def generate_meta(path: Path, n_items: int, n_reviews: int) -> None:
    """``n_items`` 2018 metadata lines (``imageURL`` layout) for the asins the reviews use."""
    tmp = path.with_name(path.name + ".part")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as fh:
        block = 200_000
        id_space = max(20, n_reviews // 12)
        for start in range(0, n_items, block):
            codes = np.arange(start, min(n_items, start + block)) % id_space
            asins = _ids("B0", codes, 10, 2)
            lines = [
                json.dumps(
                    {
                        "category": ["Clothing, Shoes & Jewelry", "Women", "Clothing", "Dresses"],
                        "description": [f"A dress, model {k}, in soft cotton with a relaxed fit."],
                        "title": f"Women's Summer Dress {k}",
                        "brand": f"Brand{k % 997}",
                        "feature": ["100% Cotton", "Machine wash"],
                        "imageURL": [f"https://images-na.ssl-images-amazon.com/images/I/{a}._SS40_.jpg"],
                        "imageURLHighRes": [f"https://images-na.ssl-images-amazon.com/images/I/{a}.jpg"],
                        "asin": a,
                    }
                )
                for k, a in zip(codes.tolist(), asins)
            ]
            fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def _worker(reviews: Path, meta: Path | None, out: Path, peer: bool) -> None:
    logging.disable(logging.WARNING)
    from benchmark.prepare import dataset_from_mapping, load_dataset

    values = {"source": "files", "recipe": "align-macridvae", "reviews": str(reviews)}
    if meta is not None:
        values["meta"] = str(meta)
    t0 = time.perf_counter()
    if peer:
        from benchmark.data.readers import read_reviews
        from benchmark.data.window import filter_date_window

        df, _ = read_reviews(reviews, "2018")  # everything, then the window on the table
        rows_read = len(df)
        df, _ = filter_date_window(df, dataset_from_mapping(values).date_window())  # type: ignore[arg-type]
        result: dict[str, float] = {"rows_read": rows_read, "rows_in_window": len(df)}
    else:
        split = load_dataset(dataset_from_mapping(values), out).split
        summary = json.loads((out / "summary.json").read_text())
        result = {
            "rows_in_window": summary["stages"]["date_window"]["kept"],
            "users": split.n_users,
            "items": split.n_items,
            "interactions": sum(len(split.part(p)) for p in ("train", "valid", "test")),
        }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["maxrss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB on Linux
    print(json.dumps(result))


def _measure(reviews: Path, meta: Path | None, out: Path, peer: bool) -> dict:
    cmd = [sys.executable, "-m", "benchmark.perf.prepare_window", "--worker", str(reviews), "--out", str(out)]
    cmd += ["--meta-file", str(meta)] if meta is not None else []
    cmd += ["--peer-worker"] if peer else []
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--n", type=int, default=32_000_000, help="review lines to generate (default 32,000,000)")
    ap.add_argument("--meta-items", type=int, default=None, help="metadata lines (default n / 12; 0: no meta)")
    ap.add_argument("--small", action="store_true", help=f"{SMALL_N} reviews (for tests)")
    ap.add_argument("--peer", action="store_true", help="also run with the window applied after reading everything")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "vlm4rec-perf")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--meta-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--peer-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.meta_file, args.out, args.peer_worker)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    n = SMALL_N if args.small else args.n
    n_meta = n // 12 if args.meta_items is None else args.meta_items
    d = args.cache_dir / f"clothing2018_n{n}_meta{n_meta}_seed{args.seed}"
    d.mkdir(parents=True, exist_ok=True)
    reviews, meta = d / f"{CATEGORY}.json.gz", (d / f"meta_{CATEGORY}.json.gz" if n_meta else None)
    for path, make in ((reviews, lambda: generate_reviews(reviews, n, args.seed)),) + (
        ((meta, lambda: generate_meta(meta, n_meta, n)),) if meta is not None else ()
    ):
        if not path.exists():
            t = time.perf_counter()
            make()
            log.info("generated %s (%.1f MiB) in %.0f s", path, path.stat().st_size / 2**20, time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        ours = _measure(reviews, meta, Path(tmp) / "split", peer=False)
        peer = _measure(reviews, meta, Path(tmp) / "peer", peer=True) if args.peer else None
    print(f"{n:,} review lines, {n_meta:,} metadata lines; {ours['rows_in_window']:,} reviews in the window")
    print(
        f"streaming window (data prepare, recipe align-macridvae): {ours['seconds']:.0f} s, "
        f"peak RSS {ours['maxrss_mib']:,.0f} MiB → split of {ours['users']:,} users, {ours['items']:,} items, "
        f"{ours['interactions']:,} interactions"
    )
    if peer is not None:
        print(
            f"window after reading everything (read_reviews + filter_date_window only): {peer['seconds']:.0f} s, "
            f"peak RSS {peer['maxrss_mib']:,.0f} MiB ({peer['maxrss_mib'] / ours['maxrss_mib']:.1f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
