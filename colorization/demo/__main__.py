"""``python -m colorization.demo --models DIR``: the same as ``colorize-demo``."""

import sys

from colorization.demo.server import main

sys.exit(main())
