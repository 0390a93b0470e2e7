"""`partnership` ends without tearing down its modules, but only after its exit handlers ran and
its output was flushed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from orchestration.partnership.settings import PROJECT_ROOT

pytestmark = pytest.mark.dbt_free


def test_the_command_runs_exit_handlers_flushes_and_returns_its_code(tmp_path):
    marker = tmp_path / "handler-ran"
    script = f"""
import atexit, sys
atexit.register(lambda: open({str(marker)!r}, "w").write("ran"))
sys.argv = ["partnership", "contracts", "lint"]
from orchestration.partnership.cli import entry
print("before", end="")  # unflushed at exit: must still arrive
entry()
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("before")
    assert marker.read_text() == "ran"
    failing = script.replace('"contracts", "lint"', '"query", "--protocol", "no-such-protocol", "select 1"')
    done = subprocess.run([sys.executable, "-c", failing], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "error" in done.stderr
