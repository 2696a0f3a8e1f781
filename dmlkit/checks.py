"""Validation in one place: every argument and input check of the kit, with messages that say what
was expected and what came.

Tensors (:func:`check_embeddings`, :func:`check_embeddings_and_labels`), numbers
(:func:`check_real`, :func:`check_int`, :func:`check_positive`, :func:`check_non_negative`,
:func:`check_probability`), choices among strings (:func:`check_choice`), the curvature
of the Poincaré ball (:func:`check_curvature`) and the arguments of retrieval evaluations
(:func:`check_ks`, :func:`check_chunk_size`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "check_embeddings",
    "check_embeddings_and_labels",
    "check_real",
    "check_int",
    "check_positive",
    "check_non_negative",
    "check_choice",
    "check_probability",
    "check_curvature",
    "check_ks",
    "check_chunk_size",
    "check_split_arguments",
    "check_class_batch",
]


def check_embeddings(embeddings: Tensor, name: str = "embeddings") -> None:
    """Raise a ``ValueError`` unless ``embeddings`` is a finite floating 2-D tensor with rows."""
    if not isinstance(embeddings, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(embeddings).__name__}")
    if embeddings.dim() != 2:
        raise ValueError(f"{name} must be 2-D (batch_size, embedding_size), got shape {tuple(embeddings.shape)}")
    if embeddings.shape[0] == 0 or embeddings.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(embeddings.shape)}")
    if not embeddings.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {embeddings.dtype}")
    if not torch.isfinite(embeddings).all():
        bad = (~torch.isfinite(embeddings)).any(dim=1).nonzero().flatten()[:5].tolist()
        raise ValueError(f"{name} contain NaN or infinite values (first bad rows: {bad})")


def check_embeddings_and_labels(embeddings: Tensor, labels: Tensor) -> None:
    """Validate a batch: finite 2-D float embeddings and a 1-D integer label per row."""
    check_embeddings(embeddings)
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dim() != 1:
        raise ValueError(f"labels must be 1-D (batch_size,), got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"embeddings and labels disagree on the batch size: {embeddings.shape[0]} embeddings, "
            f"{labels.shape[0]} labels"
        )


def check_real(name: str, value: object) -> float:
    """``value`` as a float; ``ValueError`` unless it is a finite real number (not a bool)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_int(name: str, value: object, minimum: int | None = None) -> int:
    """``value`` as an int; ``ValueError`` unless it is an integer (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_positive(name: str, value: object) -> float:
    """``value`` as a float; ``ValueError`` unless it is a finite number > 0."""
    if check_real(name, value) <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def check_non_negative(name: str, value: object) -> float:
    """``value`` as a float; ``ValueError`` unless it is a finite number >= 0."""
    if check_real(name, value) < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def check_probability(name: str, value: object) -> float:
    """``value`` as a float; ``ValueError`` unless ``0 <= value <= 1``."""
    if not 0.0 <= check_real(name, value) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return float(value)


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """``value``; ``ValueError`` unless it is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value  # type: ignore[return-value]


def check_curvature(c: float) -> float:
    """Return ``c`` as a float after checking that it is a finite number ``>= 0``."""
    if isinstance(c, torch.Tensor):
        if c.numel() != 1:
            raise ValueError(f"c must be a single number, got a tensor of shape {tuple(c.shape)}")
        c = c.item()
    if isinstance(c, bool) or not isinstance(c, numbers.Real):
        raise TypeError(f"c must be a real number, got {c!r} ({type(c).__name__})")
    c = float(c)
    if not math.isfinite(c) or c < 0:
        raise ValueError(
            f"c must be a finite number >= 0 (the ball has curvature -c; c = 0 is the Euclidean limit), got {c!r}"
        )
    return c


def check_ks(ks: int | Iterable[int], num_items: int) -> tuple[int, ...]:
    """The ``k`` of Recall@k as a tuple of ints, each in ``[1, num_items - 1]`` (the query is
    never its own neighbour); ``ValueError`` otherwise."""
    if isinstance(ks, (int, np.integer)) and not isinstance(ks, bool):
        ks = (ks,)
    ks = tuple(ks)
    if not ks:
        raise ValueError("ks must name at least one k")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"every k in ks must be a positive integer, got ks={ks!r}")
        if k > num_items - 1:
            raise ValueError(
                f"k={k} needs at least {k + 1} embeddings (the query is excluded from its neighbours), got {num_items}"
            )
    return tuple(int(k) for k in ks)


def check_chunk_size(chunk_size: int | None) -> None:
    """``None`` (choose from the memory budget) or a positive integer number of query rows."""
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")


def check_split_arguments(split: str, split_by: str, train_fraction: float) -> None:
    """The arguments every data-set loader shares: ``split`` is ``"train"``, ``"test"`` or
    ``"all"``, ``split_by`` ``"classes"`` or ``"images"``, and ``0 < train_fraction < 1``."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if split_by not in ("classes", "images"):
        raise ValueError(f"split_by must be 'classes' or 'images', got {split_by!r}")
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction}")


def check_class_batch(embeddings: Tensor, labels: Tensor, num_classes: int, embedding_size: int, owner: str) -> None:
    """A batch for a loss with one parameter per class (a classifier, proxies): finite 2-D
    embeddings of ``embedding_size`` and labels in ``[0, num_classes)``; ``owner`` names the loss."""
    check_embeddings_and_labels(embeddings, labels)
    if embeddings.shape[1] != embedding_size:
        raise ValueError(
            f"{owner} was built for embeddings of size {embedding_size}, got embeddings of size {embeddings.shape[1]}"
        )
    if ((labels < 0) | (labels >= num_classes)).any():
        raise ValueError(
            f"labels must lie in [0, {num_classes}) (num_classes={num_classes}), "
            f"got range [{int(labels.min())}, {int(labels.max())}]"
        )
