"""Time the paired resampling tests of benchmark.stats against scipy's on the same data.

Ours: :func:`benchmark.stats.signflip_pvalues` (sign-flip randomization test) and
:func:`benchmark.stats.bootstrap_means` (paired bootstrap of the mean difference).
Peer: :func:`scipy.stats.permutation_test` (``permutation_type="samples"``, one sample = sign
flips) and :func:`scipy.stats.bootstrap` (percentile CI), both vectorised.

    python -m benchmark.perf.stats_resampling            # 20,000 users × 10,000 resamples
    python -m benchmark.perf.stats_resampling --small    # seconds
"""

from __future__ import annotations

import argparse
import logging
import resource
import time
import tracemalloc

import numpy as np
from scipy import stats as sps

from benchmark.stats import bootstrap_means, signflip_pvalues

log = logging.getLogger(__name__)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _peak_mib(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--resamples", type=int, default=10000)
    ap.add_argument("--small", action="store_true", help="2,000 users × 2,000 resamples")
    args = ap.parse_args(argv)
    n, r = (2000, 2000) if args.small else (args.users, args.resamples)
    rng = np.random.default_rng(0)
    base = rng.random(n) * 0.3
    run = base + rng.normal(0.002, 0.1, n)
    d = run - base
    print(f"paired resampling: {n} users × {r} resamples, one comparison")

    ours_p, t_ours_p = _timed(lambda: signflip_pvalues(d[:, None], r, np.random.default_rng(1))[0])
    peer_p, t_peer_p = _timed(
        lambda: (
            sps.permutation_test(
                (d,),
                lambda x, axis: np.abs(np.mean(x, axis=axis)),
                permutation_type="samples",
                n_resamples=r,
                alternative="greater",
                vectorized=True,
                rng=np.random.default_rng(1),
            ).pvalue
        )
    )
    print(
        f"randomization  ours {t_ours_p:7.3f} s  p={ours_p:.4f} | scipy.permutation_test {t_peer_p:7.3f} s  "
        f"p={peer_p:.4f} | speed-up ×{t_peer_p / t_ours_p:.1f}"
    )

    def ours_boot():
        m = bootstrap_means(np.column_stack([run, base]), r, np.random.default_rng(2))
        return np.percentile(m[:, 0] - m[:, 1], [2.5, 97.5])

    ours_ci, t_ours_b = _timed(ours_boot)
    peer_ci, t_peer_b = _timed(
        lambda: (
            sps.bootstrap(
                (run, base),
                lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                paired=True,
                vectorized=True,
                n_resamples=r,
                method="percentile",
                rng=np.random.default_rng(2),
            ).confidence_interval
        )
    )
    print(
        f"bootstrap CI   ours {t_ours_b:7.3f} s  [{ours_ci[0]:+.5f}, {ours_ci[1]:+.5f}] | scipy.bootstrap "
        f"{t_peer_b:7.3f} s  [{peer_ci.low:+.5f}, {peer_ci.high:+.5f}] | speed-up ×{t_peer_b / t_ours_b:.1f}"
    )

    peak_p = _peak_mib(lambda: signflip_pvalues(d[:, None], r, np.random.default_rng(1)))
    peak_b = _peak_mib(ours_boot)
    print(
        f"peak traced memory (ours): randomization {peak_p:.0f} MiB, bootstrap {peak_b:.0f} MiB; "
        f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
