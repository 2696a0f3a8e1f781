"""``python -m dmlkit.reporting``: rewrite ``figures/results.md`` (and the README's results block)."""

import sys

from dmlkit.reporting.results import main

sys.exit(main())
