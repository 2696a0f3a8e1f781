import math

import pytest
import torch
from torch import nn

from dmlkit.losses import SoftmaxCrossEntropyLoss
from dmlkit.models import ConvNet, ResNetEmbedder, count_parameters
from dmlkit.train import fit, load_checkpoint, save_checkpoint


def test_convnet_shapes_and_normalisation():
    model = ConvNet(embedding_size=32)
    out = model(torch.rand(5, 1, 28, 28))
    assert out.shape == (5, 32)
    normed = ConvNet(embedding_size=16, normalize=True)(torch.rand(3, 1, 28, 28))
    torch.testing.assert_close(normed.norm(dim=1), torch.ones(3))
    assert 50_000 < count_parameters(model) < 200_000
    with pytest.raises(ValueError, match=r"\(batch, 1, height, width\)"):
        model(torch.rand(5, 28, 28))


def test_resnet_embedder_freezes_batchnorm():
    model = ResNetEmbedder("resnet18", embedding_size=8, freeze_batchnorm=True)
    model.train()
    bns = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns)
    assert all(not p.requires_grad for m in bns for p in m.parameters())
    before = bns[0].running_mean.clone()
    out = model(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 8)
    torch.testing.assert_close(bns[0].running_mean, before)
    with pytest.raises(ValueError, match="arch"):
        ResNetEmbedder("vgg16")


def test_resnet_imagenet_weights_missing_is_clear(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="torch hub cache.*looked for"):
        ResNetEmbedder("resnet18", weights="imagenet")


def test_fit_learns_and_is_reproducible(small_glyphs):
    train, _ = small_glyphs

    def run():
        torch.manual_seed(0)
        model = ConvNet(embedding_size=16)
        loss = SoftmaxCrossEntropyLoss(train.num_classes, 16)
        history = fit(model, loss, train, steps=30, P=8, K=4, lr=3e-3, seed=5, progress=False, log_every=5)
        return history, model

    history, model = run()
    again, model_again = run()
    assert history.losses == again.losses
    assert history.steps == [5, 10, 15, 20, 25, 30]
    assert history.losses[-1] < history.losses[0]
    assert history.images_seen == 30 * 32 and history.images_per_second > 0
    for a, b in zip(model.parameters(), model_again.parameters()):
        torch.testing.assert_close(a, b)


def test_fit_separate_loss_learning_rate(small_glyphs):
    train, _ = small_glyphs
    model, loss = ConvNet(embedding_size=8), SoftmaxCrossEntropyLoss(train.num_classes, 8)
    weights = loss.classifier.weight.detach().clone()
    fit(model, loss, train, steps=2, P=4, K=2, lr=1e-12, loss_lr=1.0, progress=False)
    assert (loss.classifier.weight - weights).abs().max() > 1e-3  # moved with the large loss lr


def test_fit_stops_on_nan(small_glyphs):
    train, _ = small_glyphs

    class Exploding(nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, embeddings, labels):
            self.calls += 1
            value = embeddings.pow(2).mean()
            return value * math.inf if self.calls == 3 else value

    with pytest.raises(FloatingPointError, match="at step 3 of 10"):
        fit(ConvNet(embedding_size=4), Exploding(), train, steps=10, P=4, K=2, progress=False)


def test_fit_argument_errors(small_glyphs):
    train, _ = small_glyphs
    model, loss = ConvNet(embedding_size=4), SoftmaxCrossEntropyLoss(train.num_classes, 4)
    with pytest.raises(ValueError, match="either steps or epochs"):
        fit(model, loss, train, steps=1, epochs=1)
    with pytest.raises(ValueError, match="learning rates"):
        fit(model, loss, train, steps=1, lr=0)
    with pytest.raises(ValueError, match="only 20 classes"):
        fit(model, loss, train, steps=1, P=64, progress=False)
    with pytest.raises(ValueError, match=r"\.labels"):
        fit(model, loss, [(torch.zeros(1, 28, 28), 0)], steps=1)


