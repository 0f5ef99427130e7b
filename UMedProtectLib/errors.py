"""Exceptions that callers (CLI, Slicer panel) turn into one-line messages."""


class InputError(ValueError):
    """Bad user input: the message says what is wrong and how to fix it (CLI exit code 2)."""


class Cancelled(RuntimeError):
    """The caller asked the engine to stop; `outcome` says what is left (nothing, unless a dataset run says more)."""

    def __init__(self, message: str = "cancelled", outcome: str = "no output file was written"):
        super().__init__(message)
        self.outcome = outcome


class StandardOutputError(InputError):
    """The standard output cannot be written: a closed pipe (`| head -1`), a full disk (/dev/full)."""

    def __init__(self, reason: str):
        super().__init__(f"cannot write to the standard output ({reason}); the run stopped there (its output files "
                         "appear all together or not at all)")
        self.reason = reason


class SummaryNotPrinted(Exception):
    """The outputs are on disk, and the standard output failed while their summary was printed: the run's exit
    code stands (`code`), and the reason is said on stderr."""

    def __init__(self, reason: str, code: int):
        super().__init__(reason)
        self.reason, self.code = reason, code
