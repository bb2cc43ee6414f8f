"""``python -m minisgd``: see :mod:`minisgd.cli`."""

import sys

from minisgd.cli import main

sys.exit(main())
