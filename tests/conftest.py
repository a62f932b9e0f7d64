"""Put ``tests/`` on ``sys.path`` so test modules can ``import support.<module>``.

pytest runs with ``--import-mode=importlib`` and the repository root is itself the ``mapper``
package, so ``tests`` is not importable as a package of its own.
"""

import sys
from pathlib import Path

_TESTS_DIR = str(Path(__file__).parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)
