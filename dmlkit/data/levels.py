"""The coarser level of a data set's classes, where it has one.

Some sections group classes into coarser sets: the glyph notebook's hierarchy (a glyph's Unicode
script, its letter case, its general category), category-aware batches. The level lives in each
class's ``class_info`` (:class:`dmlkit.data.base.TensorImageDataset`):

* glyphs — ``"script"`` (Latin, Greek, …), ``"case"``, ``"category"``;
* Stanford Online Products — ``"super_class"``, its 12 super-categories (bicycle, chair, …) from
  ``Ebay_*.txt`` (Oh Song et al., CVPR 2016);
* Fashion-MNIST, digits, CUB-200-2011 and Cars196 record none (CUB's and Cars196's official
  files name only the classes), so a section that needs one is skipped on them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["COARSER_LEVELS", "levels_of", "class_groups"]

#: The level used when a notebook does not name one, in order of preference.
COARSER_LEVELS = ("script", "super_class")


def levels_of(data: Any) -> list[str]:
    """The ``class_info`` keys that every class of ``data`` has (empty without class_info)."""
    info = getattr(data, "class_info", None)
    if not info:
        return []
    return sorted(set.intersection(*(set(entry) for entry in info)))


def class_groups(
    data: Any, level: str | None = None, what: str = "the grouped sections", log: Callable[[str], None] = print
) -> tuple[str | None, list[Any] | None]:
    """``(level, groups)``: the group of every class of ``data`` (indexed by label) at ``level``.

    ``level=None`` takes the data set's own coarser level (the first of :data:`COARSER_LEVELS`
    it has); a data set with none gives ``(None, None)`` and one sentence through ``log`` saying
    that ``what`` is skipped and why. A ``level`` the data do not record is a ``ValueError``
    naming the levels they do."""
    available = levels_of(data)
    name = str(getattr(data, "name", "the data")).removesuffix("-test").removesuffix("-train")
    if level is not None:
        if level not in available:
            raise ValueError(
                f"{name} records no class level {level!r}; its classes have "
                + (f"{available}" if available else "no class_info at all")
                + " (None: the data set's own coarser level, if any)"
            )
    else:
        level = next((candidate for candidate in COARSER_LEVELS if candidate in available), None)
        if level is None:
            log(f"{name} records no coarser level of its classes ({' or '.join(COARSER_LEVELS)}): {what} skipped")
            return None, None
    return level, [entry[level] for entry in data.class_info]
