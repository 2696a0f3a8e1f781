"""Self-checks of notebook 07 (synthesis: compression and generalisation): ``check("07.k", answer)``.

- ``07.3``: the expected number of switched triplets among 128 anchors at ``p_switch = 0.35``.
- ``07.5``: how much narrower five seeds make a paired 95 % t-interval than three.
- ``07.8``: spectral decay ρ@k (Roth et al., ICML 2020, Sec. 5), written by the student,
  compared with :func:`dmlkit.analysis.spectral_decay` on seeded embeddings.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from dmlkit.exercises import Feedback, close_to, exercise, same_function

__all__ = ["WRONG"]


@exercise("07.3")
def switched_count(answer: Any) -> Feedback:
    """Expected switched triplets among 128 anchors that each have a positive, at p_switch 0.35."""
    n, p = 128, 0.35
    return close_to(
        answer,
        n * p,
        tol=0.05,
        what="the expected number of switched triplets",
        why=f"each anchor switches with probability p independently, so the count is Binomial(n, p): mean n·p, "
        f"standard deviation √(n·p·(1 − p)) = {math.sqrt(n * p * (1 - p)):.1f}, so a draw between about "
        f"{n * p - 2 * math.sqrt(n * p * (1 - p)):.0f} and {n * p + 2 * math.sqrt(n * p * (1 - p)):.0f} is ordinary",
    )


def _t_ratio() -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, 4) / stats.t.ppf(0.975, 2) * math.sqrt(3 / 5))


@exercise("07.5")
def narrower_interval(answer: Any) -> Feedback:
    """The half-width with five seeds divided by the half-width with three (same spread)."""
    ratio = _t_ratio()
    return close_to(
        answer,
        ratio,
        tol=0.005,
        what="the ratio of the half-widths (5 seeds / 3 seeds)",
        why=f"t_0.975,4 / t_0.975,2 × √(3/5) = 2.776 / 4.303 × 0.775 = {ratio:.3f}: the interval halves — the t "
        "quantile shrinks more than the standard error does",
    )


def _rho_inputs():
    generator = torch.Generator().manual_seed(7)
    cases = []
    for n, d, mode, shift in ((50, 8, 1, 0.0), (50, 8, 2, 0.0), (200, 16, 1, 1.0), (200, 16, 2, 1.0), (30, 4, 1, 0.3)):
        x = torch.randn(n, d, generator=generator, dtype=torch.float64) + shift
        x[:, 0] *= 3.0  # one direction carries more: a compressed space
        cases.append((x, mode))
    toy = torch.tensor([[1.0, 0, 0, 0]] * 4 + [[0, 1.0, 0, 0]] * 3 + [[0, 0, 1.0, 0]] * 2 + [[0, 0, 0, 1.0]])
    cases += [(toy.double(), 1), (toy.double(), 2)]
    return cases


def _kit_rho(embeddings, mode):
    from dmlkit.analysis import spectral_decay

    return spectral_decay(embeddings, mode=mode)


@exercise("07.8")
def spectral_decay_yourself(answer: Any) -> Feedback:
    """``rho(embeddings, mode) -> float``: ρ@mode as Roth et al. compute it."""
    feedback = same_function(answer, _kit_rho, _rho_inputs(), what="your rho(embeddings, mode)", atol=1e-8, rtol=1e-6)
    if feedback:
        return Feedback(True, feedback.message + " (dmlkit.analysis.spectral_decay)")
    return Feedback(
        False,
        feedback.message + "; hint: L2-normalise the rows (do not centre them), keep the leading D − 1 singular "
        "values, drop the mode − 1 largest, normalise the rest to sum to 1 and take KL(uniform ‖ them)",
    )


def _rho_all_values(embeddings, mode):
    """A wrong ρ: keeps all D singular values (the authors' truncated SVD drops the smallest)."""
    s = torch.linalg.svdvals(torch.nn.functional.normalize(embeddings.double(), dim=1))[mode - 1 :]
    s = s / s.sum()
    u = torch.full_like(s, 1.0 / s.numel())
    return float((u * (u.log() - s.log())).sum())


#: A wrong answer per check (the test asserts that each check refuses it).
WRONG = {
    "07.3": 0.35,  # the share, not the count
    "07.5": math.sqrt(3 / 5),  # the standard error alone, forgetting the t quantile
    "07.8": _rho_all_values,
}
