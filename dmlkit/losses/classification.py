"""Softmax cross-entropy on a linear classifier: the baseline every metric loss is compared with.

Training a classifier and keeping the features before its last layer is the oldest way to get an
embedding; the DML literature uses it as the baseline to beat (e.g. Musgrave et al., ECCV 2020,
"A Metric Learning Reality Check"). The classifier's weights live in the loss, like proxies, so
the training loop can give them their own learning rate and only the embedder is kept.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from dmlkit.checks import check_class_batch

__all__ = ["SoftmaxCrossEntropyLoss"]


class SoftmaxCrossEntropyLoss(nn.Module):
    """Cross-entropy of a linear classifier ``W x + b`` over ``num_classes`` training classes.

    Args:
        num_classes: number of training classes; labels must lie in ``[0, num_classes)``.
        embedding_size: size of the embeddings fed to the classifier.
    """

    def __init__(self, num_classes: int, embedding_size: int) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        if embedding_size < 1:
            raise ValueError(f"embedding_size must be positive, got {embedding_size}")
        self.num_classes = num_classes
        self.embedding_size = embedding_size
        self.classifier = nn.Linear(embedding_size, num_classes)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        check_class_batch(embeddings, labels, self.num_classes, self.embedding_size, type(self).__name__)
        return F.cross_entropy(self.classifier(embeddings), labels)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, embedding_size={self.embedding_size}"
