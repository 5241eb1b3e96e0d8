"""Critical-difference diagram (Demšar 2006) of a Friedman test over datasets, as a PNG.

Drawn by :func:`scikit_posthocs.critical_difference_diagram` from the mean ranks and the
Nemenyi post-hoc p-values of :func:`benchmark.stats.ranks.friedman`: models on a rank axis
(1 = best), models whose post-hoc difference is not significant at α joined by a bar. The title
states the metric, the Friedman result and Nemenyi's critical difference.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.stats.ranks import FriedmanResult

__all__ = ["friedman_text", "plot_cd_diagram"]


def friedman_text(res: FriedmanResult) -> str:
    """One sentence: the test, its result, the critical difference and the caveat on small N."""
    ranks = ", ".join(f"{m} {r:.2f}" for m, r in res.mean_ranks.sort_values().items())
    text = (
        f"Friedman test over {res.n_datasets} datasets on {res.metric}: χ²({res.n_models - 1}) = {res.statistic:.3f}, "
        f"p = {res.p:.4g}; mean ranks (1 = best): {ranks}; Nemenyi critical difference "
        f"{res.critical_difference:.3f} at α = {res.alpha}."
    )
    if res.chi2_rough:
        text += " With fewer than 10 datasets the χ² approximation is rough (Demšar 2006)."
    return text


def plot_cd_diagram(res: FriedmanResult, path: str | Path) -> Path:
    """Write the diagram of ``res`` to ``path`` (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scikit_posthocs as sp

    from benchmark.io import atomic_open

    fig, ax = plt.subplots(figsize=(7.0, 0.6 + 0.35 * res.n_models))
    try:
        sp.critical_difference_diagram(res.mean_ranks, res.posthoc, alpha=res.alpha, ax=ax)
        ax.set_title(
            f"{res.metric}: Friedman p = {res.p:.3g} over {res.n_datasets} datasets; Nemenyi CD = {res.critical_difference:.2f}",
            fontsize=9,
        )
        out = Path(path)
        with atomic_open(out, "wb") as fh:
            fig.savefig(fh, format="png", dpi=150, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out
