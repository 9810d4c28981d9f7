"""`modelaudit` with the hostile test scanner registered, for subprocess tests.

Worker processes re-run this file as `__mp_main__`, hence the guard.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

if __name__ == "__main__":
    from modelaudit.cli import main
    from modelaudit.scanners import SCANNER_REGISTRY
    from tests.hardening._hostile_scanners import HostileScanner

    SCANNER_REGISTRY.insert(0, HostileScanner)
    sys.exit(main())
