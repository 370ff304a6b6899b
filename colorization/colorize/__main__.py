"""``python -m colorization.colorize``: the same as the ``colorize`` command."""

import sys

from colorization.colorize.cli import main

sys.exit(main())
