"""The guard that fails a test leaving a process running (``tests/conftest.py``) sees a child
and kills it with its group."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import _kill_with_group, running_children


def test_a_running_child_is_seen_and_killed_with_its_group():
    script = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"
    child = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        assert running_children()[child.pid].startswith(f"{sys.executable} -c import subprocess")
    finally:
        _kill_with_group(child.pid)
    assert child.pid not in running_children()
    group = subprocess.run(
        ["pgrep", "-g", str(child.pid)], capture_output=True, text=True, check=False
    )
    assert group.stdout == ""  # the grandchild (sleep) went with it
