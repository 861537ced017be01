"""``python -m linfit`` is the ``linfit`` command."""

import sys

from linfit.cli import main

sys.exit(main())
