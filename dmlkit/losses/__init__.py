"""Metric-learning losses, one module per family of methods.

Every loss is a ``torch.nn.Module`` whose ``forward(embeddings, labels)`` returns a scalar tensor.
Where pytorch-metric-learning has the same loss, the class and argument names are the same.

- :mod:`dmlkit.losses.classification` — softmax cross-entropy baseline (a linear classifier).
"""

from dmlkit.losses.classification import SoftmaxCrossEntropyLoss

__all__ = ["SoftmaxCrossEntropyLoss"]
