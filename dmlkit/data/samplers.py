"""Batch samplers: class-balanced P×K batches for metric losses and N-way K-shot episodes.

Both are seeded ``torch.utils.data.Sampler`` objects yielding lists of dataset indices, usable as
``batch_sampler=`` of a ``DataLoader`` or directly with ``dataset.get_batch(indices)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Sampler

__all__ = ["PKSampler", "EpisodeSampler", "Episode"]


def _class_index(labels: Tensor | Sequence[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    labels = np.asarray(torch.as_tensor(labels).cpu())
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence, got shape {labels.shape}")
    classes, inverse = np.unique(labels, return_inverse=True)
    members = [np.flatnonzero(inverse == c) for c in range(len(classes))]
    return classes, members


def _batch_count_and_small_classes(
    owner: str,
    labels: Tensor | Sequence[int],
    members: list[np.ndarray],
    K: int,
    batch_size: int,
    num_batches: int | None,
) -> tuple[int, int]:
    """Batches per pass (default: about one epoch) and the number of classes with fewer than
    ``K`` items, warning about those (their batches repeat items)."""
    if num_batches is None:
        num_batches = max(1, len(np.asarray(torch.as_tensor(labels))) // batch_size)
    if num_batches < 1:
        raise ValueError(f"num_batches must be at least 1, got {num_batches}")
    small = int(sum(len(m) < K for m in members))
    if small:
        warnings.warn(
            f"{owner}: {small} of {len(members)} classes have fewer than K={K} items; their "
            f"batches repeat items (drawn with replacement)",
            stacklevel=3,
        )
    return int(num_batches), small


class PKSampler(Sampler[list[int]]):
    """Class-balanced batches of ``P`` classes with ``K`` images each (Hermans et al., 2017,
    "In Defense of the Triplet Loss for Person Re-Identification", Sec. 2).

    Every batch draws ``P`` distinct classes at random, then ``K`` images of each without
    replacement. A class with fewer than ``K`` images is not dropped: its images are all used and
    the batch is filled up by drawing again from them (with replacement), so such a class still
    gives positive pairs; a warning says how many classes this concerns. Classes with a single
    image give a duplicated image (identical without augmentation).

    Args:
        labels: the class of every item of the dataset.
        P: classes per batch (at most the number of classes).
        K: images per class in a batch (at least 1; 2 or more for positive pairs).
        num_batches: batches per pass; by default ``len(labels) // (P*K)`` (about one epoch).
        seed: seed of the sampler's own generator; each pass continues the same stream.
    """

    def __init__(
        self, labels: Tensor | Sequence[int], P: int, K: int, num_batches: int | None = None, seed: int = 0
    ) -> None:
        self.classes, self.members = _class_index(labels)
        if P < 1 or K < 1:
            raise ValueError(f"P and K must be at least 1, got P={P}, K={K}")
        if len(self.classes) < P:
            raise ValueError(f"P={P} classes per batch but the data has only {len(self.classes)} classes")
        self.P, self.K = int(P), int(K)
        self.batch_size = self.P * self.K
        self.num_batches, self.small_classes = _batch_count_and_small_classes(
            "PKSampler", labels, self.members, self.K, self.batch_size, num_batches
        )
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.num_batches

    def _class_batch(self, members: np.ndarray) -> np.ndarray:
        if len(members) >= self.K:
            return self.rng.choice(members, size=self.K, replace=False)
        extra = self.rng.choice(members, size=self.K - len(members), replace=True)
        return np.concatenate([self.rng.permutation(members), extra])

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.num_batches):
            chosen = self.rng.choice(len(self.classes), size=self.P, replace=False)
            batch = np.concatenate([self._class_batch(self.members[c]) for c in chosen])
            yield batch.tolist()


class Episode(tuple):
    """Indices of one few-shot episode: ``(support, query)``, each a list ordered class by class.

    ``support`` holds ``n_way * k_shot`` indices (class 0's ``k_shot`` first), ``query`` holds
    ``n_way * n_query``; ``episode.classes`` lists the dataset labels of the ``n_way`` classes, in
    the order that defines the episode's own labels ``0 .. n_way-1``.
    """

    classes: list[int]

    def __new__(cls, support: list[int], query: list[int], classes: list[int]) -> Episode:
        episode = super().__new__(cls, (support, query))
        episode.classes = classes
        return episode

    @property
    def support(self) -> list[int]:
        return self[0]

    @property
    def query(self) -> list[int]:
        return self[1]


class EpisodeSampler(Sampler[Episode]):
    """N-way K-shot episodes with query images (Vinyals et al., NeurIPS 2016; Snell et al., 2017).

    Each episode draws ``n_way`` classes, then ``k_shot + n_query`` distinct images of each: the
    first ``k_shot`` are the support set, the rest the queries. Classes with fewer than
    ``k_shot + n_query`` images cannot fill an episode and are left out (with a warning); it is
    an error if fewer than ``n_way`` classes remain. The same seed gives the same episode list,
    so evaluations over ``num_episodes`` episodes are reproducible (:meth:`episodes`).

    Args:
        labels: the class of every item.
        n_way: classes per episode.
        k_shot: labelled support images per class.
        n_query: query images per class.
        num_episodes: episodes per pass.
        seed: seed of the sampler's generator.
    """

    def __init__(
        self, labels: Tensor | Sequence[int], n_way: int, k_shot: int, n_query: int, num_episodes: int, seed: int = 0
    ) -> None:
        if n_way < 2:
            raise ValueError(f"n_way must be at least 2, got {n_way}")
        if k_shot < 1 or n_query < 1:
            raise ValueError(f"k_shot and n_query must be at least 1, got {k_shot} and {n_query}")
        if num_episodes < 1:
            raise ValueError(f"num_episodes must be at least 1, got {num_episodes}")
        classes, members = _class_index(labels)
        need = k_shot + n_query
        eligible = [i for i, m in enumerate(members) if len(m) >= need]
        if len(eligible) < len(classes):
            warnings.warn(
                f"EpisodeSampler: {len(classes) - len(eligible)} classes have fewer than "
                f"k_shot + n_query = {need} items and are left out",
                stacklevel=2,
            )
        if len(eligible) < n_way:
            raise ValueError(
                f"only {len(eligible)} classes have at least k_shot + n_query = {need} items; "
                f"a {n_way}-way episode needs {n_way}"
            )
        self.classes = classes[eligible]
        self.members = [members[i] for i in eligible]
        self.n_way, self.k_shot, self.n_query = int(n_way), int(k_shot), int(n_query)
        self.num_episodes = int(num_episodes)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.num_episodes

    def __iter__(self) -> Iterator[Episode]:
        for _ in range(self.num_episodes):
            chosen = self.rng.choice(len(self.classes), size=self.n_way, replace=False)
            support, query = [], []
            for c in chosen:
                picked = self.rng.choice(self.members[c], size=self.k_shot + self.n_query, replace=False)
                support.extend(picked[: self.k_shot].tolist())
                query.extend(picked[self.k_shot :].tolist())
            yield Episode(support, query, [int(self.classes[c]) for c in chosen])

    def episodes(self) -> list[Episode]:
        """The fixed list of episodes for this seed (a fresh generator, so always the same)."""
        fresh = EpisodeSampler.__new__(EpisodeSampler)
        fresh.__dict__.update(self.__dict__)
        fresh.rng = np.random.default_rng(self.seed)
        return list(iter(fresh))


from collections.abc import Hashable, Mapping  # noqa: E402  (CategoryPKSampler, appended)


class CategoryPKSampler(Sampler[list[int]]):
    """P×K batches drawn from a few categories at a time: the category-based minibatch sampling
    of FastAP (Cakir, He, Xia, Kulis & Sclaroff, CVPR 2019, "Deep Metric Learning to Rank"),
    whose Stanford Online Products batches take half their classes from each of two categories.

    Each class belongs to a coarser *category* (a product type in Stanford Online Products; the
    Unicode script of a glyph). Every batch draws ``categories_per_batch`` distinct categories
    uniformly at random, then ``P // categories_per_batch`` distinct classes from each, then
    ``K`` images of each class exactly as :class:`PKSampler` does. The negatives of a query then
    mostly come from its own category — similar-looking classes — so the batch ranks a harder,
    more realistic retrieval set than ``P`` classes drawn from the whole dataset. With one
    category per batch every negative shares the query's category.

    A class with fewer than ``K`` images is kept: its images are all used and the batch is
    filled up by drawing again from them (with replacement), with a warning, as in
    :class:`PKSampler`.

    Args:
        labels: the class of every item of the dataset.
        categories: the category of every class: a mapping ``{class label: category}`` or a
            sequence indexed by class label (``categories[c]`` for class ``c``), e.g.
            ``[info["script"] for info in glyphs.class_info]``. Any hashable values.
        P: classes per batch, a multiple of ``categories_per_batch``.
        K: images per class in a batch (at least 1; 2 or more for positive pairs).
        categories_per_batch: categories in each batch (the paper: 2). Every category needs at
            least ``P // categories_per_batch`` classes; merge small categories (e.g. into an
            "other" group) before, or lower ``P``.
        num_batches: batches per pass; by default ``len(labels) // (P*K)`` (about one epoch).
        seed: seed of the sampler's own generator; each pass continues the same stream.

    Raises:
        ValueError: on a class without a category, ``P`` not divisible by
            ``categories_per_batch``, fewer categories than ``categories_per_batch``, or a
            category with fewer than ``P // categories_per_batch`` classes.
    """

    _class_batch = PKSampler._class_batch  # K images of one class, small classes filled up

    def __init__(
        self,
        labels: Tensor | Sequence[int],
        categories: Mapping[int, Hashable] | Sequence[Hashable],
        P: int,
        K: int,
        categories_per_batch: int = 2,
        num_batches: int | None = None,
        seed: int = 0,
    ) -> None:
        self.classes, self.members = _class_index(labels)
        if P < 1 or K < 1:
            raise ValueError(f"P and K must be at least 1, got P={P}, K={K}")
        if categories_per_batch < 1:
            raise ValueError(f"categories_per_batch must be at least 1, got {categories_per_batch}")
        if P % categories_per_batch:
            raise ValueError(
                f"P={P} classes per batch cannot be split evenly over categories_per_batch="
                f"{categories_per_batch} categories; choose P divisible by it"
            )
        self.P, self.K = int(P), int(K)
        self.categories_per_batch = int(categories_per_batch)
        self.classes_per_category = self.P // self.categories_per_batch
        self.batch_size = self.P * self.K

        # Category of every class, then the classes (positions in self.classes) of each category.
        category_of = []
        for c in self.classes.tolist():
            try:
                category_of.append(categories[c])
            except (KeyError, IndexError, TypeError):
                raise ValueError(
                    f"categories gives no category for class {c}; pass a mapping or a sequence "
                    f"indexed by class label covering every label"
                ) from None
        by_category: dict[Hashable, list[int]] = {}
        for position, category in enumerate(category_of):
            by_category.setdefault(category, []).append(position)
        if len(by_category) < self.categories_per_batch:
            raise ValueError(
                f"categories_per_batch={self.categories_per_batch} but the classes fall into only "
                f"{len(by_category)} categories"
            )
        too_small = {k: len(v) for k, v in by_category.items() if len(v) < self.classes_per_category}
        if too_small:
            listed = ", ".join(f"{k!r} ({n})" for k, n in sorted(too_small.items(), key=lambda kv: kv[1]))
            raise ValueError(
                f"each category must hold at least P // categories_per_batch = "
                f"{self.classes_per_category} classes; too few in {listed}. Merge small categories "
                f"or lower P"
            )
        self.category_names = list(by_category)
        self.category_classes = [np.asarray(v) for v in by_category.values()]

        self.num_batches, self.small_classes = _batch_count_and_small_classes(
            "CategoryPKSampler", labels, self.members, self.K, self.batch_size, num_batches
        )
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.num_batches):
            picked = self.rng.choice(len(self.category_classes), size=self.categories_per_batch, replace=False)
            chosen = np.concatenate(
                [
                    self.rng.choice(self.category_classes[g], size=self.classes_per_category, replace=False)
                    for g in picked
                ]
            )
            batch = np.concatenate([self._class_batch(self.members[c]) for c in chosen])
            yield batch.tolist()


__all__.append("CategoryPKSampler")
