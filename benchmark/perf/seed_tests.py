"""How often each test rejects when it should not (and when it should), with training seeds.

Simulates the audit's setting — per-user metric values of two methods, each trained with ``S``
seeds (or a deterministic baseline), evaluated on the same users — and counts rejections at
α = 0.05 of: the mixed model over users and seeds (:func:`benchmark.stats.mixed_test`, the
default for multi-seed comparisons), the classic paired t-test on seed-averaged per-user values
(the previous default), and a hierarchical bootstrap (seeds within method, then users; percentile
CI), the alternative the docstring of :mod:`benchmark.stats.mixed` argues against.

The model and the simulator are :mod:`benchmark.stats.simulation`'s.

    python -m benchmark.perf.seed_tests            # 2,000 users, 2,000 comparisons per setting
    python -m benchmark.perf.seed_tests --small    # seconds
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmark.stats.simulation import ALPHA, Setting, rejection_rates, simulate


def hierarchical_bootstrap_rejects(
    run: np.ndarray, base: np.ndarray, rng: np.random.Generator, n_boot: int = 400
) -> np.ndarray:
    """Reject when the 95% percentile CI of a seeds-then-users bootstrap excludes 0."""
    n = run.shape[1]
    means = np.empty((n_boot, run.shape[2]))
    for b in range(n_boot):
        sr = rng.integers(0, run.shape[0], run.shape[0])
        sb = rng.integers(0, base.shape[0], base.shape[0])
        users = rng.integers(0, n, n)
        means[b] = run[sr][:, users].mean(axis=(0, 1)) - base[sb][:, users].mean(axis=(0, 1))
    lo, hi = np.percentile(means, [2.5, 97.5], axis=0)
    return np.asarray((lo > 0) | (hi < 0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2000, help="simulated comparisons per setting (default 2000)")
    ap.add_argument("--small", action="store_true", help="400 comparisons per setting, no bootstrap")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    reps = 400 if args.small else args.reps
    rng = np.random.default_rng(args.seed)
    mc = np.sqrt(ALPHA * (1 - ALPHA) / reps)
    print(f"true null, 2,000 users, seed SD 0.01, α = {ALPHA}, {reps} comparisons each (MC SE {mc:.4f})")
    print(
        "| seeds (run vs baseline) | mixed model | same, plain Satterthwaite df | classic paired t "
        "| hierarchical bootstrap | median df |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for sr, sb in ((3, 3), (5, 5), (3, 1), (5, 1), (2, 1)):
        s = Setting(sr, sb)
        rates = rejection_rates(rng, s, reps)
        boot = "–"
        if not args.small and sb > 1:
            run, base = simulate(rng, s, min(reps, 400))
            boot = f"{hierarchical_bootstrap_rejects(run, base, rng).mean():.3f}"
        fixed = "fixed model" if sb == 1 else str(sb)
        print(
            f"| {sr} vs {fixed} | {rates.mixed:.3f} | {rates.mixed_plain_df:.3f} | {rates.classic_t:.3f} | {boot} "
            f"| {rates.median_df:.1f} |"
        )
    print()
    print("power of the mixed model (effect in metric units; seed SD 0.01)")
    print(
        "| seeds (run vs baseline) | effect 0.01 | effect 0.02 | effect 0.03 | CI coverage at 0.02 (diff, relative) |"
    )
    print("|---|---:|---:|---:|---:|")
    for sr, sb in ((3, 3), (5, 5), (3, 1), (5, 1)):
        cells, cover = [], ""
        for eff in (0.01, 0.02, 0.03):
            rates = rejection_rates(rng, Setting(sr, sb, effect=eff), reps)
            cells.append(f"{rates.mixed:.3f}")
            if eff == 0.02:
                cover = f"{rates.covered:.3f}, {rates.rel_covered:.3f}"
        fixed = "fixed model" if sb == 1 else str(sb)
        print(f"| {sr} vs {fixed} | " + " | ".join(cells) + f" | {cover} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
