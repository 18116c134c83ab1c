"""The load test's simulated browsers yield the CPU to the server they measure (scripts/load_test.py
--browser-idle): in a class they run on the students' own machines."""
import subprocess
from pathlib import Path

import pytest

from scripts.load_test import idle_wrapper

SCHED_IDLE = 5  # Linux's policy number, field 41 of /proc/PID/stat


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="this kernel has no autogroup scheduling")
def test_the_idle_browser_runs_at_idle_policy_in_a_session_that_yields(tmp_path):
    """Playwright starts the browser in a session of its own: the wrapper gives that session's autogroup
    niceness 19 (autogroup shares the cores fairly between sessions whatever their processes' policy) and the
    browser SCHED_IDLE. Here the 'browser' is a shell that prints both, in a new session as Playwright's."""
    wrapper = idle_wrapper(tmp_path, browser="/bin/sh")
    shown = subprocess.run([str(wrapper), "-c", "cat /proc/self/autogroup; cat /proc/self/stat"],
                           capture_output=True, text=True, timeout=30, start_new_session=True, check=True).stdout
    autogroup, stat = shown.splitlines()
    assert autogroup.endswith(" nice 19")
    assert int(stat.rpartition(")")[2].split()[38]) == SCHED_IDLE
    assert not Path("/proc/self/autogroup").read_text().endswith(" nice 19\n")  # the tests' own session is untouched
