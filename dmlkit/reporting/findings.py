"""Findings written from the numbers: sentences that stay true whatever a run measured.

The synthesis notebook states its conclusions with these functions, so that a sentence such as
"a weak negative rank correlation ... its 95% interval includes 0" is computed from the bootstrap
statistics (:func:`dmlkit.analysis.bootstrap_rank_correlation`), never typed by hand, and is
tested here rather than in a notebook.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["RHO_TARGETS", "correlation_rows", "describe_correlation", "roth_prediction"]

#: The pairs :func:`correlation_rows` correlates ρ with: held-out MAP@R and the generalisation gap.
RHO_TARGETS = {"map@r": "ρ vs held-out MAP@R", "gap_map@r": "ρ vs train − held-out MAP@R gap"}


def correlation_rows(
    runs: Sequence[Mapping[str, Any]],
    label: str,
    num_resamples: int,
    seed: int = 0,
    targets: Mapping[str, str] = RHO_TARGETS,
) -> dict[str, dict[str, float]]:
    """Spearman correlations of ρ with each metric of ``targets`` (``{key: pair name}``, default
    :data:`RHO_TARGETS`) over ``runs`` (dicts with ``"rho"`` and those keys), keyed
    ``"<label>: <pair>"`` for :func:`dmlkit.reporting.correlation_table`; empty with fewer than 3
    runs (no ordering to test)."""
    from dmlkit.analysis import bootstrap_rank_correlation  # torch only when correlating

    if len(runs) < 3:
        return {}
    rho = [r["rho"] for r in runs]
    return {
        f"{label}: {name}": bootstrap_rank_correlation(
            rho, [r[target] for r in runs], num_resamples=num_resamples, seed=seed
        )
        for target, name in targets.items()
    }


def describe_correlation(stats: Mapping[str, float], what: str) -> str:
    """One sentence on a rank correlation: its strength (|ρ_s| >= 0.6 strong, >= 0.3 moderate,
    else weak), its sign, and whether its 95% bootstrap interval excludes 0."""
    s, low, high = stats["spearman"], stats["low"], stats["high"]
    if not math.isfinite(s):
        return f"{what}: no ordering to correlate."
    strength = "strong" if abs(s) >= 0.6 else "moderate" if abs(s) >= 0.3 else "weak"
    direction = "negative" if s < 0 else "positive"
    interval = f"[{low:+.2f}, {high:+.2f}]"
    certain = (
        f"its 95% interval {interval} excludes 0"
        if low > 0 or high < 0
        else f"its 95% interval {interval} includes 0, so the sign itself is uncertain"
    )
    return (
        f"{what}: a {strength} {direction} rank correlation "
        f"(Spearman {s:+.2f}, n = {stats['num_points']:.0f}); {certain}."
    )


def roth_prediction(stats: Mapping[str, float]) -> str:
    """Whether a correlation of ρ with held-out MAP@R bears out Roth et al. (ICML 2020), who
    predict a negative one (less compression, better generalisation): confirmed only when the
    whole 95% interval is below 0, contradicted only when it is above 0."""
    verdict = (
        "this is what these runs show."
        if stats["high"] < 0
        else "these runs contradict it."
        if stats["low"] > 0
        else "these runs neither confirm nor contradict it."
    )
    return "Roth et al. predict a negative correlation (less compression, better generalisation); " + verdict
