"""Self-checks of notebook 06 (few-shot learning): ``check("06.k", answer)``.

- ``06.2``: the loss floor of matching networks, ``floor(n_way, temperature)``.
- ``06.3``: the worked example's prototypes after one soft k-means step with the unlabelled
  point moved to ``(2, 1.5)``.
- ``06.6``: one soft k-means refinement of the prototypes (Ren et al., ICLR 2018, Eq. 4), written
  by the student, compared with :meth:`dmlkit.few_shot.SemiSupervisedPrototypes.refine`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from dmlkit.exercises import Feedback, exercise, same_function

__all__ = ["WRONG"]

#: The worked example of section 1: six support points of three classes.
SUPPORT = ((1.0, 1.0), (3.0, 1.0), (1.0, 3.0), (1.0, 5.0), (5.0, 5.0), (5.0, 3.0))
SUPPORT_LABELS = (0, 0, 1, 1, 2, 2)


def _matching_floor(n_way: int, temperature: float) -> float:
    # the best case of cosine attention: cos 1 to the query's own class, -1 to the other n_way - 1
    return math.log1p((n_way - 1) * math.exp(-2.0 / temperature))


@exercise("06.2")
def matching_floor(answer: Any) -> Feedback:
    """``floor(n_way, temperature)``: the smallest matching-network loss per query."""
    cases = [(32, 1.0), (32, 0.1), (5, 1.0), (16, 0.5), (20, 2.0)]
    feedback = same_function(answer, _matching_floor, cases, what="your floor(n_way, temperature)", atol=1e-6)
    if not feedback:
        return Feedback(
            False,
            feedback.message + "; hint: at best the query's cosine is 1 with its class and -1 with the others, "
            "and the temperature divides the cosines before the softmax",
        )
    return Feedback(
        True,
        f"{feedback.message}: {_matching_floor(32, 1.0):.2f} at the paper's temperature 1, "
        f"{_matching_floor(32, 0.1):.1e} at 0.1 (32-way training episodes)",
    )


def _refined(unlabelled: tuple[float, float]) -> torch.Tensor:
    from dmlkit.few_shot import SemiSupervisedPrototypes

    support = torch.tensor(SUPPORT, dtype=torch.float64)
    labels = torch.tensor(SUPPORT_LABELS)
    return SemiSupervisedPrototypes().refine(support, labels, torch.tensor([unlabelled], dtype=torch.float64))


@exercise("06.3")
def moved_unlabelled(answer: Any) -> Feedback:
    """The three refined prototypes (a 3 × 2 tensor or nested list) with the unlabelled point at (2, 1.5)."""
    expected = _refined((2.0, 1.5))
    try:
        got = torch.as_tensor(answer, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return Feedback(
            False, f"give the three refined prototypes as a 3 × 2 tensor or list, got {type(answer).__name__}"
        )
    if got.shape != expected.shape:
        return Feedback(False, f"give all three prototypes, shape (3, 2); got shape {tuple(got.shape)}")
    if torch.allclose(got, _refined((3.0, 3.0)), atol=1e-3):
        return Feedback(False, "those are the prototypes with the unlabelled point still at (3, 3)")
    if not torch.allclose(got, expected, atol=1e-3):
        return Feedback(
            False,
            "not the refined prototypes; hint: the weights are a softmax over minus the squared distances "
            "to the labelled prototypes (2, 1), (1, 4), (5, 4), and each class's two support points count once",
        )
    moved = (expected - _refined((2.0, 1.5)).new_tensor([[2.0, 1.0], [1.0, 4.0], [5.0, 4.0]])).norm(dim=1)
    return Feedback(
        True,
        f"class 0's prototype moves {moved[0]:.3f} (to ({expected[0, 0]:.3f}, {expected[0, 1]:.3f})), the others "
        f"{moved[1]:.1e} and {moved[2]:.1e}: the point is almost certainly class 0's (weight "
        f"{1 / (1 + math.exp(-7) + math.exp(-15)):.4f})",
    )


def _refine_inputs():
    generator = torch.Generator().manual_seed(6)
    for n_way, k_shot, n_unlabelled, dim in ((3, 1, 4, 2), (5, 2, 10, 8), (4, 3, 7, 16), (5, 1, 1, 4)):
        support = torch.randn(n_way * k_shot, dim, generator=generator, dtype=torch.float64)
        labels = torch.arange(n_way).repeat(k_shot)[torch.randperm(n_way * k_shot, generator=generator)]
        unlabelled = 1.5 * torch.randn(n_unlabelled, dim, generator=generator, dtype=torch.float64)
        yield support, labels, unlabelled


def _kit_refine(support, labels, unlabelled):
    from dmlkit.few_shot import SemiSupervisedPrototypes

    return SemiSupervisedPrototypes().refine(support, labels, unlabelled)


@exercise("06.6")
def soft_kmeans_step(answer: Any) -> Feedback:
    """``refine(support, support_labels, unlabelled) -> (n_way, D)``: Ren et al.'s soft k-means step."""
    feedback = same_function(
        answer, _kit_refine, list(_refine_inputs()), what="your refine(support, support_labels, unlabelled)"
    )
    if feedback:
        return Feedback(True, feedback.message + " (SemiSupervisedPrototypes('none').refine, one step)")
    return Feedback(
        False,
        feedback.message + "; hint: start from the class means, weight each unlabelled point by a softmax over "
        "minus its squared Euclidean distances to them, and divide by the support count plus the weights",
    )


def _refine_hard(support, labels, unlabelled):
    """A wrong refinement: hard k-means (each unlabelled point joins its nearest prototype fully)."""
    n_way = int(labels.max()) + 1
    one_hot = torch.nn.functional.one_hot(labels, n_way).to(support.dtype)
    prototypes = (one_hot.T @ support) / one_hot.sum(0, keepdim=True).T
    nearest = torch.cdist(unlabelled, prototypes).argmin(dim=1)
    weights = torch.nn.functional.one_hot(nearest, n_way).to(support.dtype)
    return (one_hot.T @ support + weights.T @ unlabelled) / (one_hot.sum(0) + weights.sum(0)).unsqueeze(1)


#: A wrong answer per check (the test asserts that each check refuses it).
WRONG = {
    "06.2": lambda n_way, temperature: math.log1p((n_way - 1) * math.exp(-2.0)),  # forgets the temperature
    "06.3": [[2.1429, 1.2857], [1.2857, 3.8571], [4.7143, 3.8571]],  # the unlabelled point still at (3, 3)
    "06.6": _refine_hard,
}
