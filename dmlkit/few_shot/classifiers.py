"""The few-shot heads by name."""

from __future__ import annotations

from typing import Any

from dmlkit.few_shot.heads import FewShotClassifier, MatchingNetworks, PrototypicalNetworks
from dmlkit.few_shot.hyperbolic import HyperbolicPrototypicalNetworks
from dmlkit.few_shot.semi_supervised import SemiSupervisedPrototypes

__all__ = ["make_classifier"]


#: Names understood by :func:`make_classifier` (and ``method=`` of the loss and the evaluation).
CLASSIFIERS = ("protonet", "matching", "soft_kmeans", "hyperbolic_protonet")


def make_classifier(method: str | FewShotClassifier, **options: Any) -> FewShotClassifier:
    """A head by name — ``"protonet"``, ``"matching"``, ``"soft_kmeans"`` or
    ``"hyperbolic_protonet"`` — with ``options`` passed to its constructor, or ``method`` itself
    when it already is a :class:`FewShotClassifier` (then ``options`` must be empty)."""
    if isinstance(method, FewShotClassifier):
        if options:
            raise ValueError("options are only accepted with a method name, not with a classifier instance")
        return method
    classes = {
        "protonet": PrototypicalNetworks,
        "matching": MatchingNetworks,
        "soft_kmeans": SemiSupervisedPrototypes,
        "hyperbolic_protonet": HyperbolicPrototypicalNetworks,
    }
    if method not in classes:
        raise ValueError(
            f"unknown few-shot method {method!r}; choose one of {list(CLASSIFIERS)} or pass a FewShotClassifier"
        )
    return classes[method](**options)
