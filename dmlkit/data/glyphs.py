"""Glyphs: the embedded default dataset, an Omniglot-style many-class set rendered offline.

A class is one printable Unicode character; an image renders it in one of the 16 text fonts that
ship inside matplotlib (DejaVu Sans, Sans Mono and Serif, and STIXGeneral, each in four styles),
with a random font, rotation, scale, shift, stroke width and blur. Nothing is downloaded and no
system package is needed, so every notebook runs on a fresh machine.

Characters that look alike in the reference font (Latin ``A``, Greek ``Α`` and Cyrillic ``А``)
would be different classes with identical images, so near-duplicates are removed before classes
are drawn. Each class carries its Unicode metadata (name, general category, script, case), which
gives a natural hierarchy: script, then letter case, then letter.

Rendering is deterministic for a seed (each class draws from its own random stream, so a
character looks the same whichever other classes are chosen) and the result is cached on disk
under ``<data_dir>/glyphs`` (see :func:`dmlkit.data.paths.data_dir`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter

from dmlkit.checks import check_split_arguments
from dmlkit.data.base import TensorImageDataset
from dmlkit.data.paths import data_dir
from dmlkit.files import atomic_output, atomic_write_text

__all__ = ["FONT_FILES", "GlyphConfig", "glyph_inventory", "render_glyph_set", "load_glyphs"]

#: The 16 fonts used, all shipped in matplotlib's ``mpl-data/fonts/ttf``.
FONT_FILES: tuple[str, ...] = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
)

# Unicode general categories that are not a glyph on their own (marks, controls, spaces, ...).
_EXCLUDED_CATEGORIES = frozenset({"Mn", "Mc", "Me", "Cc", "Cf", "Co", "Cs", "Cn", "Zs", "Zl", "Zp"})
_CACHE_VERSION = 1
_CANONICAL_SIZE = 16  # side of the canonical bitmap used to find look-alike characters
_DUPLICATE_THRESHOLD = 0.005  # mean squared difference under which two characters look alike


@dataclass(frozen=True)
class GlyphConfig:
    """What to render. Every field changes the images, so every field is part of the cache key.

    Args:
        num_classes: number of characters (classes) drawn from the inventory.
        images_per_class: images rendered per character.
        image_size: side of the square grey image in pixels.
        seed: seed of the class draw and of every image's random font, pose, stroke and blur.
        min_fonts: a character is eligible when at least this many of the 16 fonts draw it.
        max_rotation: largest rotation in degrees (uniform in ``±max_rotation``).
        scale_range: the longer side of the glyph's ink box, as a fraction of ``image_size``.
        max_shift: largest shift of the glyph's centre, as a fraction of ``image_size``.
        stroke_probability: chance of thickening the strokes (a 3x3 max filter at high resolution).
        blur_probability: chance of a Gaussian blur of radius 0.3-0.8 px after down-scaling.
    """

    num_classes: int = 400
    images_per_class: int = 30
    image_size: int = 28
    seed: int = 0
    min_fonts: int = 12
    max_rotation: float = 15.0
    scale_range: tuple[float, float] = (0.6, 0.9)
    max_shift: float = 0.08
    stroke_probability: float = 0.3
    blur_probability: float = 0.3

    def validate(self, available_classes: int | None = None) -> None:
        """Raise ``ValueError`` on impossible settings."""
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        if self.images_per_class < 1:
            raise ValueError(f"images_per_class must be at least 1, got {self.images_per_class}")
        if not 8 <= self.image_size <= 256:
            raise ValueError(f"image_size must lie in [8, 256] pixels, got {self.image_size}")
        if not 1 <= self.min_fonts <= len(FONT_FILES):
            raise ValueError(f"min_fonts must lie in [1, {len(FONT_FILES)}], got {self.min_fonts}")
        low, high = self.scale_range
        if not 0.1 <= low <= high <= 1.0:
            raise ValueError(f"scale_range must satisfy 0.1 <= low <= high <= 1, got {self.scale_range}")
        if available_classes is not None and self.num_classes > available_classes:
            raise ValueError(
                f"num_classes={self.num_classes} but only {available_classes} distinct characters are "
                f"drawn by at least min_fonts={self.min_fonts} fonts; lower num_classes or min_fonts"
            )

    def cache_key(self) -> str:
        payload = json.dumps({"version": _CACHE_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()[:16]


def _font_paths() -> list[Path]:
    import matplotlib

    font_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    paths = [font_dir / name for name in FONT_FILES]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"matplotlib's bundled fonts are missing ({', '.join(missing)}); reinstall matplotlib")
    return paths


@functools.cache
def _fonts() -> tuple[Any, ...]:
    from matplotlib.ft2font import FT2Font

    return tuple(FT2Font(str(path)) for path in _font_paths())


def _draw(font: Any, char: str, pixels: float, angle: float = 0.0) -> np.ndarray:
    """Render ``char`` with an em of ``pixels`` pixels; return the ink bitmap cropped to its box."""
    font.clear()
    font.set_size(pixels, 72)
    font.set_text(char, angle)
    font.draw_glyphs_to_bitmap(antialiased=True)
    bitmap = np.asarray(font.get_image())
    rows = np.flatnonzero(bitmap.max(axis=1))
    cols = np.flatnonzero(bitmap.max(axis=0))
    if rows.size == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    return bitmap[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _fit_square(bitmap: np.ndarray, side: int) -> np.ndarray:
    """Scale the bitmap so its longer side is ``side`` and centre it on a square canvas."""
    height, width = bitmap.shape
    factor = side / max(height, width)
    new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
    small = np.asarray(Image.fromarray(bitmap).resize((new_w, new_h), Image.BILINEAR), dtype=np.float32)
    canvas = np.zeros((side, side), dtype=np.float32)
    top, left = (side - new_h) // 2, (side - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = small / 255.0
    return canvas


def _script_of(char: str) -> str:
    """A coarse group for the hierarchy: the Unicode script for letters, else the category."""
    category = unicodedata.category(char)
    name = unicodedata.name(char, "")
    if category.startswith("L") and name:
        return name.split(" ")[0].title()
    return {"N": "Number", "P": "Punctuation", "S": "Symbol"}.get(category[0], "Other")


def _class_info(char: str) -> dict[str, Any]:
    category = unicodedata.category(char)
    case = {"Lu": "upper", "Ll": "lower", "Lt": "title"}.get(category, "none")
    return {
        "char": char,
        "codepoint": f"U+{ord(char):04X}",
        "name": unicodedata.name(char, "").title(),
        "category": category,
        "script": _script_of(char),
        "case": case,
    }


@functools.cache
def glyph_inventory(min_fonts: int = 12) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The characters eligible as classes, each with the indices of the fonts that draw it.

    A character is kept when it is printable, not a mark, control or space, at least
    ``min_fonts`` of the 16 fonts draw ink for it, and it does not look like a character kept
    before it: the mean squared difference of their canonical 16x16 bitmaps (reference font,
    ink box scaled to fill the square) is at least 0.005. With ``min_fonts=12`` about 1,950
    characters remain. The result is cached on disk next to the rendered sets.
    """
    import matplotlib

    path = data_dir() / "glyphs" / f"inventory-v{_CACHE_VERSION}-mpl{matplotlib.__version__}-{min_fonts}.json"
    if path.exists():
        try:
            return tuple((char, tuple(fonts)) for char, fonts in json.loads(path.read_text()))
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
    inventory = _build_inventory(min_fonts)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps([[char, list(fonts)] for char, fonts in inventory]))
    return inventory


