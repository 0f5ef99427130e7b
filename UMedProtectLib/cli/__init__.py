"""The `umed-protect` command line (`main.py`) and the protect, fit-profile and demo commands (`commands.py`)."""
