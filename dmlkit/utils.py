"""Small shared helpers: seeding and device choice (input validation lives in :mod:`dmlkit.checks`).

Every notebook and every training run goes through :func:`seed_everything` so that the same seed
gives the same numbers on the same machine.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["seed_everything", "default_device"]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) and return a torch generator seeded alike.

    Give the returned generator to samplers and data loaders so their order is reproducible too.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {seed!r} ({type(seed).__name__})")
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def default_device() -> torch.device:
    """CUDA when it is available, else the CPU (``DMLKIT_DEVICE`` overrides both)."""
    forced = os.environ.get("DMLKIT_DEVICE")
    if forced:
        return torch.device(forced)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
