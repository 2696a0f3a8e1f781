"""Two random views of every image, for self-supervised learning (runs on the training device).

Without labels, the augmentation *is* the definition of "same": whatever it changes, the
embedding is taught to ignore; whatever it keeps, the embedding may use. SimCLR (Chen et al.,
ICML 2020, Sec. 3) found the composition of augmentations to matter more than any one of them.
For the kit's grey glyph images the nuisances a class is meant to ignore are the renderer's own
— font, rotation, scale, shift, stroke width, blur — so :class:`ViewAugmentation` draws those,
plus random erasing (a small occluding rectangle) and a contrast change. Every draw comes from
the CPU generator passed in, so a seed gives the same views on any device.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from dmlkit.checks import check_non_negative, check_probability
from dmlkit.data.augment import random_affine

__all__ = ["ViewAugmentation", "NO_AUGMENTATION"]


def _check_batch(images: Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected a (B, C, H, W) image batch, got {shape}")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point in [0, 1], got dtype {images.dtype}")


@dataclass(frozen=True)
class ViewAugmentation:
    """A random view of each image of a batch: ``views = ViewAugmentation(); a = views(x, g)``.

    Applied in this order, each image with its own draws:

    1. stroke width: with probability ``p_stroke``, a 3×3 dilation (thicker) or erosion (thinner)
       of the ink, chosen with equal chance;
    2. a random affine map (:func:`dmlkit.data.augment.random_affine`): rotation up to
       ``max_rotation`` degrees, zoom in ``scale``, shift up to ``max_shift`` of the side;
    3. blur: with probability ``p_blur``, a 3×3 Gaussian blur;
    4. random erasing: with probability ``p_erase``, a rectangle of ``erase_fraction`` of each
       side (at most) is set to 0;
    5. contrast: the image is multiplied by a factor in ``[1 − contrast, 1]``.

    ``NO_AUGMENTATION`` (every strength 0) returns the images unchanged — then two views are
    the same image and instance discrimination has nothing to be invariant to.
    """

    max_rotation: float = 15.0
    max_shift: float = 0.1
    scale: tuple[float, float] = (0.8, 1.15)
    p_stroke: float = 0.5
    p_blur: float = 0.3
    p_erase: float = 0.5
    erase_fraction: float = 0.35
    contrast: float = 0.3

    def __post_init__(self) -> None:
        check_non_negative("max_rotation", self.max_rotation)
        check_non_negative("max_shift", self.max_shift)
        for name in ("p_stroke", "p_blur", "p_erase", "erase_fraction", "contrast"):
            check_probability(name, getattr(self, name))
        low, high = self.scale
        if not 0 < low <= high:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {self.scale!r}")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def is_identity(self) -> bool:
        return (
            self.max_rotation == 0
            and self.max_shift == 0
            and self.scale == (1.0, 1.0)
            and self.p_stroke == 0
            and self.p_blur == 0
            and self.p_erase == 0
            and self.contrast == 0
        )

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One random view of every image of ``images`` ``(B, C, H, W)``, values in ``[0, 1]``."""
        _check_batch(images)
        if self.is_identity:
            return images
        batch = images.shape[0]
        draws = torch.rand(batch, 8, generator=generator)
        to = {"device": images.device, "dtype": images.dtype}
        views = images
        # 1. stroke width: dilation is a max-pool of the ink, erosion a max-pool of the background
        stroke = (draws[:, 0] < self.p_stroke).to(**to)[:, None, None, None]
        thicker = (draws[:, 1] < 0.5).to(**to)[:, None, None, None]
        dilated = F.max_pool2d(views, 3, stride=1, padding=1)
        eroded = -F.max_pool2d(-views, 3, stride=1, padding=1)
        views = views + stroke * (thicker * dilated + (1 - thicker) * eroded - views)
        # 2. rotation, zoom and shift
        views = random_affine(
            views, generator, max_rotation=self.max_rotation, max_shift=self.max_shift, scale=self.scale
        )
        # 3. blur
        if self.p_blur > 0:
            kernel = torch.tensor([1.0, 2.0, 1.0], **to)
            kernel = (kernel[:, None] * kernel[None, :]) / 16.0
            channels = views.shape[1]
            weight = kernel.expand(channels, 1, 3, 3)
            blurred = F.conv2d(F.pad(views, (1, 1, 1, 1), mode="replicate"), weight, groups=channels)
            blur = (draws[:, 2] < self.p_blur).to(**to)[:, None, None, None]
            views = views + blur * (blurred - views)
        # 4. random erasing: a rectangle of random size and place
        if self.p_erase > 0 and self.erase_fraction > 0:
            height, width = views.shape[-2:]
            rows = torch.arange(height, **to)[None, :, None]
            cols = torch.arange(width, **to)[None, None, :]
            h = (draws[:, 3] * self.erase_fraction * height).to(**to)[:, None, None]
            w = (draws[:, 4] * self.erase_fraction * width).to(**to)[:, None, None]
            top = (draws[:, 5].to(**to)[:, None, None]) * (height - h)
            left = (draws[:, 6].to(**to)[:, None, None]) * (width - w)
            inside = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
            erase = (draws[:, 7] < self.p_erase).to(images.device)[:, None, None]
            views = views.masked_fill((inside & erase)[:, None], 0.0)
        # 5. contrast (its own draw, so that turning it on leaves the other draws as they were)
        if self.contrast > 0:
            factor = 1.0 - self.contrast * torch.rand(batch, generator=generator)
            views = views * factor.to(**to)[:, None, None, None]
        return views.clamp(0.0, 1.0)


#: The identity: two views of an image are the image itself.
NO_AUGMENTATION = ViewAugmentation(
    max_rotation=0.0, max_shift=0.0, scale=(1.0, 1.0), p_stroke=0.0, p_blur=0.0, p_erase=0.0, contrast=0.0
)
