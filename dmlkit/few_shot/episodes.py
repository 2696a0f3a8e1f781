"""Episodes: splitting a P×K batch into support and query, the episodic loss, sampling test episodes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_int
from dmlkit.few_shot.classifiers import make_classifier
from dmlkit.few_shot.heads import FewShotClassifier, _check_float

__all__ = ["split_support_query", "EpisodicLoss", "Episodes", "sample_episodes"]


def split_support_query(
    embeddings: Tensor, labels: Tensor, k_shot: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Split a labelled batch into an episode: the first ``k_shot`` samples of each class (in
    batch order) are the support, the rest the queries.

    Returns:
        ``(support, support_labels, query, query_labels, classes)``: support and query ordered
        class by class, their episode labels ``0 .. n_way-1`` and the ``n_way`` original labels
        (sorted) that those stand for.

    Raises:
        ValueError: when the batch has fewer than two classes or a class has at most ``k_shot``
        samples (no query left).
    """
    if isinstance(k_shot, bool) or not isinstance(k_shot, int) or k_shot < 1:
        raise ValueError(f"k_shot must be a positive integer, got {k_shot!r}")
    _check_float(embeddings, "embeddings", (2,))
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != embeddings.shape[0]:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(
            f"labels must be a 1-D tensor with one label per embedding ({embeddings.shape[0]}), got {shape}"
        )
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    classes, local = torch.unique(labels, return_inverse=True)
    n_way = classes.numel()
    if n_way < 2:
        raise ValueError(f"an episode needs at least 2 classes, the batch has {n_way}")
    counts = torch.bincount(local, minlength=n_way)
    short = (counts <= k_shot).nonzero().flatten()
    if short.numel():
        c = int(short[0])
        raise ValueError(
            f"class {int(classes[c])} has {int(counts[c])} sample(s) in the batch; an episode needs "
            f"more than k_shot={k_shot} per class (k_shot support + at least one query): train with "
            f"K > k_shot"
        )
    order = torch.sort(local, stable=True).indices
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(labels.shape[0], device=labels.device) - starts[local[order]]
    support_index, query_index = order[rank < k_shot], order[rank >= k_shot]
    return (
        embeddings[support_index],
        local[support_index],
        embeddings[query_index],
        local[query_index],
        classes,
    )


class EpisodicLoss(nn.Module):
    r"""Episodic training as a metric loss: ``forward(embeddings, labels)`` for :func:`dmlkit.train.fit`.

    Each class of the batch gives its first ``k_shot`` samples as the support set and the rest as
    queries (:func:`split_support_query`); the loss is the mean cross-entropy of the queries
    under the head's scores — Snell et al.'s :math:`J` (Algorithm 1) for ``"protonet"``,
    Vinyals et al.'s training objective for ``"matching"``. With :func:`~dmlkit.train.fit`'s
    P×K sampler, ``P`` classes of ``K`` images give a ``P``-way ``k_shot``-shot episode with
    ``K - k_shot`` queries per class (Snell et al. train with more ways than they test).

    Args:
        method: a name of :func:`make_classifier` or a :class:`FewShotClassifier` (its
            parameters, if any, are trained with the model).
        k_shot: support images per class (``K`` must exceed it).
        **options: constructor options of the named head.
    """

    def __init__(self, method: str | FewShotClassifier = "protonet", k_shot: int = 1, **options: Any) -> None:
        super().__init__()
        if isinstance(k_shot, bool) or not isinstance(k_shot, int) or k_shot < 1:
            raise ValueError(f"k_shot must be a positive integer, got {k_shot!r}")
        self.classifier = make_classifier(method, **options)
        self.k_shot = k_shot

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        support, support_labels, query, query_labels, _ = split_support_query(embeddings, labels, self.k_shot)
        scores = self.classifier(support, support_labels, query)
        return F.cross_entropy(scores, query_labels)

    def extra_repr(self) -> str:
        return f"k_shot={self.k_shot}"


@dataclass
class Episodes:
    """Dataset indices of ``E`` episodes, as tensors (built by :func:`sample_episodes`).

    Attributes:
        support: ``(E, n_way * k_shot)``, class by class; labels :attr:`support_labels`.
        query: ``(E, n_way * n_query)``, class by class; labels :attr:`query_labels`.
        unlabelled: ``(E, n_way * n_unlabelled)`` more images of the episode classes.
        distractors: ``(E, n_distractors * n_unlabelled)`` images of other classes.
        classes: ``(E, n_way)`` dataset labels of the episode classes.
    """

    support: torch.Tensor
    support_labels: torch.Tensor
    query: torch.Tensor
    query_labels: torch.Tensor
    unlabelled: torch.Tensor
    distractors: torch.Tensor
    classes: torch.Tensor

    def __len__(self) -> int:
        return self.support.shape[0]


def sample_episodes(
    labels: Tensor | Sequence[int],
    n_way: int,
    k_shot: int,
    n_query: int,
    num_episodes: int,
    seed: int = 0,
    n_unlabelled: int = 0,
    n_distractors: int = 0,
) -> Episodes:
    """A reproducible list of episodes as index tensors.

    The episodes come from :class:`dmlkit.data.EpisodeSampler` (same seed, same list): with
    ``n_unlabelled = n_distractors = 0`` exactly those of
    ``EpisodeSampler(labels, n_way, k_shot, n_query, num_episodes, seed).episodes()``. For
    semi-supervised episodes (Ren et al., ICLR 2018, Sec. 4) the sampler draws
    ``n_way + n_distractors`` classes with ``k_shot + n_unlabelled`` support images: the first
    ``n_way`` classes are the episode's, their extra images the unlabelled set; the other
    classes are distractors, of which ``n_unlabelled`` images each join the unlabelled set
    (their query images are drawn but unused). The same arguments always give the same labelled
    support and queries, so methods with and without the unlabelled images, or with and without
    the distractors, are compared on identical episodes.
    """
    from dmlkit.data.samplers import EpisodeSampler

    n_way = check_int("n_way", n_way, 2)
    k_shot = check_int("k_shot", k_shot, 1)
    n_query = check_int("n_query", n_query, 1)
    num_episodes = check_int("num_episodes", num_episodes, 1)
    n_unlabelled = check_int("n_unlabelled", n_unlabelled, 0)
    n_distractors = check_int("n_distractors", n_distractors, 0)
    if n_distractors and not n_unlabelled:
        raise ValueError("n_distractors needs n_unlabelled > 0 (distractor images join the unlabelled set)")
    sampler = EpisodeSampler(labels, n_way + n_distractors, k_shot + n_unlabelled, n_query, num_episodes, seed=seed)
    episodes = sampler.episodes()
    ways, shots = n_way + n_distractors, k_shot + n_unlabelled
    support = torch.tensor([e.support for e in episodes], dtype=torch.long).reshape(num_episodes, ways, shots)
    query = torch.tensor([e.query for e in episodes], dtype=torch.long).reshape(num_episodes, ways, n_query)
    classes = torch.tensor([e.classes for e in episodes], dtype=torch.long)
    return Episodes(
        support=support[:, :n_way, :k_shot].reshape(num_episodes, -1),
        support_labels=torch.arange(n_way).repeat_interleave(k_shot),
        query=query[:, :n_way].reshape(num_episodes, -1),
        query_labels=torch.arange(n_way).repeat_interleave(n_query),
        unlabelled=support[:, :n_way, k_shot:].reshape(num_episodes, -1),
        distractors=support[:, n_way:, k_shot:].reshape(num_episodes, -1),
        classes=classes[:, :n_way],
    )
