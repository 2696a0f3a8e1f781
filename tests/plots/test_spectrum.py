"""plots.plot_spectrum draws exactly the singular values ρ@mode uses."""

from __future__ import annotations

import torch

from dmlkit import plots
from dmlkit.analysis import singular_value_spectrum


def test_spectrum_shows_the_values_of_rho():
    values = singular_value_spectrum(torch.randn(50, 8, generator=torch.Generator().manual_seed(0)))
    line = plots.plot_spectrum({"a": values}).axes[0].lines[0]
    assert list(line.get_xdata()) == list(range(1, 8))  # ρ@1: the leading D - 1 = 7
    kept = values[:7] / values[:7].sum()
    torch.testing.assert_close(torch.as_tensor(line.get_ydata()), kept, check_dtype=False)
    line = plots.plot_spectrum({"a": values}, mode=2).axes[0].lines[0]
    assert list(line.get_xdata()) == list(range(2, 8))  # ρ@2 also leaves out the largest
    assert "ρ@2" in plots.plot_spectrum({"a": values}, mode=2).axes[0].get_xlabel()
