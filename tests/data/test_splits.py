"""Validation classes carved out of the training classes (dmlkit.data.splits)."""

import pytest
import torch

from dmlkit.data import TensorImageDataset, split_validation_classes


def _dataset(num_classes=10, per_class=3):
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    images = (labels.view(-1, 1, 1, 1) * torch.ones(1, 1, 2, 2)).to(torch.uint8)  # pixel value = class
    return TensorImageDataset(images, labels, [f"c{i}" for i in range(num_classes)], name="toy")


def test_split_is_class_disjoint_complete_and_reindexed():
    data = _dataset()
    split = split_validation_classes(data, validation=3, seed=1)
    assert len(split.validation_classes) == 3
    assert set(split.train_classes).isdisjoint(split.validation_classes)
    assert sorted(split.train_classes + split.validation_classes) == list(range(10))
    assert len(split.train) + len(split.validation) == len(data)
    for part, original in ((split.train, split.train_classes), (split.validation, split.validation_classes)):
        assert part.labels.unique().tolist() == list(range(len(original)))
        # every item keeps its class: the pixel value is the original label
        pixels = part.images[:, 0, 0, 0].long()
        assert torch.equal(pixels, torch.tensor(original)[part.labels])
        assert part.classes == [f"c{c}" for c in original]


def test_split_is_seeded():
    data = _dataset(20)
    a = split_validation_classes(data, 5, seed=0)
    b = split_validation_classes(data, 5, seed=0)
    c = split_validation_classes(data, 5, seed=1)
    assert a.validation_classes == b.validation_classes
    assert a.validation_classes != c.validation_classes


def test_share_is_rounded_to_a_count():
    assert len(split_validation_classes(_dataset(20), 0.25).validation_classes) == 5
    assert len(split_validation_classes(_dataset(5), 0.1).validation_classes) == 2  # at least 2


@pytest.mark.parametrize(
    ("validation", "message"),
    [
        (1.0, "share must lie in"),
        (0.0, "share must lie in"),
        (1, ">= 2"),
        (True, "class count"),
        (9, "leave 1 for training"),
        ("3", "class count"),
    ],
)
def test_bad_requests_are_refused(validation, message):
    with pytest.raises(ValueError, match=message):
        split_validation_classes(_dataset(10), validation)
