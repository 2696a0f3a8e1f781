"""Datasets and samplers.

- :func:`load` — a dataset by name (``"glyphs"``, ``"fashion_mnist"``, ``"digits"``,
  ``"cub200"``, ``"cars196"``, ``"sop"``), see :mod:`dmlkit.data.registry`.
- :class:`PKSampler`, :class:`EpisodeSampler` — class-balanced batches and few-shot episodes.
- :func:`split_validation_classes` — validation classes carved out of the training classes.
"""

from dmlkit.data.base import LabelledDataset, TensorImageDataset
from dmlkit.data.paths import DatasetNotFoundError, data_dir
from dmlkit.data.registry import available, load, register
from dmlkit.data.samplers import Episode, EpisodeSampler, PKSampler
from dmlkit.data.splits import ClassSplit, split_validation_classes

__all__ = [
    "LabelledDataset",
    "TensorImageDataset",
    "DatasetNotFoundError",
    "data_dir",
    "available",
    "load",
    "register",
    "Episode",
    "EpisodeSampler",
    "PKSampler",
    "ClassSplit",
    "split_validation_classes",
]
