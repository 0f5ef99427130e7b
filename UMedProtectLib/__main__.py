"""`python -m UMedProtectLib` is the `umed-protect` command."""

import signal
import sys

from .cli.main import main

code = main()
# The run is over and its exit code says what it left on disk; a signal during the interpreter's shutdown (threads
# joined, modules torn down) ended it as 143 or 130 without a word.
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
sys.exit(code)
