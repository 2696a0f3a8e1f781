"""Embedders: a small ConvNet for the 28×28 grey glyphs and ResNets for the real benchmarks.

Every model maps images to ``(batch, embedding_size)`` embeddings through an
:class:`EmbeddingHead` (a linear layer, optionally followed by L2 normalisation) and exposes
``embedding_size``. Losses that normalise internally (most of them) work on either output.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["EmbeddingHead", "ConvNet", "ResNetEmbedder", "count_parameters", "default_model"]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class EmbeddingHead(nn.Module):
    """Linear projection to the embedding, then optional L2 normalisation onto the unit sphere."""

    def __init__(self, in_features: int, embedding_size: int, normalize: bool = False) -> None:
        super().__init__()
        if in_features < 1 or embedding_size < 1:
            raise ValueError(f"in_features and embedding_size must be positive, got {in_features}, {embedding_size}")
        self.linear = nn.Linear(in_features, embedding_size)
        self.normalize = normalize

    def forward(self, features: Tensor) -> Tensor:
        embeddings = self.linear(features)
        return F.normalize(embeddings, dim=1) if self.normalize else embeddings


def _check_images(images: Tensor, channels: int) -> None:
    if images.dim() != 4 or images.shape[1] != channels:
        raise ValueError(f"expected images of shape (batch, {channels}, height, width), got {tuple(images.shape)}")


class ConvNet(nn.Module):
    """A small ConvNet embedder for small grey images (28×28 glyphs, Fashion-MNIST, digits).

    Three blocks of 3×3 convolution, BatchNorm and ReLU (the first two followed by 2×2 max
    pooling), global average pooling, then the :class:`EmbeddingHead`. With the default widths
    ``(32, 64, 128)`` it has about 100k parameters and trains at well over 1,000 images/s on a
    2-core CPU (``bench/train.py`` measures it).

    The convolutions run in the channels-last memory layout (weights converted at construction,
    images at the call): on a CPU, oneDNN's convolutions are about a third faster in it than in
    the default layout for these small images, and on a GPU it is the layout cuDNN prefers. The
    result is the same function; only the order of floating-point operations changes.

    Args:
        embedding_size: output dimension.
        in_channels: image channels (1 for grey).
        widths: channels of the three blocks.
        normalize: L2-normalise the embeddings.
    """

    def __init__(
        self,
        embedding_size: int = 64,
        in_channels: int = 1,
        widths: tuple[int, int, int] = (32, 64, 128),
        normalize: bool = False,
    ) -> None:
        super().__init__()
        if len(widths) != 3 or min(widths) < 1:
            raise ValueError(f"widths must be three positive channel counts, got {widths}")
        self.in_channels = in_channels
        self.embedding_size = embedding_size
        layers: list[nn.Module] = []
        previous = in_channels
        for block, width in enumerate(widths):
            layers += [
                nn.Conv2d(previous, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            if block < 2:
                layers.append(nn.MaxPool2d(2))
            previous = width
        self.features = nn.Sequential(*layers).to(memory_format=torch.channels_last)
        self.head = EmbeddingHead(previous, embedding_size, normalize)

    def forward(self, images: Tensor) -> Tensor:
        _check_images(images, self.in_channels)
        features = self.features(images.contiguous(memory_format=torch.channels_last)).mean(dim=(2, 3))
        return self.head(features)


class ResNetEmbedder(nn.Module):
    """A torchvision ResNet-18/50 backbone with an embedding head, for CUB-200, Cars196 and SOP.

    As in most DML papers (e.g. Kim et al., CVPR 2020; Roth et al., ICML 2020), the backbone's
    classifier is replaced by global pooling (average + max) and a linear embedding layer, and
    BatchNorm can be frozen (statistics and affine parameters fixed) because P×K batches hold few
    classes.

    Args:
        arch: ``"resnet18"`` or ``"resnet50"``.
        embedding_size: output dimension (512 in most papers).
        weights: ``None`` (random initialisation, the default: nothing is downloaded) or
            ``"imagenet"`` for torchvision's ImageNet weights, which must already be in the torch
            hub cache (no network at run time); a clear error says where they were looked for.
        freeze_batchnorm: keep every BatchNorm layer in eval mode with frozen parameters.
        normalize: L2-normalise the embeddings.
    """

    def __init__(
        self,
        arch: str = "resnet50",
        embedding_size: int = 512,
        weights: str | None = None,
        freeze_batchnorm: bool = True,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        import torchvision

        builders = {"resnet18": torchvision.models.resnet18, "resnet50": torchvision.models.resnet50}
        enums = {"resnet18": "ResNet18_Weights", "resnet50": "ResNet50_Weights"}
        if arch not in builders:
            raise ValueError(f"arch must be one of {sorted(builders)}, got {arch!r}")
        if weights not in (None, "imagenet"):
            raise ValueError(f"weights must be None or 'imagenet', got {weights!r}")
        weight_enum = None
        if weights == "imagenet":
            weight_enum = getattr(torchvision.models, enums[arch]).DEFAULT
            cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weight_enum.url).name
            if not cached.exists():
                raise FileNotFoundError(
                    f"ImageNet weights for {arch} are not in the torch hub cache: looked for {cached}. "
                    f"Download {Path(weight_enum.url).name} on a machine with network access and copy "
                    f"it there (or set TORCH_HOME), or use weights=None."
                )
        backbone = builders[arch](weights=weight_enum)
        in_features = backbone.fc.in_features
        backbone.fc = nn.Identity()
        backbone.avgpool = nn.Identity()
        self.backbone = backbone
        self.arch = arch
        self.embedding_size = embedding_size
        self.freeze_batchnorm = freeze_batchnorm
        self.head = EmbeddingHead(in_features, embedding_size, normalize)
        if freeze_batchnorm:
            for module in self.backbone.modules():
                if isinstance(module, nn.BatchNorm2d):
                    for parameter in module.parameters():
                        parameter.requires_grad_(False)

    def train(self, mode: bool = True) -> ResNetEmbedder:
        super().train(mode)
        if self.freeze_batchnorm:
            for module in self.backbone.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def _features(self, images: Tensor) -> Tensor:
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(images))))
        x = b.layer4(b.layer3(b.layer2(b.layer1(x))))
        return x.mean(dim=(2, 3)) + x.amax(dim=(2, 3))

    def forward(self, images: Tensor) -> Tensor:
        _check_images(images, 3)
        return self.head(self._features(images))


def default_model(dataset: object, embedding_size: int) -> nn.Module:
    """The kit's embedder for a dataset: the :class:`ConvNet` for small images (up to 64 pixels a
    side, any channel count), a :class:`ResNetEmbedder` for larger ones.

    The ResNet is chosen by two environment variables, so that the notebooks run unchanged on
    CUB-200-2011, Cars196 or SOP: ``DMLKIT_BACKBONE`` (``resnet50``, the default, or ``resnet18``)
    and ``DMLKIT_BACKBONE_WEIGHTS`` (unset: random initialisation; ``imagenet``: torchvision's
    ImageNet weights, which must already be in the torch hub cache).
    """
    image = dataset[0][0]
    channels, height = int(image.shape[0]), int(image.shape[-1])
    if height <= 64:
        return ConvNet(embedding_size=embedding_size, in_channels=channels)
    if channels != 3:
        raise ValueError(f"large images must be RGB for the ResNet embedder, got {channels} channels")
    arch = os.environ.get("DMLKIT_BACKBONE", "resnet50")
    weights = os.environ.get("DMLKIT_BACKBONE_WEIGHTS") or None
    if arch not in ("resnet18", "resnet50"):
        raise ValueError(f"DMLKIT_BACKBONE must be 'resnet18' or 'resnet50', got {arch!r}")
    if weights not in (None, "imagenet"):
        raise ValueError(f"DMLKIT_BACKBONE_WEIGHTS must be unset or 'imagenet', got {weights!r}")
    return ResNetEmbedder(arch, embedding_size=embedding_size, weights=weights)
