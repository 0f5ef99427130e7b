"""Exceptions that callers (CLI, Slicer panel) turn into one-line messages."""


class InputError(ValueError):
    """Bad user input: the message says what is wrong and how to fix it (CLI exit code 2)."""


class Cancelled(RuntimeError):
    """The caller asked the engine to stop; `outcome` says what is left (nothing, unless a dataset run says more)."""

    def __init__(self, message: str = "cancelled", outcome: str = "no output file was written"):
        super().__init__(message)
        self.outcome = outcome
