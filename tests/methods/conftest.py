"""The plain-loop references of tests/core (core_reference*.py) are importable here too."""

import sys
from pathlib import Path

CORE_TESTS = str(Path(__file__).parents[1] / "core")
if CORE_TESTS not in sys.path:
    sys.path.insert(0, CORE_TESTS)
