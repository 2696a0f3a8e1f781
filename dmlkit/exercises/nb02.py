"""Self-checks of notebook 02 (proxy-based losses): ``check("02.k", answer)``.

- ``02.2``: Proxy-Anchor's value in the worked example after moving ``x2`` to ``(0.8, 0.6)``.
- ``02.6``: the Proxy-Anchor loss (Kim et al., CVPR 2020, Eq. 3) written by the student, compared
  with :class:`dmlkit.losses.proxy_based.ProxyAnchorLoss` on seeded embeddings and proxies.
"""

from __future__ import annotations

from typing import Any

import torch

from dmlkit.exercises import Feedback, close_to, exercise, same_function
from dmlkit.losses.proxy_based import ProxyAnchorLoss

__all__ = ["WRONG", "moved_x2_proxy_anchor", "proxy_anchor_reference"]


def _worked_example(x2: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The worked example of section 1 (float64) with ``x2`` placed at ``x2``."""
    x = torch.tensor([[1.0, 0.0], list(x2), [0.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1])
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    return x, y, p


def proxy_anchor_reference(
    embeddings: torch.Tensor, labels: torch.Tensor, proxies: torch.Tensor, alpha: float = 32.0, delta: float = 0.1
) -> torch.Tensor:
    """The kit's :class:`ProxyAnchorLoss` (``margin=delta``) with ``proxies`` copied in."""
    loss = ProxyAnchorLoss(proxies.shape[0], proxies.shape[1], margin=delta, alpha=alpha).to(proxies.dtype)
    with torch.no_grad():
        loss.proxies.copy_(proxies)
    return loss(embeddings, labels).detach()


def moved_x2_proxy_anchor() -> float:
    """Proxy-Anchor (α = 32, δ = 0.1) on the worked example with ``x2 = (0.8, 0.6)``."""
    x, y, p = _worked_example((0.8, 0.6))
    return float(proxy_anchor_reference(x, y, p))


@exercise("02.2")
def _moved_x2(answer: Any) -> Feedback:
    return close_to(
        answer,
        moved_x2_proxy_anchor(),
        tol=1e-3,
        what="Proxy-Anchor's loss with x2 at (0.8, 0.6)",
        why="p1's hardest negative is now x2 at cosine 0.6, so its term is about α(0.6 + δ) = 22.4 instead of 28.8; "
        "(log(1 + e^3.2) + log(1 + e^3.2 + e^22.4)) / 2, the positive terms being ~1e-10",
    )


def _proxy_anchor_inputs() -> list[tuple[Any, ...]]:
    generator = torch.Generator().manual_seed(2)
    inputs: list[tuple[Any, ...]] = []
    for batch, classes, size in ((12, 5, 8), (9, 4, 3)):
        embeddings = torch.randn(batch, size, generator=generator, dtype=torch.float64)
        labels = torch.randint(0, classes - 1, (batch,), generator=generator)  # the last class is absent
        proxies = torch.randn(classes, size, generator=generator, dtype=torch.float64)
        inputs.append((embeddings, labels, proxies))
    embeddings, labels, proxies = inputs[0]
    inputs.append((embeddings, labels, proxies, 16.0, 0.2))
    return inputs


@exercise("02.6")
def _proxy_anchor(answer: Any) -> Feedback:
    return same_function(answer, proxy_anchor_reference, _proxy_anchor_inputs(), what="your Proxy-Anchor loss")


def _wrong_proxy_anchor(embeddings, labels, proxies, alpha=32.0, delta=0.1):
    """Divides the pull by all proxies instead of those with positives in the batch (|P| for |P+|)."""
    cos = torch.nn.functional.normalize(embeddings, dim=1) @ torch.nn.functional.normalize(proxies, dim=1).T
    positive = torch.nn.functional.one_hot(labels, proxies.shape[0]).bool()
    pull = torch.log1p(torch.where(positive, torch.exp(-alpha * (cos - delta)), 0.0).sum(0)).sum()
    push = torch.log1p(torch.where(~positive, torch.exp(alpha * (cos + delta)), 0.0).sum(0)).sum()
    return (pull + push) / proxies.shape[0]


#: One wrong answer per check (the tests assert that each check refuses it).
WRONG = {"02.2": 16.02, "02.6": _wrong_proxy_anchor}