def test_checkpoint_round_trip_is_weights_only(tmp_path, small_glyphs):
    train, _ = small_glyphs
    model, loss = ConvNet(embedding_size=8), SoftmaxCrossEntropyLoss(train.num_classes, 8)
    history = fit(model, loss, train, steps=3, P=4, K=2, progress=False)
    path = save_checkpoint(tmp_path / "run.pt", model, loss, history, extra={"note": "x"})
    model2, loss2 = ConvNet(embedding_size=8), SoftmaxCrossEntropyLoss(train.num_classes, 8)
    stored = load_checkpoint(path, model2, loss2)
    assert stored["history"]["losses"] == history.losses and stored["extra"] == {"note": "x"}
    for a, b in zip(
        list(model.state_dict().values()) + list(loss.state_dict().values()),
        list(model2.state_dict().values()) + list(loss2.state_dict().values()),
    ):
        torch.testing.assert_close(a.cpu(), b)
    # an arbitrary pickled object is refused
    import datetime

    torch.save({"model": {}, "evil": datetime.datetime(2020, 1, 1)}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        load_checkpoint(tmp_path / "evil.pt", model2)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt", model2)


def test_fit_with_a_custom_sampler(small_glyphs):
    train, _ = small_glyphs
    batches = [[0, 1, 10, 11], [20, 21, 30, 31]]  # 2 batches, re-iterated to fill 5 steps
    seen = []

    class Recording(nn.Module):
        def forward(self, embeddings, labels):
            seen.append(labels.tolist())
            return embeddings.pow(2).mean()

    history = fit(ConvNet(embedding_size=4), Recording(), train, steps=5, sampler=batches, progress=False)
    assert len(seen) == 5 and seen[0] == seen[2] == train.labels[[0, 1, 10, 11]].tolist()
    assert history.settings["sampler"] == "list"
    with pytest.raises(ValueError, match="no batch"):
        fit(ConvNet(embedding_size=4), Recording(), train, steps=2, sampler=[], progress=False)


def test_convnet_runs_channels_last_and_keeps_its_function():
    torch.manual_seed(0)
    model = ConvNet(embedding_size=8).eval()
    conv = model.features[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(5, 1, 28, 28)
    copy = ConvNet(embedding_size=8).eval()
    copy.load_state_dict(model.state_dict())
    assert torch.allclose(model(x), copy(x))
    # the same function as the plain layout: run the layers on contiguous copies of the weights
    plain = ConvNet(embedding_size=8).eval()
    plain.load_state_dict(model.state_dict())
    plain.features.to(memory_format=torch.contiguous_format)
    features = plain.features(x).mean(dim=(2, 3))
    assert torch.allclose(model(x), plain.head(features), atol=1e-5)


class _Images:
    def __init__(self, shape):
        self.shape = shape

    def __getitem__(self, index):
        return torch.zeros(self.shape), 0


def test_default_model_chooses_the_backbone_from_the_environment(monkeypatch, tmp_path):
    from dmlkit.models import default_model

    assert isinstance(default_model(_Images((1, 28, 28)), 8), ConvNet)
    monkeypatch.setenv("DMLKIT_BACKBONE", "resnet18")
    model = default_model(_Images((3, 96, 96)), 8)
    assert isinstance(model, ResNetEmbedder) and model(torch.rand(2, 3, 96, 96)).shape == (2, 8)
    monkeypatch.setenv("DMLKIT_BACKBONE", "vgg")
    with pytest.raises(ValueError, match="DMLKIT_BACKBONE must be 'resnet18' or 'resnet50', got 'vgg'"):
        default_model(_Images((3, 96, 96)), 8)
    monkeypatch.setenv("DMLKIT_BACKBONE", "resnet18")
    monkeypatch.setenv("DMLKIT_BACKBONE_WEIGHTS", "imagenet")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache: nothing may be downloaded
    with pytest.raises(FileNotFoundError, match="not in the torch hub cache"):
        default_model(_Images((3, 96, 96)), 8)
    monkeypatch.setenv("DMLKIT_BACKBONE_WEIGHTS", "yes")
    with pytest.raises(ValueError, match="must be unset or 'imagenet'"):
        default_model(_Images((3, 96, 96)), 8)
