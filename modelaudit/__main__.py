import sys

from modelaudit.cli import main

# Worker processes re-run this file by path as __mp_main__: absolute import, guarded entry.
if __name__ == "__main__":
    sys.exit(main())
