"""modelaudit's tests, one package per area; each area's helpers (`_*.py`) sit beside it."""
