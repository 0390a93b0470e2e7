"""A pause point for crash tests, and a fail point for isolation tests: inert unless
`PARTNERSHIP_TEST_PAUSE_AT` (or `PARTNERSHIP_TEST_FAIL_AT`) names it.

When it does, the process writes its pid to `<data>/logs/paused-at-<name>` and waits there
(for the test to kill it), so a test can crash a real run at a precise moment: inside a
delivery's transaction, or with a release built but not yet published."""

from __future__ import annotations

import os
import time

PAUSE_ENV = "PARTNERSHIP_TEST_PAUSE_AT"


def pause_point(name: str) -> None:
    if os.environ.get(PAUSE_ENV) != name:
        return
    from orchestration.partnership.settings import get_settings

    marker = get_settings().data_dir / "logs" / f"paused-at-{name}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))
    while True:
        time.sleep(1)


FAIL_ENV = "PARTNERSHIP_TEST_FAIL_AT"


def fail_point(name: str) -> None:
    """Inert unless `PARTNERSHIP_TEST_FAIL_AT` names this point; then it fails as a full disk does
    (OSError ENOSPC), so a test can break one step of a real run and see what else completes."""
    if os.environ.get(FAIL_ENV) != name:
        return
    import errno

    raise OSError(errno.ENOSPC, f"No space left on device (injected at {name})")
