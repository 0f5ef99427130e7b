"""The program's name and its `--version` option, shared by `umed-protect` and the evaluation's own entry point."""

import argparse

PROG = "umed-protect"


def add_version(parser: argparse.ArgumentParser) -> None:
    """--version: the program and the engine's version."""
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
