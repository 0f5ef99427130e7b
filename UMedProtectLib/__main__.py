"""`python -m UMedProtectLib` is the `umed-protect` command."""

import sys

from .cli.main import main

sys.exit(main())
