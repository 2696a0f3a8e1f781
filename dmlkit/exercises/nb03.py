"""Self-checks of notebook 03 (AP-ranking losses): ``check("03.k", answer)``.

- ``03.3``: the exact AP and FastAP (``L = 5``) of the worked example after swapping the labels of
  the items at ranks 2 and 3, computed with :func:`dmlkit.losses.ap_ranking.average_precision` and
  :func:`~dmlkit.losses.ap_ranking.fast_average_precision`.
- ``03.6``: Smooth-AP written by the student from the sigmoid rank (Brown et al., ECCV 2020,
  Sec. 3.2), compared with :class:`dmlkit.losses.ap_ranking.SmoothAPLoss` on seeded inputs (the kit
  has no stand-alone rank function: the loss built from the rank is what is compared).
"""

from __future__ import annotations

from typing import Any

import torch

from dmlkit.exercises import Feedback, exercise, same_function
from dmlkit.losses.ap_ranking import SmoothAPLoss, average_precision, fast_average_precision

__all__ = ["WRONG", "smooth_ap_reference", "swapped_worked_example"]


def _worked_example(is_positive: list[bool]) -> tuple[torch.Tensor, torch.Tensor]:
    """The query and six items of section 1's worked example (row 0 the query), float64."""
    similarities = torch.tensor([0.8, 0.6, 0.4, 0.2, 0.0, -0.2], dtype=torch.float64)
    angles = torch.arccos(similarities)
    points = torch.cat(
        [torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.stack([angles.cos(), angles.sin()], dim=1)]
    )
    labels = torch.cat([torch.tensor([0]), torch.where(torch.tensor(is_positive), 0, 1)])
    return points, labels


def swapped_worked_example() -> tuple[float, float]:
    """(exact AP, FastAP at L = 5) of the query with the labels of ranks 2 and 3 swapped."""
    points, labels = _worked_example([True, True, False, False, False, True])
    return (
        float(average_precision(points, labels)[0]),
        float(fast_average_precision(points, labels, 5)[0]),
    )


@exercise("03.3")
def _swapped(answer: Any) -> Feedback:
    ap, fast = swapped_worked_example()
    try:
        got_ap, got_fast = (float(v) for v in answer)
    except (TypeError, ValueError):
        return Feedback(False, f"the answer should be a pair (exact AP, FastAP with L=5), got {answer!r}")
    if abs(got_ap - ap) > 1e-3:
        return Feedback(
            False,
            f"the exact AP is not {got_ap:.4f}; the positives are now at ranks 1, 2 and 6 "
            "(precision 1/1, 2/2, 3/6 at each)",
        )
    if abs(got_fast - fast) > 1e-3:
        return Feedback(
            False,
            f"the exact AP {ap:.4f} is right, FastAP is not {got_fast:.4f}; redo the table: the item at "
            "d² = 0.8 (rank 2) now adds a whole positive to bin 1, the one at d² = 1.2 half a negative to bins 1 and 2",
        )
    return Feedback(True, f"exact AP {ap:.4f} and FastAP(L=5) {fast:.4f}: the bins still tie ranks 2 and 3")


def smooth_ap_reference(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """The kit's :class:`SmoothAPLoss` (the query left out of its own sets)."""
    return SmoothAPLoss(temperature)(embeddings, labels).detach()


def _smooth_ap_inputs() -> list[tuple[Any, ...]]:
    generator = torch.Generator().manual_seed(3)
    inputs: list[tuple[Any, ...]] = []
    for batch, classes, size, temperature in ((12, 4, 8, 0.1), (12, 4, 8, 0.01), (10, 5, 3, 0.5)):
        embeddings = torch.randn(batch, size, generator=generator, dtype=torch.float64)
        labels = torch.arange(classes).repeat(batch // classes)[torch.randperm(batch, generator=generator)]
        inputs.append((embeddings, labels, temperature))
    return inputs


@exercise("03.6")
def _smooth_ap(answer: Any) -> Feedback:
    return same_function(answer, smooth_ap_reference, _smooth_ap_inputs(), what="your Smooth-AP loss")


def _wrong_smooth_ap(embeddings, labels, temperature):
    """Keeps j = i in the rank sums (every rank 0.5 too large)."""
    x = torch.nn.functional.normalize(embeddings, dim=1)
    s = x @ x.T
    not_self = ~torch.eye(len(labels), dtype=torch.bool)
    positive = (labels[:, None] == labels[None, :]) & not_self
    sig = torch.sigmoid((s.unsqueeze(1) - s.unsqueeze(2)) / temperature)
    rank_all = 1 + (sig * not_self.unsqueeze(1)).sum(2)
    rank_pos = 1 + (sig * positive.unsqueeze(1)).sum(2)
    ap = (positive * rank_pos / rank_all).sum(1) / positive.sum(1)
    return 1 - ap.mean()


#: One wrong answer per check (the tests assert that each check refuses it).
WRONG = {"03.3": (0.7222, 0.6074), "03.6": _wrong_smooth_ap}
