"""Self-checks for notebook 01 (pair-based losses): ``check("01.2", answer)`` and the others."""

from __future__ import annotations

from typing import Any

import torch

from dmlkit.exercises import Feedback, close_to, exercise, same_function

__all__ = ["WRONG"]

#: The worked example's points (A0, A1, B0, B1) and classes.
POINTS = ((0.0, 0.0), (0.6, 0.0), (0.3, 0.4), (0.3, -0.6))
LABELS = (0, 0, 1, 1)


def _moved_example() -> tuple[int, float]:
    from dmlkit.distances import EuclideanDistance
    from dmlkit.losses.pair_based import TripletMarginLoss
    from dmlkit.miners import TripletMarginMiner

    plain = EuclideanDistance(normalize_embeddings=False)
    points = torch.tensor(POINTS, dtype=torch.float64)
    points[3] = torch.tensor([0.3, -0.75], dtype=torch.float64)
    labels = torch.tensor(LABELS)
    anchors, _, _ = TripletMarginMiner(0.2, "semihard", distance=plain)(points, labels)
    loss = TripletMarginLoss(margin=0.2, mining="all", distance=plain)(points, labels)
    return len(anchors), float(loss)


@exercise("01.2")
def moved_b1(answer: Any) -> Feedback:
    """The semihard triplets and the *all* loss of the worked example with B1 at (0.3, -0.75)."""
    if not isinstance(answer, dict) or not {"semihard_triplets", "all_loss"} <= set(answer):
        return Feedback(False, "give a dict {'semihard_triplets': <count>, 'all_loss': <value>}")
    count, loss = _moved_example()
    if answer["semihard_triplets"] != count:
        return Feedback(
            False,
            f"semihard mining does not keep {answer['semihard_triplets']!r} triplets; compare "
            "each negative's distance with the positive's and with the positive's + 0.2",
        )
    return close_to(
        answer["all_loss"],
        loss,
        tol=1e-3,
        what="the 'all' loss",
        why="the mean over the violating triplets only (a satisfied one is dropped, not counted as 0)",
    )


@exercise("01.3")
def weight_drop(answer: Any) -> Feedback:
    """The factor by which MS's weight of a negative at S = 0.7 falls when 3 context negatives move 0.6 -> 0.9."""
    from dmlkit.distances import PrecomputedSimilarity
    from dmlkit.losses.pair_based import MultiSimilarityLoss, pair_weight

    ms = MultiSimilarityLoss(distance=PrecomputedSimilarity())
    labels = torch.tensor([0, 1, 0, 1, 1, 1])
    before = pair_weight(ms, [1.0, 0.7, 0.8, 0.6, 0.6, 0.6], labels, 1)
    after = pair_weight(ms, [1.0, 0.7, 0.8, 0.9, 0.9, 0.9], labels, 1)
    expected = before / after
    return close_to(
        answer,
        expected,
        tol=1e-3 * expected,
        what="the factor (weight before / weight after)",
        why="the numerator e^{β(0.7-λ)} cancels; the denominators 1 + Σ e^{β(S-λ)} decide",
    )


def _kit_ms_weights(similarities, labels, alpha, beta, base):
    from dmlkit.distances import PrecomputedSimilarity
    from dmlkit.losses.pair_based import MultiSimilarityLoss, pair_weight

    ms = MultiSimilarityLoss(alpha, beta, base, epsilon=None, distance=PrecomputedSimilarity())
    return torch.tensor([pair_weight(ms, similarities, labels, j) for j in range(len(labels))], dtype=torch.float64)


def _ms_inputs():
    generator = torch.Generator().manual_seed(0)
    for alpha, beta, base in ((2.0, 40.0, 0.5), (2.0, 50.0, 0.5), (1.0, 10.0, 0.3), (2.0, 40.0, 0.5)):
        size = int(torch.randint(5, 10, (1,), generator=generator))
        labels = torch.randint(0, 3, (size,), generator=generator)
        labels[0], labels[1], labels[2] = 0, 0, 1  # at least one positive and one negative
        row = torch.rand(size, generator=generator, dtype=torch.float64) * 2 - 1
        row[0] = 1.0
        yield row, labels, alpha, beta, base


@exercise("01.7")
def ms_weights(answer: Any) -> Feedback:
    """``ms_weights(similarities, labels, alpha, beta, base)`` against the autograd weights of the kit's MS loss."""
    return same_function(answer, _kit_ms_weights, list(_ms_inputs()), what="your ms_weights")


def _softmax_without_one(similarities, labels, alpha, beta, base):
    s = torch.as_tensor(similarities, dtype=torch.float64)
    others = torch.arange(len(labels)) != 0
    positive, negative = (labels == labels[0]) & others, labels != labels[0]
    pos = torch.where(positive, torch.exp(-alpha * (s - base)), torch.zeros_like(s))
    neg = torch.where(negative, torch.exp(beta * (s - base)), torch.zeros_like(s))
    return pos / pos.sum() + neg / neg.sum()  # forgets the 1 + of the log(1 + Σ) terms


#: A wrong answer per check (the test asserts that each check refuses it).
WRONG = {
    "01.2": {"semihard_triplets": 2, "all_loss": 0.4146},  # the values before the move
    "01.3": 1.0,
    "01.7": _softmax_without_one,
}
