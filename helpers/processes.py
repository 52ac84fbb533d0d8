"""Child processes the course starts in a session of their own (servers, training launches): stopping
one stops its whole process group, children included."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time


def group_alive(pid: int) -> bool:
    """True while any process of the group led by `pid` is left (the leader may be gone already)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate the group `process` leads (also when `process` has already exited and left children),
    wait for all of it, and kill what lingers after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    while group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if group_alive(process.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
