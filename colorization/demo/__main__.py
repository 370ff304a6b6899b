"""``python -m colorization.demo --models DIR``: the same as ``colorize-demo``."""

import sys

from colorization.demo.cli import main

sys.exit(main())