def _build_inventory(min_fonts: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    fonts = _fonts()
    covering: dict[int, list[int]] = {}
    for font_index, font in enumerate(fonts):
        for codepoint in font.get_charmap():
            char = chr(codepoint)
            if char.isprintable() and not char.isspace() and unicodedata.category(char) not in _EXCLUDED_CATEGORIES:
                covering.setdefault(codepoint, []).append(font_index)
    candidates = sorted(cp for cp, idx in covering.items() if len(idx) >= min_fonts)

    kept_chars: list[tuple[str, tuple[int, ...]]] = []
    canonical: list[np.ndarray] = []
    for codepoint in candidates:
        char = chr(codepoint)
        inked = tuple(i for i in covering[codepoint] if _draw(fonts[i], char, 32).size > 0)
        if len(inked) < min_fonts:
            continue
        kept_chars.append((char, inked))
        canonical.append(_fit_square(_draw(fonts[inked[0]], char, 48), _CANONICAL_SIZE).ravel())
    if not kept_chars:
        return ()

    # Drop look-alikes greedily in code-point order (keeps Latin 'A', drops Greek and Cyrillic).
    matrix = np.stack(canonical).astype(np.float64)
    norms = (matrix**2).sum(axis=1)
    distances = (norms[:, None] + norms[None, :] - 2.0 * matrix @ matrix.T) / matrix.shape[1]
    keep = np.ones(len(kept_chars), dtype=bool)
    for i in range(len(kept_chars)):
        if keep[i]:
            twins = np.flatnonzero(distances[i, i + 1 :] < _DUPLICATE_THRESHOLD) + i + 1
            keep[twins] = False
    return tuple(entry for entry, k in zip(kept_chars, keep) if k)


def _render_one(char: str, font: Any, rng: np.random.Generator, config: GlyphConfig) -> np.ndarray:
    size = config.image_size
    angle = float(rng.uniform(-config.max_rotation, config.max_rotation))
    ink = _draw(font, char, 3 * size, angle)
    if rng.random() < config.stroke_probability:
        ink = np.asarray(Image.fromarray(np.pad(ink, 1)).filter(ImageFilter.MaxFilter(3)))
    height, width = ink.shape
    box = rng.uniform(*config.scale_range) * size
    factor = box / max(height, width)
    new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
    glyph = Image.fromarray(ink).resize((new_w, new_h), Image.BILINEAR, reducing_gap=2.0)
    canvas = Image.new("L", (size, size))
    shift = config.max_shift * size
    left = (size - new_w) / 2 + rng.uniform(-shift, shift)
    top = (size - new_h) / 2 + rng.uniform(-shift, shift)
    left = round(min(max(left, 0), size - new_w))
    top = round(min(max(top, 0), size - new_h))
    canvas.paste(glyph, (left, top))
    if rng.random() < config.blur_probability:
        canvas = canvas.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 0.8))))
    return np.asarray(canvas, dtype=np.uint8)


