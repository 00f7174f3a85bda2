"""Run the ``reluspec`` command as ``python -m reluspec``."""

import sys

from reluspec.cli import main

if __name__ == "__main__":
    sys.exit(main())
