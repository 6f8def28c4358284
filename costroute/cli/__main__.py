"""``python -m costroute.cli``: the ``costroute`` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
