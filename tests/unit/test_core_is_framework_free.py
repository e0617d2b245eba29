"""The domain core must import without any web, queue or schema framework."""

import subprocess
import sys

FRAMEWORKS = ("flask", "redis", "rq", "marshmallow")


def test_core_modules_import_no_framework():
    code = (
        "import sys\n"
        "import sieve.core.strategies, sieve.core.estimators, sieve.core.errors, sieve.core.selection\n"
        "import sieve.core.evaluation, sieve.core.history, sieve.core.stopping, sieve.core.training\n"
        f"loaded = [m for m in {FRAMEWORKS!r} if m in sys.modules or any(k.startswith(m + '.') for k in sys.modules)]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"core pulled in: {result.stdout.strip()}"
