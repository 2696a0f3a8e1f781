"""The protocol fitted to the data set (dmlkit.data_fit, dmlkit.data.levels): P×K, evaluation
samples, few-shot ways and distractors, and the coarser class level, each change said once and
each impossible request a clear error before anything trains."""

import pytest
import torch

from dmlkit.data import load
from dmlkit.data.base import TensorImageDataset
from dmlkit.data.levels import class_groups, levels_of
from dmlkit.data_fit import evaluation_sample, fit_batch, fit_distractors, fit_to_data, fit_ways
from dmlkit.experiment import Budget, load_data, protocol, run_method
from dmlkit.losses import ContrastiveLoss
from dmlkit.study import _fit_plan, smoke_plan


def dataset(counts, name="toy-train", info=None):
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    images = torch.randint(
        0, 255, (len(labels), 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    return TensorImageDataset(images, labels, [f"c{c}" for c in range(len(counts))], name=name, class_info=info)


def test_fit_batch_keeps_a_batch_that_fits_and_widens_one_that_does_not():
    assert fit_batch(32, 4, 200) == (32, 4)
    assert fit_batch(32, 4, 32) == (32, 4)
    assert fit_batch(32, 4, 5) == (5, 26)  # 130 >= 128 images, as few extra as possible
    assert fit_batch(16, 4, 5) == (5, 13)
    with pytest.raises(ValueError, match="at least 2 training classes"):
        fit_batch(32, 4, 1)


def test_fit_to_data_says_each_change_once_and_is_silent_on_the_glyphs():
    said = []
    train, test = load_data("glyphs", smoke=True)
    budget, same = fit_to_data(protocol(True), train, test, log=said.append)
    assert budget == protocol(True) and same is test and said == []

    train, test = dataset([300] * 5), dataset([400] * 5, "toy-test")
    budget, sample = fit_to_data(Budget(), train, test, max_eval_images=1000, log=said.append)
    assert (budget.P, budget.K, budget.eval_images) == (5, 26, 1000)
    assert len(said) == 2 and "toy has 5 training classes: P×K = 5×26" in said[0]
    assert "held-out: 1,000 images of 5 classes" in said[1]
    assert sample.class_counts().tolist() == [200] * 5


def test_the_evaluation_sample_is_stratified_seeded_and_keeps_small_classes_whole():
    data = dataset([50, 3, 80])
    sample = evaluation_sample(data, 60)
    assert sample.class_counts().tolist() == [20, 3, 20]
    again = evaluation_sample(data, 60)
    assert torch.equal(sample.images, again.images)
    assert evaluation_sample(data, None) is data and evaluation_sample(data, 1000) is data
    with pytest.raises(ValueError, match="holds fewer than 2 whole classes"):
        evaluation_sample(data, 5)


def test_with_thousands_of_classes_the_evaluation_sample_draws_whole_classes():
    data = dataset([5, 3, 6, 4] * 50)  # SOP-like: many small classes
    sample = evaluation_sample(data, 100)
    counts = sample.class_counts().tolist()
    assert 95 <= len(sample) <= 100 and sample.num_classes >= 20
    original = dict(zip(data.classes, data.class_counts().tolist(), strict=True))
    assert counts == [original[name] for name in sample.classes]  # every kept class whole
    assert torch.equal(sample.images, evaluation_sample(data, 100).images)


def test_run_method_evaluates_on_the_sample_the_budget_names():
    train, test = dataset([40] * 4), dataset([40] * 4, "toy-test")
    budget = Budget(steps=2, P=4, K=4, eval_images=40, augment=False)
    result = run_method("c", ContrastiveLoss(), train, test, budget, progress=False)
    assert len(result.train_labels) == 40 and len(result.test_labels) == 40
    assert torch.bincount(result.test_labels).tolist() == [10] * 4
    with pytest.raises(ValueError, match="eval_images must be None or an integer of at least 4"):
        Budget(eval_images=2)


def test_ways_and_distractors_fit_the_classes_unless_set():
    said = []
    assert fit_ways(None, 20, 200, "HARD_WAY", log=said.append) == 20 and said == []
    assert fit_ways(None, 20, 5, "HARD_WAY", log=said.append) == 5
    assert said == ["HARD_WAY: the data has 5 held-out classes, so episodes are 5-way (not 20-way)"]
    with pytest.raises(ValueError, match="HARD_WAY=20: the held-out data has only 5 classes"):
        fit_ways(20, 20, 5, "HARD_WAY")
    assert fit_distractors(None, 5, 200, 5, log=said.append) == 5
    assert fit_distractors(None, 5, 8, 5, log=said.append) == 3
    assert fit_distractors(None, 5, 5, 5, log=said.append) == 0
    assert "left out" in said[-1] and "so 3 (not 5)" in said[-2]
    with pytest.raises(ValueError, match="N_DISTRACTORS=5: 5-way episodes with 5 distractor classes need 10"):
        fit_distractors(5, 5, 5, 5)


def test_the_coarser_level_is_the_data_sets_own_or_the_section_is_skipped():
    said = []
    glyphs = load("glyphs", split="test", num_classes=40, images_per_class=4)
    level, groups = class_groups(glyphs, log=said.append)
    assert level == "script" and groups == [info["script"] for info in glyphs.class_info] and said == []
    assert class_groups(glyphs, "case")[1] == [info["case"] for info in glyphs.class_info]
    sop_like = dataset([3, 3], "sop-test", info=[{"super_class": "bicycle"}, {"super_class": "chair"}])
    assert class_groups(sop_like) == ("super_class", ["bicycle", "chair"])
    plain = dataset([3, 3], "digits-test")
    assert class_groups(plain, what="section 4", log=said.append) == (None, None)
    assert said == ["digits records no coarser level of its classes (script or super_class): section 4 skipped"]
    assert levels_of(plain) == []
    with pytest.raises(ValueError, match="digits records no class level 'script'"):
        class_groups(plain, "script")


def test_the_study_plan_fits_a_five_class_data_set():
    said = []
    train, test = dataset([30] * 5), dataset([30] * 5, "toy-test")
    plan, _ = _fit_plan(smoke_plan(), train, test, said.append)
    assert (plan.validation_classes, plan.P, plan.K) == (2, 3, 11)
    assert len(said) == 2
    unchanged, _ = _fit_plan(smoke_plan(), *load_data("glyphs", smoke=True), said.append)
    assert unchanged == smoke_plan() and len(said) == 2
    with pytest.raises(ValueError, match="the study needs at least 4"):
        _fit_plan(smoke_plan(), dataset([30] * 3), test, said.append)


def test_smoke_data_of_another_data_set_is_a_small_stratified_sample():
    train, test = load_data("digits", smoke=True)
    assert train.class_counts().tolist() == [40] * 5 and test.class_counts().tolist() == [40] * 5
