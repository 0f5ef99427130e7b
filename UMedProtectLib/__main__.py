"""`python -m UMedProtectLib` is the `umed-protect` command."""

import sys

from .cli import main

sys.exit(main())
