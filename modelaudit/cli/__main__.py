"""`python -m modelaudit.cli`, as `python -m modelaudit` (the single-module CLI ran so)."""

import sys

from modelaudit.cli import main

if __name__ == "__main__":
    sys.exit(main())
