"""``python -m costroute.cli``: the ``costroute`` command."""

import sys

from . import main

sys.exit(main())
