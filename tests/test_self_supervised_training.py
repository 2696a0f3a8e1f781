"""Tests for the self-supervised pieces around the losses: the two-view augmentation
(dmlkit.data.views), the unlabelled batches and training loop (dmlkit.self_supervised)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dmlkit.data.views import NO_AUGMENTATION, ViewAugmentation
from dmlkit.experiment import Budget
from dmlkit.losses.self_supervised import InstanceSpreadingLoss, MemoryBankInstanceLoss, NTXentLoss
from dmlkit.models import ConvNet
from dmlkit.self_supervised import fit_self_supervised, instance_batches, run_self_supervised


def _images(n: int = 6, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=generator)


def test_views_are_seeded_in_range_and_differ_between_draws():
    views = ViewAugmentation()
    x = _images()
    a = views(x, torch.Generator().manual_seed(1))
    b = views(x, torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(1)
    first, second = views(x, generator), views(x, generator)
    assert torch.equal(a, b)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert not torch.allclose(first, second)
    assert torch.equal(NO_AUGMENTATION(x), x)


def test_each_augmentation_alone_does_what_it_says():
    x = torch.zeros(1, 1, 28, 28)
    x[..., 12:16, 6:22] = 1.0  # a bar of ink
    off = dict(max_rotation=0.0, max_shift=0.0, scale=(1.0, 1.0), p_stroke=0.0, p_blur=0.0, p_erase=0.0, contrast=0.0)
    thicker_or_thinner = ViewAugmentation(**{**off, "p_stroke": 1.0})(x, torch.Generator().manual_seed(0))
    assert thicker_or_thinner.sum() != x.sum()
    erased = ViewAugmentation(**{**off, "p_erase": 1.0, "erase_fraction": 1.0})(x, torch.Generator().manual_seed(2))
    assert erased.sum() <= x.sum()
    dimmer = ViewAugmentation(**{**off, "contrast": 0.5})(x, torch.Generator().manual_seed(0))
    assert 0.5 * x.sum() <= dimmer.sum() <= x.sum()


def test_views_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ViewAugmentation(p_blur=2.0)
    with pytest.raises(ValueError, match="scale"):
        ViewAugmentation(scale=(1.2, 0.8))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        ViewAugmentation()(torch.rand(28, 28))


def test_instance_batches_hold_distinct_images_and_cover_each_epoch():
    batches = instance_batches(10, 4, 5, torch.Generator().manual_seed(0))
    assert len(batches) == 5
    for batch in batches:
        assert len(set(batch.tolist())) == 4
    first_epoch = torch.cat(batches[:2]).tolist()
    assert len(set(first_epoch)) == 8  # one permutation, its incomplete end dropped
    with pytest.raises(ValueError, match="at least that many"):
        instance_batches(3, 4, 1, torch.Generator())


@pytest.mark.parametrize(
    "make_loss",
    [lambda n: NTXentLoss(0.1), lambda n: InstanceSpreadingLoss(0.1), lambda n: MemoryBankInstanceLoss(n, 16)],
    ids=["ntxent", "spreading", "memory_bank"],
)
def test_short_self_supervised_runs_reproduce(make_loss, small_glyphs):
    train, _ = small_glyphs
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = ConvNet(16)
        history = fit_self_supervised(
            model, make_loss(len(train)), train, steps=3, batch_size=16, progress=False, device="cpu", log_every=1
        )
        runs.append(history.losses)
    assert runs[0] == runs[1] and np.isfinite(runs[0]).all()


def test_run_self_supervised_never_reads_the_labels(small_glyphs):
    train, test = small_glyphs
    budget = Budget(steps=2, P=4, K=4, embedding_size=16)
    result = run_self_supervised("NT-Xent", NTXentLoss(), train, test, budget, seed=0, device="cpu", progress=False)
    shuffled = train.subset(range(len(train)))
    shuffled.labels = shuffled.labels[torch.randperm(len(shuffled.labels), generator=torch.Generator().manual_seed(0))]
    again = run_self_supervised("NT-Xent", NTXentLoss(), shuffled, test, budget, seed=0, device="cpu", progress=False)
    assert result.history.losses == again.history.losses
    assert result.test_metrics == again.test_metrics
    assert result.settings["labels"] == "none"


def test_self_supervised_bad_input(small_glyphs):
    train, _ = small_glyphs
    with pytest.raises(TypeError, match="not a self-supervised loss"):
        fit_self_supervised(ConvNet(8), torch.nn.MSELoss(), train, steps=1, progress=False)
    with pytest.raises(ValueError, match="memory bank has 5 entries"):
        fit_self_supervised(ConvNet(8), MemoryBankInstanceLoss(5, 8), train, steps=1, batch_size=4, progress=False)
