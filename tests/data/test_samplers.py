import warnings

import numpy as np
import pytest
import torch

from dmlkit.data import EpisodeSampler, PKSampler


def labels_with_counts(counts):
    return torch.tensor(np.repeat(np.arange(len(counts)), counts))


def test_pk_batches_have_p_classes_k_each():
    labels = labels_with_counts([10] * 20)
    sampler = PKSampler(labels, P=8, K=4, num_batches=25, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 25
    for batch in batches:
        assert len(batch) == 32 and len(set(batch)) == 32
        classes, counts = np.unique(labels[batch].numpy(), return_counts=True)
        assert len(classes) == 8 and (counts == 4).all()


def test_pk_is_seeded():
    labels = labels_with_counts([6] * 10)
    a = list(PKSampler(labels, 4, 3, num_batches=5, seed=7))
    b = list(PKSampler(labels, 4, 3, num_batches=5, seed=7))
    c = list(PKSampler(labels, 4, 3, num_batches=5, seed=8))
    assert a == b and a != c


def test_pk_small_classes_are_kept_not_dropped():
    labels = labels_with_counts([1, 2, 8, 8])
    with pytest.warns(UserWarning, match="2 of 4 classes have fewer than K=4"):
        sampler = PKSampler(labels, P=4, K=4, num_batches=3, seed=0)
    for batch in sampler:
        classes, counts = np.unique(labels[batch].numpy(), return_counts=True)
        assert classes.tolist() == [0, 1, 2, 3] and (counts == 4).all()
        # every image of a small class is used
        assert {1, 2} <= set(batch) and 0 in batch


def test_pk_errors():
    labels = labels_with_counts([4] * 3)
    with pytest.raises(ValueError, match="only 3 classes"):
        PKSampler(labels, P=4, K=2)
    with pytest.raises(ValueError, match="at least 1"):
        PKSampler(labels, P=2, K=0)
    with pytest.raises(ValueError, match="non-empty"):
        PKSampler(torch.tensor([], dtype=torch.long), P=1, K=1)


def test_episodes_layout_and_reproducibility():
    labels = labels_with_counts([5] * 4 + [30] * 10)
    with pytest.warns(UserWarning, match="4 classes have fewer than"):
        sampler = EpisodeSampler(labels, n_way=5, k_shot=2, n_query=6, num_episodes=10, seed=3)
    episodes = sampler.episodes()
    assert episodes == sampler.episodes()
    for episode in episodes:
        assert len(episode.support) == 10 and len(episode.query) == 30
        assert not set(episode.support) & set(episode.query)
        support = labels[episode.support].view(5, 2)
        query = labels[episode.query].view(5, 6)
        assert (support == torch.tensor(episode.classes)[:, None]).all()
        assert (query == torch.tensor(episode.classes)[:, None]).all()
        assert min(episode.classes) >= 4  # the small classes are never drawn


def test_episode_errors():
    labels = labels_with_counts([3] * 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="only 0 classes"):
            EpisodeSampler(labels, n_way=5, k_shot=1, n_query=5, num_episodes=1)
    with pytest.raises(ValueError, match="n_way"):
        EpisodeSampler(labels, n_way=1, k_shot=1, n_query=1, num_episodes=1)
