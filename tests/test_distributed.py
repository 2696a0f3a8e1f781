"""Tests for dmlkit.distributed on this CPU with gloo: two processes with batch B train exactly like
one process with batch 2B (loss values, gradients, parameters, the proxies and the XBM queue) for
the contrastive, multi-similarity-with-mining, Proxy-Anchor, Smooth-AP and XBM losses, in float64;
the sharded evaluation equals one process's bit for bit; and a bad set-up is a clear error, never a
hang — every launch has a timeout (``launch(timeout_s=...)`` kills the processes and raises)."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from dmlkit.distributed import (
    DistributedPKSampler,
    GatheredLoss,
    check_backend,
    embed_sharded,
    launch,
    shard_range,
)
from dmlkit.evaluate import embed, retrieval_metrics
from dmlkit.losses import ContrastiveLoss, CrossBatchMemory, MultiSimilarityLoss, ProxyAnchorLoss, SmoothAPLoss
from dmlkit.train import fit

TIMEOUT_S = 120  # every launch: the processes are killed and the test fails after this, never hangs
LOSSES = ("contrastive", "multi_similarity_mined", "proxy_anchor", "smooth_ap", "xbm")


class VectorData:
    """An in-memory labelled dataset of random float64 vectors (12 classes × 6)."""

    def __init__(self, classes: int = 12, per_class: int = 6, dim: int = 10, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(classes).repeat_interleave(per_class)
        self.x = torch.randn(classes, dim, generator=generator, dtype=torch.float64)[self.labels]
        self.x = self.x + 0.8 * torch.randn(len(self.labels), dim, generator=generator, dtype=torch.float64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.x[i], self.labels[i]

    def get_batch(self, indices):
        indices = torch.as_tensor(indices)
        return self.x[indices], self.labels[indices]


def _model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 8)).double()


def _loss(name: str) -> nn.Module:
    if name == "contrastive":
        return ContrastiveLoss()
    if name == "multi_similarity_mined":
        return MultiSimilarityLoss(epsilon=0.1)
    if name == "proxy_anchor":
        torch.manual_seed(2)
        return ProxyAnchorLoss(12, 8).double()
    if name == "smooth_ap":
        return SmoothAPLoss(temperature=0.1)
    if name == "xbm":
        return CrossBatchMemory(ContrastiveLoss(), 8, memory_size=40, start_iteration=1)
    raise ValueError(name)


def _train(name: str, steps: int = 4, distributed: bool = True) -> dict:
    model, loss = _model(), _loss(name)
    history = fit(
        model,
        loss,
        VectorData(),
        steps=steps,
        P=4,
        K=3,
        lr=0.05,
        optimizer="sgd",
        weight_decay=0.0,
        log_every=1,
        progress=False,
        distributed=distributed,
        device="cpu",
    )
    return {
        "losses": history.losses,
        "model": {k: v.clone() for k, v in model.state_dict().items()},
        "loss": {k: v.clone() for k, v in loss.state_dict().items()},
        "images_seen": history.images_seen,
    }


def _gradients(name: str, batch: list[int]) -> tuple[float, dict]:
    """The loss and the gradients of one step on ``batch`` (this process's part of it, gathered)."""
    from torch.nn.parallel import DistributedDataParallel

    from dmlkit.distributed import average_gradients, current

    data, model, loss = VectorData(), _model(), _loss(name)
    context = current()
    if context.distributed:
        part = len(batch) // context.world_size
        batch = batch[context.rank * part : (context.rank + 1) * part]
        forward, gathered = DistributedDataParallel(model), GatheredLoss(loss)
    else:
        forward, gathered = model, loss
    x, y = data.get_batch(batch)
    value = gathered(forward(x), y)
    value.backward()
    average_gradients(list(loss.parameters()))
    grads = {f"model.{k}": p.grad.clone() for k, p in model.named_parameters()}
    grads |= {f"loss.{k}": p.grad.clone() for k, p in loss.named_parameters()}
    return float(value.detach()), grads


def equivalence_worker(context, names):
    batch = [i for c in (0, 3, 5, 8) for i in range(6 * c, 6 * c + 3)]  # 4 classes × 3, class by class
    return {name: {"train": _train(name), "step": _gradients(name, batch)} for name in names}


@pytest.fixture(scope="module")
def two_processes():
    return launch(equivalence_worker, 2, LOSSES, backend="gloo", timeout_s=TIMEOUT_S)


@pytest.mark.parametrize("name", LOSSES)
def test_two_processes_train_like_one_with_the_global_batch(two_processes, name):
    single = equivalence_worker(None, [name])[name]
    for rank, result in enumerate(two_processes):
        found = result[name]
        # one step: the same loss value and gradients (model and proxies)
        value, grads = found["step"]
        assert value == pytest.approx(single["step"][0], abs=1e-10, rel=1e-10), rank
        assert grads.keys() == single["step"][1].keys()
        for key, grad in grads.items():
            torch.testing.assert_close(grad, single["step"][1][key], atol=1e-10, rtol=1e-8, msg=f"{key} rank {rank}")
        # a few steps of fit: the same losses, parameters, proxies and XBM queue
        assert found["train"]["losses"] == pytest.approx(single["train"]["losses"], abs=1e-9, rel=1e-9)
        for part in ("model", "loss"):
            for key, value in found["train"][part].items():
                torch.testing.assert_close(value, single["train"][part][key], atol=1e-9, rtol=1e-7, msg=f"{part}.{key}")
        assert found["train"]["images_seen"] == single["train"]["images_seen"]
    if name == "xbm":  # the queue is identical on every process (PML #639)
        assert torch.equal(
            two_processes[0][name]["train"]["loss"]["embedding_memory"],
            two_processes[1][name]["train"]["loss"]["embedding_memory"],
        )


def test_distributed_sampler_splits_whole_classes_of_the_global_batch():
    labels = torch.arange(10).repeat_interleave(5)
    from dmlkit.data import PKSampler

    whole = list(PKSampler(labels, 4, 3, num_batches=6, seed=7))
    parts = [list(DistributedPKSampler(labels, 4, 3, rank, 2, num_batches=6, seed=7)) for rank in range(2)]
    for step, batch in enumerate(whole):
        assert parts[0][step] + parts[1][step] == batch
        first, second = set(labels[parts[0][step]].tolist()), set(labels[parts[1][step]].tolist())
        assert len(first) == len(second) == 2 and not first & second
    with pytest.raises(ValueError, match="multiple of the world size"):
        DistributedPKSampler(labels, 3, 3, 0, 2)
    with pytest.raises(ValueError, match="rank must lie"):
        DistributedPKSampler(labels, 4, 3, 2, 2)


def evaluation_worker(context, n, batch_size):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(10, 8)).float()
    data = VectorData()
    data.x = data.x.float()[:n]
    data.labels = data.labels[:n]
    return embed_sharded(model, data, batch_size=batch_size)


