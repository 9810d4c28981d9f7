"""`python -m modelaudit.cli`, as `python -m modelaudit` (the single-module CLI ran so)."""

from modelaudit.cli.main import console

if __name__ == "__main__":
    console()
