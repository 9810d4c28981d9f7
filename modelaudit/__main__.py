import sys

from .cli import main

# Worker processes re-run the parent's main module as __mp_main__; only the real entry runs.
if __name__ == "__main__":
    sys.exit(main())
