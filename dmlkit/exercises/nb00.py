"""Self-checks for notebook 00 (introduction): ``check("00.2", answer)``."""

from __future__ import annotations

from typing import Any

import torch

from dmlkit.exercises import Feedback, exercise

__all__ = ["WRONG"]

#: The worked example's points on a line and their classes (A0, A1, B0, A2, B1, C0).
POSITIONS = (0.0, 1.0, 1.4, 3.0, 3.2, 6.0)
LABELS = (0, 0, 1, 0, 1, 2)


def _metrics_with_b0_at(position: float) -> dict[str, float]:
    from dmlkit.evaluate import retrieval_metrics

    points = torch.tensor(POSITIONS, dtype=torch.float64)
    points[2] = position
    toy = torch.stack([points, torch.zeros_like(points)], dim=1)
    return retrieval_metrics(toy, torch.tensor(LABELS), ks=(1,), distance="euclidean")


@exercise("00.2")
def moved_b0(answer: Any) -> Feedback:
    """Recall@1, MAP@R and R-Precision of the worked example with B0 moved from 1.4 to 0.6."""
    if not isinstance(answer, dict):
        return Feedback(False, "give a dict {'recall@1': ..., 'map@r': ..., 'r_precision': ...} (fractions, not %)")
    expected = _metrics_with_b0_at(0.6)
    before = _metrics_with_b0_at(1.4)
    for key in ("recall@1", "map@r", "r_precision"):
        if key not in answer:
            return Feedback(False, f"the dict has no {key!r}")
        try:
            value = float(answer[key])
        except (TypeError, ValueError):
            return Feedback(False, f"{key} should be a number, got {answer[key]!r}")
        if abs(value - expected[key]) > 1e-3:
            hint = " (that is its value before the move)" if abs(value - before[key]) <= 1e-3 else ""
            return Feedback(False, f"{key} is not {value:.4g}{hint}; redo the table with B0 at 0.6")
    return Feedback(
        True,
        f"Recall@1 {before['recall@1']:.2f} -> {expected['recall@1']:.2f}, MAP@R {before['map@r']:.2f} -> "
        f"{expected['map@r']:.2f}, R-Precision {before['r_precision']:.2f} -> {expected['r_precision']:.2f}: "
        "one move, three different changes",
    )


#: A wrong answer per check (the test asserts that each check refuses it): the values before the move.
WRONG = {"00.2": {"recall@1": 0.2, "map@r": 0.15, "r_precision": 0.2}}