def render_glyph_set(config: GlyphConfig) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Render the whole glyph set for ``config`` (no cache).

    Returns:
        ``images`` uint8 ``(num_classes * images_per_class, image_size, image_size)``, ``labels``
        (class index of each image, classes in the order drawn) and one metadata dict per class.
    """
    inventory = glyph_inventory(config.min_fonts)
    config.validate(len(inventory))
    fonts = _fonts()
    draw = np.random.default_rng(config.seed)
    chosen = np.sort(draw.choice(len(inventory), size=config.num_classes, replace=False))
    images = np.empty((config.num_classes * config.images_per_class, config.image_size, config.image_size), np.uint8)
    labels = np.repeat(np.arange(config.num_classes), config.images_per_class)
    info = []
    for label, entry in enumerate(chosen):
        char, font_indices = inventory[entry]
        info.append(_class_info(char))
        rng = np.random.default_rng([config.seed, ord(char)])
        for j in range(config.images_per_class):
            font = fonts[font_indices[rng.integers(len(font_indices))]]
            images[label * config.images_per_class + j] = _render_one(char, font, rng, config)
    return images, labels, info


def _cached_glyph_set(config: GlyphConfig, cache: bool) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    path = data_dir() / "glyphs" / f"glyphs-{config.cache_key()}.npz"
    if cache and path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                return stored["images"], stored["labels"], json.loads(str(stored["info"]))
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged cache file is rebuilt, never trusted
    images, labels, info = render_glyph_set(config)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, images=images, labels=labels, info=np.array(json.dumps(info)))
    return images, labels, info


def load_glyphs(
    split: str = "train",
    num_classes: int = 400,
    images_per_class: int = 30,
    image_size: int = 28,
    seed: int = 0,
    split_by: str = "classes",
    train_fraction: float = 0.5,
    min_fonts: int = 12,
    cache: bool = True,
    **render_options: Any,
) -> TensorImageDataset:
    """Load (rendering and caching on first use) a split of the glyph dataset.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"``.
        num_classes: characters in the whole set (both sides of the split).
        images_per_class: images per character.
        image_size: side of the square grey images.
        seed: the seed of the rendering and of the split.
        split_by: ``"classes"`` (default, the DML protocol: test classes are never seen in
            training) or ``"images"`` (the same classes on both sides, images divided).
        train_fraction: share of classes (or of each class's images) that goes to ``train``.
        min_fonts: see :class:`GlyphConfig`.
        cache: read and write the on-disk cache.
        **render_options: other :class:`GlyphConfig` fields (``max_rotation``, ...).

    Returns:
        A :class:`~dmlkit.data.base.TensorImageDataset` with images ``(N, 1, S, S)``, contiguous
        labels, ``classes`` (the characters) and ``class_info`` (Unicode metadata per class).
    """
    check_split_arguments(split, split_by, train_fraction)
    unknown = set(render_options) - set(GlyphConfig.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown glyph option(s) {sorted(unknown)}; known: {sorted(GlyphConfig.__dataclass_fields__)}")
    config = GlyphConfig(
        num_classes=num_classes,
        images_per_class=images_per_class,
        image_size=image_size,
        seed=seed,
        min_fonts=min_fonts,
        **render_options,
    )
    config.validate()
    if split_by == "images" and split != "all" and images_per_class < 2:
        raise ValueError("split_by='images' needs images_per_class >= 2 so both sides get an image")
    images, labels, info = _cached_glyph_set(config, cache)
    dataset = TensorImageDataset(
        torch.from_numpy(images).unsqueeze(1),
        torch.from_numpy(labels).long(),
        [entry["char"] for entry in info],
        name=f"glyphs-{split}",
        class_info=info,
    )
    if split == "all":
        return dataset

    order = np.random.default_rng([seed, 1]).permutation(num_classes)
    if split_by == "classes":
        num_train = round(train_fraction * num_classes)
        num_train = min(max(num_train, 1), num_classes - 1)
        side = order[:num_train] if split == "train" else order[num_train:]
        mask = np.isin(labels, side)
    else:
        num_train = min(max(round(train_fraction * images_per_class), 1), images_per_class - 1)
        position = np.arange(len(labels)) % images_per_class
        mask = position < num_train if split == "train" else position >= num_train
    return dataset.subset(np.flatnonzero(mask), name=f"glyphs-{split}")
