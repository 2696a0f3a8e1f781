import numpy as np
import pytest
import torch

from dmlkit.data import TensorImageDataset, available, data_dir, load
from dmlkit.data.glyphs import GlyphConfig, glyph_inventory, render_glyph_set


def test_inventory_is_large_and_free_of_look_alikes():
    inventory = glyph_inventory(12)
    chars = [c for c, _ in inventory]
    assert len(inventory) > 1500  # many classes is the point
    assert len(set(chars)) == len(chars)
    assert "A" in chars and "\u0391" not in chars and "\u0410" not in chars  # Greek/Cyrillic A dropped
    assert all(len(fonts) >= 12 for _, fonts in inventory)


def test_render_is_deterministic_and_seed_dependent():
    config = GlyphConfig(num_classes=5, images_per_class=4, seed=1)
    a, labels, info = render_glyph_set(config)
    b, _, _ = render_glyph_set(config)
    c, _, _ = render_glyph_set(GlyphConfig(num_classes=5, images_per_class=4, seed=2))
    assert a.shape == (20, 28, 28) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert labels.tolist() == [i // 4 for i in range(20)]
    assert {"char", "codepoint", "name", "category", "script", "case"} <= set(info[0])
    # every image has ink and is not saturated everywhere
    assert (a.reshape(20, -1).max(1) > 100).all() and (a.reshape(20, -1).mean(1) < 200).all()


def test_class_disjoint_split(small_glyphs):
    train, test = small_glyphs
    assert isinstance(train, TensorImageDataset)
    assert len(train.classes) == len(test.classes) == 20
    assert not set(train.classes) & set(test.classes)
    assert train.images.shape == (200, 1, 28, 28)
    assert train.labels.min() == 0 and train.labels.max() == 19
    assert torch.bincount(train.labels).tolist() == [10] * 20
    image, label = train[0]
    assert image.dtype == torch.float32 and image.min() >= 0 and image.max() <= 1
    assert isinstance(label, int)


def test_image_split_shares_classes():
    options = dict(num_classes=6, images_per_class=8, seed=0, split_by="images")
    train, test = load("glyphs", split="train", **options), load("glyphs", split="test", **options)
    assert train.classes == test.classes
    assert len(train) == len(test) == 24
    assert not torch.equal(train.images, test.images)


def test_cache_is_written_and_reused(monkeypatch):
    options = dict(num_classes=4, images_per_class=3, seed=11)
    first = load("glyphs", split="all", **options)
    files = list((data_dir() / "glyphs").glob("glyphs-*.npz"))
    assert files
    monkeypatch.setattr("dmlkit.data.glyphs.render_glyph_set", lambda config: pytest.fail("re-rendered"))
    second = load("glyphs", split="all", **options)
    assert torch.equal(first.images, second.images)


def test_damaged_cache_is_rebuilt():
    options = dict(num_classes=4, images_per_class=3, seed=12)
    first = load("glyphs", split="all", **options)
    for path in (data_dir() / "glyphs").glob("glyphs-*.npz"):
        path.write_bytes(b"not a zip")
    again = load("glyphs", split="all", **options)
    assert torch.equal(first.images, again.images)


def test_default_size_has_many_classes_each_side():
    config = GlyphConfig()
    assert config.num_classes // 2 >= 200 and config.image_size == 28


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(num_classes=1), "num_classes"),
        (dict(num_classes=100000), "only"),
        (dict(images_per_class=0), "images_per_class"),
        (dict(image_size=4), "image_size"),
        (dict(split="validation"), "split"),
        (dict(split_by="fonts"), "split_by"),
        (dict(train_fraction=1.0), "train_fraction"),
        (dict(colour="red"), "unknown glyph option"),
    ],
)
def test_bad_options_are_clear_errors(options, message):
    with pytest.raises((ValueError, TypeError), match=message):
        load("glyphs", **{"num_classes": 4, "images_per_class": 2, **options})


def test_registry():
    assert {"glyphs", "fashion_mnist", "digits", "cub200", "cars196", "sop"} <= set(available())
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*available"):
        load("mnist")
