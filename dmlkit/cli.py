"""The ``dmlkit`` command. Sub-commands:

- ``dmlkit figures ...`` — execute the notebooks headlessly (see :mod:`dmlkit.figures`);
- ``dmlkit results ...`` — the tuned, converged study notebook 07 reads (see :mod:`dmlkit.study`).
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: dmlkit figures [--smoke] [--only NAME] [--out DIR] [--param KEY=VALUE] [--list]")
        print("       dmlkit results [--smoke] [--out DIR] [--stage STAGE]   the tuned, converged study")
        print("       dmlkit figures --help, dmlkit results --help   for the details")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "figures":
        from dmlkit.figures import main as figures_main

        return figures_main(rest)
    if command == "results":
        from dmlkit.study import main as study_main

        return study_main(rest)
    print(f"dmlkit: unknown command {command!r}; known: figures, results", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
