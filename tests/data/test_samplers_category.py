import numpy as np
import pytest
import torch

from dmlkit.data.samplers import CategoryPKSampler, PKSampler


def labels_with_counts(counts):
    return torch.tensor(np.repeat(np.arange(len(counts)), counts))


# 12 classes in three categories of 4: classes 0-3 "a", 4-7 "b", 8-11 "c".
CATEGORIES = ["a"] * 4 + ["b"] * 4 + ["c"] * 4


def test_batches_take_p_over_c_classes_from_each_of_c_categories():
    labels = labels_with_counts([6] * 12)
    sampler = CategoryPKSampler(labels, CATEGORIES, P=4, K=3, categories_per_batch=2, num_batches=40, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 40
    seen_pairs = set()
    for batch in batches:
        assert len(batch) == 12 and len(set(batch)) == 12  # K distinct images per class
        classes, counts = np.unique(labels[batch].numpy(), return_counts=True)
        assert len(classes) == 4 and (counts == 3).all()
        groups, per_group = np.unique([CATEGORIES[c] for c in classes], return_counts=True)
        assert len(groups) == 2 and (per_group == 2).all()
        seen_pairs.add(tuple(groups))
        # the classes of one category are contiguous in the batch, K images each
        order = [CATEGORIES[int(labels[i])] for i in batch]
        assert order[:6] == [order[0]] * 6 and order[6:] == [order[6]] * 6
    assert seen_pairs == {("a", "b"), ("a", "c"), ("b", "c")}  # categories drawn at random


def test_one_category_per_batch_and_mapping_input():
    labels = labels_with_counts([5] * 12)
    mapping = {c: CATEGORIES[c] for c in range(12)}
    for batch in CategoryPKSampler(labels, mapping, P=3, K=2, categories_per_batch=1, num_batches=20, seed=1):
        assert len({CATEGORIES[int(labels[i])] for i in batch}) == 1
        assert len(batch) == 6


def test_labels_need_not_be_contiguous():
    labels = torch.tensor([10] * 4 + [20] * 4 + [30] * 4 + [40] * 4)
    mapping = {10: "x", 20: "x", 30: "y", 40: "y"}
    for batch in CategoryPKSampler(labels, mapping, P=2, K=2, categories_per_batch=2, num_batches=10, seed=0):
        groups = sorted(mapping[int(labels[i])] for i in batch)
        assert groups == ["x", "x", "y", "y"]


def test_seeded_and_default_length():
    labels = labels_with_counts([6] * 12)
    a = list(CategoryPKSampler(labels, CATEGORIES, P=4, K=3, num_batches=5, seed=7))
    b = list(CategoryPKSampler(labels, CATEGORIES, P=4, K=3, num_batches=5, seed=7))
    c = list(CategoryPKSampler(labels, CATEGORIES, P=4, K=3, num_batches=5, seed=8))
    assert a == b and a != c
    assert len(CategoryPKSampler(labels, CATEGORIES, P=4, K=3)) == 72 // 12


def test_small_classes_are_kept_with_the_pk_warning():
    labels = labels_with_counts([1, 2, 8, 8])
    with pytest.warns(UserWarning, match="2 of 4 classes have fewer than K=4"):
        sampler = CategoryPKSampler(labels, ["u", "u", "v", "v"], P=4, K=4, num_batches=3, seed=0)
    for batch in sampler:
        classes, counts = np.unique(labels[batch].numpy(), return_counts=True)
        assert classes.tolist() == [0, 1, 2, 3] and (counts == 4).all()
        assert {1, 2} <= set(batch) and 0 in batch  # every image of a small class is used


def test_same_class_batches_as_pk_sampler_when_one_category_holds_all():
    # With one category and categories_per_batch=1 the draws differ from PKSampler's only in
    # how classes are picked; the batch layout is the same.
    labels = labels_with_counts([6] * 8)
    category = CategoryPKSampler(labels, ["all"] * 8, P=4, K=3, categories_per_batch=1, num_batches=5, seed=0)
    plain = PKSampler(labels, P=4, K=3, num_batches=5, seed=0)
    for ours, theirs in zip(category, plain):
        assert len(ours) == len(theirs) == 12
        assert (np.unique(labels[ours].numpy(), return_counts=True)[1] == 3).all()


def test_errors():
    labels = labels_with_counts([4] * 12)
    with pytest.raises(ValueError, match="divisible"):
        CategoryPKSampler(labels, CATEGORIES, P=5, K=2, categories_per_batch=2)
    with pytest.raises(ValueError, match=r"at least P // categories_per_batch = 6 classes; too few in 'a' \(4\)"):
        CategoryPKSampler(labels, CATEGORIES, P=12, K=2, categories_per_batch=2)
    with pytest.raises(ValueError, match="too few in 'z' \\(1\\)"):
        CategoryPKSampler(labels, CATEGORIES[:11] + ["z"], P=4, K=2, categories_per_batch=2)
    with pytest.raises(ValueError, match="only 3 categories"):
        CategoryPKSampler(labels, CATEGORIES, P=4, K=2, categories_per_batch=4)
    with pytest.raises(ValueError, match="no category for class 11"):
        CategoryPKSampler(labels, CATEGORIES[:11], P=4, K=2)
    with pytest.raises(ValueError, match="no category for class 3"):
        CategoryPKSampler(labels, {0: "a", 1: "a", 2: "a"}, P=2, K=2)
    with pytest.raises(ValueError, match="at least 1"):
        CategoryPKSampler(labels, CATEGORIES, P=4, K=0)
    with pytest.raises(ValueError, match="categories_per_batch must be at least 1"):
        CategoryPKSampler(labels, CATEGORIES, P=4, K=2, categories_per_batch=0)
    with pytest.raises(ValueError, match="num_batches"):
        CategoryPKSampler(labels, CATEGORIES, P=4, K=2, num_batches=0)
    with pytest.raises(ValueError, match="non-empty"):
        CategoryPKSampler(torch.tensor([], dtype=torch.long), [], P=2, K=1)


def test_glyph_scripts_as_categories(small_glyphs):
    train, _ = small_glyphs
    scripts = [info["script"] for info in train.class_info]
    big = {s for s in scripts if scripts.count(s) >= 3}
    assert len(big) >= 2
    grouped = [s if s in big else "other" for s in scripts]
    sampler = CategoryPKSampler(train.labels, grouped, P=6, K=2, num_batches=10, seed=0)
    for batch in sampler:
        groups = {grouped[int(train.labels[i])] for i in batch}
        assert len(groups) == 2
