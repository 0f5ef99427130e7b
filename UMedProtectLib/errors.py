"""Exceptions that callers (CLI, Slicer panel) turn into one-line messages."""


class InputError(ValueError):
    """Bad user input: the message says what is wrong and how to fix it (CLI exit code 2)."""


class Cancelled(RuntimeError):
    """The caller asked the engine to stop; nothing was written."""
