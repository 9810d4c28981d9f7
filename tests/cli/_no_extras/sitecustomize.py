"""Simulates an install without the optional cloud extras, in every process of a test: put
this folder first on PYTHONPATH."""

import sys

for _name in ("aiobotocore", "gcloud"):
    sys.modules[_name] = None  # type: ignore[assignment]
