"""The evaluation protocol: accuracy over test episodes with 95 % intervals, paired differences, tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_int
from dmlkit.few_shot.classifiers import make_classifier
from dmlkit.few_shot.episodes import sample_episodes
from dmlkit.few_shot.heads import FewShotClassifier, _check_float

__all__ = [
    "confidence_interval",
    "evaluate_embeddings",
    "evaluate_episodes",
    "paired_difference",
]


def confidence_interval(accuracies: Sequence[float] | np.ndarray | Tensor) -> tuple[float, float]:
    r"""Mean and 95% confidence half-width :math:`1.96\,\sigma/\sqrt n` of per-episode accuracies.

    :math:`\sigma` is the population standard deviation (NumPy's default, ``ddof=0``), the
    usual choice of few-shot code bases; the normal approximation is sound for the hundreds of
    episodes of the standard protocol (600 or more).
    """
    values = np.asarray(torch.as_tensor(accuracies, dtype=torch.float64).cpu(), dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("confidence_interval needs at least one accuracy")
    if not np.isfinite(values).all():
        raise ValueError("accuracies contain NaN or infinite values")
    return float(values.mean()), float(1.96 * values.std() / math.sqrt(values.size))


def evaluate_embeddings(
    embeddings: Tensor,
    labels: Tensor,
    n_way: int = 5,
    k_shot: int = 1,
    n_query: int = 15,
    num_episodes: int = 600,
    method: str | FewShotClassifier = "protonet",
    seed: int = 0,
    *,
    normalize: bool = False,
    n_unlabelled: int = 0,
    n_distractors: int = 0,
    use_distractors: bool = True,
    episodes_per_batch: int = 100,
) -> dict[str, Any]:
    """Few-shot accuracy of precomputed embeddings over seeded episodes (:func:`sample_episodes`).

    Args:
        embeddings, labels: ``(N, D)`` embeddings of a data set and their ``(N,)`` classes.
        n_way, k_shot, n_query, num_episodes, seed: the episodes (the standard report: 5-way,
            1 and 5 shots, 15 queries, 600 or more episodes).
        method: a head (:func:`make_classifier` name or instance).
        normalize: L2-normalise the embeddings first (for networks trained on the sphere).
        n_unlabelled, n_distractors: semi-supervised episodes; the unlabelled images (and, with
            ``use_distractors``, the distractors') go only to heads with ``uses_unlabelled``.
        use_distractors: include the distractor images in the unlabelled set (they are drawn
            either way, so both settings see the same episodes).
        episodes_per_batch: episodes classified at once (memory ~ this × queries × n_way × D).

    Returns:
        ``{"accuracy": mean, "ci95": 1.96·std/√n, "accuracies": [per episode], "num_episodes",
        "n_way", "k_shot", "n_query"}``.
    """
    if not isinstance(embeddings, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise TypeError("embeddings and labels must be torch tensors")
    _check_float(embeddings, "embeddings", (2,))
    if labels.dim() != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"labels must be 1-D with one label per embedding ({embeddings.shape[0]}), got shape {tuple(labels.shape)}"
        )
    episodes_per_batch = check_int("episodes_per_batch", episodes_per_batch, 1)
    classifier = make_classifier(method)
    episodes = sample_episodes(labels, n_way, k_shot, n_query, num_episodes, seed, n_unlabelled, n_distractors)
    x = F.normalize(embeddings, dim=1) if normalize else embeddings
    classifier.check_points(x)  # once for the whole set; the episodes skip the per-call checks
    device = next((p.device for p in classifier.parameters()), x.device)
    x = x.to(device)
    one_hot = F.one_hot(episodes.support_labels, n_way).to(device, x.dtype).unsqueeze(0)
    query_labels = episodes.query_labels.to(device)
    accuracies = []
    was_training = classifier.training
    classifier.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(episodes), episodes_per_batch):
                rows = slice(start, start + episodes_per_batch)
                support, query = x[episodes.support[rows].to(device)], x[episodes.query[rows].to(device)]
                unlabelled = None
                if classifier.uses_unlabelled:
                    pool = [episodes.unlabelled[rows]]
                    if use_distractors:
                        pool.append(episodes.distractors[rows])
                    unlabelled = x[torch.cat(pool, dim=1).to(device)]
                scores = classifier.scores(support, one_hot.expand(support.shape[0], -1, -1), query, unlabelled)
                accuracies.append((scores.argmax(dim=-1) == query_labels).to(torch.float64).mean(dim=-1).cpu())
    finally:
        classifier.train(was_training)
    per_episode = torch.cat(accuracies)
    mean, half_width = confidence_interval(per_episode)
    return {
        "accuracy": mean,
        "ci95": half_width,
        "accuracies": per_episode.tolist(),
        "num_episodes": len(episodes),
        "n_way": n_way,
        "k_shot": k_shot,
        "n_query": n_query,
    }


def evaluate_episodes(model: nn.Module, dataset: Any, *args: Any, **options: Any) -> dict[str, Any]:
    """Embed ``dataset`` once with ``model`` (:func:`dmlkit.evaluate.embed`) and evaluate seeded
    episodes on the embeddings: the remaining arguments (``n_way``, ``k_shot``, ``n_query``,
    ``num_episodes``, ``method``, ``seed``, then the keywords ``normalize``, ``n_unlabelled``, ...)
    are those of :func:`evaluate_embeddings`, with its defaults.

    Returns ``{"accuracy", "ci95", "accuracies", ...}`` as :func:`evaluate_embeddings`.
    """
    from dmlkit.evaluate import embed

    embeddings, labels = embed(model, dataset)
    return evaluate_embeddings(embeddings, labels, *args, **options)


def paired_difference(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
    """Mean and 95% half-width of the per-episode accuracy difference ``a - b``.

    ``a`` and ``b`` are results of :func:`evaluate_embeddings` on the *same* episodes (same
    labels, seed and episode settings): pairing removes the episode-to-episode variation both
    share, so the interval is much narrower than comparing two separate intervals.
    """
    keys = ("num_episodes", "n_way", "k_shot", "n_query")
    if any(a.get(k) != b.get(k) for k in keys):
        raise ValueError(
            "paired_difference needs results on the same episodes; got "
            f"{ {k: a.get(k) for k in keys} } and { {k: b.get(k) for k in keys} }"
        )
    return confidence_interval(np.asarray(a["accuracies"]) - np.asarray(b["accuracies"]))