@pytest.mark.parametrize(("n", "batch_size", "world"), [(72, 8, 2), (23, 4, 3)])
def test_sharded_evaluation_equals_one_process_exactly(n, batch_size, world):
    results = launch(evaluation_worker, world, n, batch_size, backend="gloo", timeout_s=TIMEOUT_S)
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(10, 8)).float()
    data = VectorData()
    data.x, data.labels = data.x.float()[:n], data.labels[:n]
    expected, labels = embed(model, data, batch_size=batch_size)
    for embeddings, found_labels in results:
        assert torch.equal(embeddings, expected) and torch.equal(found_labels, labels)
    assert retrieval_metrics(results[0][0], results[0][1]) == retrieval_metrics(expected, labels)
    shards = [shard_range(n, r, world, batch_size) for r in range(world)]
    assert [i for s in shards for i in s] == list(range(n))


def bad_set_up_worker(context, case):
    if case == "seed":
        fit(
            _model(),
            ContrastiveLoss(),
            VectorData(),
            steps=1,
            P=4,
            K=3,
            seed=context.rank,
            progress=False,
            distributed=True,
        )
    elif case == "P":
        fit(_model(), ContrastiveLoss(), VectorData(), steps=1, P=3, K=3, progress=False, distributed=True)
    elif case == "shapes":
        GatheredLoss(ContrastiveLoss())(torch.randn(4 + context.rank, 3), torch.zeros(4 + context.rank).long())
    elif case == "hang":
        if context.rank == 1:
            time.sleep(60)  # never joins the collective rank 0 waits in
        else:
            GatheredLoss(ContrastiveLoss())(torch.randn(4, 3), torch.tensor([0, 0, 1, 1]))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("seed", "seed must be the same on every process"),
        ("P", "multiple of the world size"),
        ("shapes", r"same shape, got \[\(4, 3\), \(5, 3\)\]"),
    ],
)
def test_a_bad_set_up_is_a_clear_error(case, message):
    with pytest.raises(RuntimeError, match=message):
        launch(bad_set_up_worker, 2, case, backend="gloo", timeout_s=TIMEOUT_S)


def test_a_process_that_never_joins_times_out_instead_of_hanging():
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"still running after 8 s"):
        launch(bad_set_up_worker, 2, "hang", backend="gloo", timeout_s=8)
    assert time.monotonic() - started < 40


def test_backends_that_cannot_run_here_are_refused():
    assert check_backend("gloo", "cpu") == "gloo"
    with pytest.raises(ValueError, match="needs CUDA"):
        check_backend("nccl", "cpu")
    with pytest.raises(ValueError, match="must be 'gloo', 'nccl' or 'mpi'"):
        check_backend("tcp", "cpu")
    if not torch.distributed.is_backend_available("mpi"):
        with pytest.raises(RuntimeError, match="not available in this torch build"):
            launch(bad_set_up_worker, 2, "seed", backend="mpi", timeout_s=TIMEOUT_S)


def test_one_process_is_unchanged_by_distributed():
    a = _train("proxy_anchor")
    b = _train("proxy_anchor", distributed=False)
    assert a["losses"] == b["losses"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_torchrun_runs_the_example_script_on_two_processes():
    """The README's command, as a user runs it: torchrun, gloo on this CPU, the group from the
    environment, sharded evaluation; killed after a timeout rather than left hanging."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--nproc_per_node", "2", "-m", "dmlkit.distributed", "--steps", "3", "--P", "8"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 process(es), backend gloo" in done.stdout and "map@r" in done.stdout


def test_joining_a_group_checks_its_arguments(monkeypatch):
    from dmlkit.distributed import from_environment, init

    with pytest.raises(ValueError, match="rank must lie"):
        init(2, 2, "tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="world_size must be a positive integer"):
        init(0, 0, "tcp://127.0.0.1:1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(RuntimeError, match="launch with torchrun"):
        from_environment()
    monkeypatch.delenv("WORLD_SIZE")
    assert from_environment().world_size == 1
    with pytest.raises(ValueError, match="expected embeddings"):
        GatheredLoss(ContrastiveLoss())(torch.randn(4, 3), torch.zeros(3).long())
