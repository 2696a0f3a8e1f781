"""dmlkit.profiling: the timers and the multiply-add counter."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dmlkit.profiling import interleaved_medians, median_seconds, multiply_adds


def test_median_seconds_counts_every_run():
    calls = []
    elapsed = median_seconds(lambda: calls.append(1), repeats=5, warmup=2)
    assert len(calls) == 7 and elapsed >= 0.0
    with pytest.raises(ValueError, match="repeats must be an integer >= 1"):
        median_seconds(lambda: None, repeats=0)


def test_interleaved_medians_alternates():
    order = []
    interleaved_medians(lambda: order.append("a"), lambda: order.append("b"), repeats=4, warmup=0)
    assert order == ["a", "b", "b", "a", "a", "b", "b", "a"]


def test_multiply_adds_by_hand():
    # conv: 8 output channels x 6 x 6 positions x (3 x 3 kernel x 2 input channels) = 5,184; linear: 288 x 10
    model = nn.Sequential(nn.Conv2d(2, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    model.train()
    assert multiply_adds(model, torch.randn(2, 8, 8)) == 8 * 6 * 6 * 3 * 3 * 2 + 288 * 10
    assert model.training  # its mode is restored
    grouped = nn.Conv2d(4, 4, 1, groups=4)
    assert multiply_adds(grouped, torch.randn(4, 5, 5)) == 4 * 5 * 5 * 1
