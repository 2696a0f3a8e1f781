"""dmlkit: a study kit for deep metric learning.

The package holds the methods (data, models, losses, training, evaluation, compression analysis
and plots); the notebooks under ``notebooks/`` hold the story. See the README for a map.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "default_device", "seed_everything"]


def __getattr__(name: str):
    # Imported on first use, so that ``python -m dmlkit.<tool>`` starts without loading torch.
    if name in ("default_device", "seed_everything"):
        from dmlkit import utils

        return getattr(utils, name)
    raise AttributeError(f"module 'dmlkit' has no attribute {name!r}")
