"""dmlkit: a study kit for deep metric learning.

The package holds the methods (data, models, losses, training, evaluation, compression analysis
and plots); the notebooks under ``notebooks/`` hold the story. See the README for a map.
"""

from dmlkit.utils import default_device, seed_everything

__version__ = "0.1.0"

__all__ = ["__version__", "default_device", "seed_everything"]
