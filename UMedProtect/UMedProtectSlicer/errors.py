"""The one error type the panel shows as a single sentence (bad inputs, mismatched grids, failed runs)."""


class UserFacingError(RuntimeError):
    """A problem the user can fix; str(error) is one sentence meant for the panel."""
