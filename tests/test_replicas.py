"""Two app servers sharing one run folder, as replicas behind a sticky proxy: a run one server trains is
shown by the other without training, even when asked for while it trains."""
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import browser_harness as bh
import pytest
from conftest import parent_pid

import lora_core as lc

expect = pytest.importorskip("playwright.sync_api").expect

# a second or so: the first server is paused mid-training (paused_while_training) while the second is asked,
# so no training has to outlast a page load; what the replicas share does not depend on the layers' sizes
CONFIG = lc.BaselineConfig(hidden1=128, hidden2=64, epochs=20, max_steps=1_500, seed=5)
LINK = (f"baseline?seed={CONFIG.seed}&h1={CONFIG.hidden1}&h2={CONFIG.hidden2}&epochs={CONFIG.epochs}"
        f"&base_steps={CONFIG.max_steps}")
LONG_MS = 300_000


def stored_files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its inode and size: a run stored again (a second training) replaces
    its file by a rename, which changes the inode. (Its modification time says when it was last used: a
    read may set it, lora_core.store.)"""
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_size)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def paused_while_training(runs: Path, stack: ExitStack, timeout_s: float = 60) -> int:
    """Wait for a server's claim on a run in `runs` (it trains), then pause that server (SIGSTOP; SIGCONT
    when `stack` closes, unless continued before) and check that it had not finished: its pid."""
    deadline = time.monotonic() + timeout_s
    # a claim file is created empty, then given its owner (lora_core.run_claims reads an empty one as fresh)
    while not ((claims := list(runs.glob(".*.claim"))) and (owner := claims[0].read_text())):
        assert time.monotonic() < deadline, f"no server claimed a run in {timeout_s:g} s"
        time.sleep(0.005)
    pid = json.loads(owner)["pid"]
    assert parent_pid(pid) == os.getpid(), f"pid {pid} is not a server of this test"  # nothing else is paused
    os.kill(pid, signal.SIGSTOP)
    stack.callback(os.kill, pid, signal.SIGCONT)
    assert claims[0].exists() and not list(runs.glob("**/*.safetensors")), "the training ended before the pause"
    return pid


def test_a_run_asked_of_two_servers_is_trained_once_and_shown_by_both(chromium, tmp_path, data):
    shared = tmp_path / "shared"
    env = {"LORA_LAB_CACHE": str(shared), "LORA_LAB_DATA": str(tmp_path / "data")}
    with ExitStack() as stack:
        with ThreadPoolExecutor(2) as pool:  # both start at once
            first, second = pool.map(stack.enter_context, [bh.streamlit_server(env=env, log=tmp_path / f"s{n}.log")
                                                           for n in (1, 2)])
        pages = []
        for url in (first, second):
            context = chromium.new_context(viewport={"width": 1400, "height": 900})
            stack.callback(context.close)
            pages.append(bh.open_app(context, url, LINK, timeout=LONG_MS))
        teacher, student = pages
        teacher.get_by_role("button", name="Train baseline", exact=True).click()  # not waiting for its end
        paused = paused_while_training(shared / "runs", stack)

        student.reload()  # the second server, asked for the same run while the first trains it
        expect(student.get_by_text("another server of this site is making exactly this run")).to_be_visible(
            timeout=LONG_MS)
        os.kill(paused, signal.SIGCONT)
        expect(bh.metric(student, "Steps trained")).to_have_text(f"{CONFIG.max_steps:,}", timeout=LONG_MS)
        expect(bh.metric(teacher, "Steps trained")).to_have_text(f"{CONFIG.max_steps:,}", timeout=LONG_MS)
        once = stored_files(shared / "runs")
        expect(student.get_by_role("button", name="Train baseline", exact=True)).to_be_disabled()
        accuracy = f"{lc.train_baseline(CONFIG, data).evaluation.accuracy:.2%}"
        assert bh.metric(teacher, "Test accuracy").inner_text() == bh.metric(student, "Test accuracy").inner_text() \
            == accuracy
        assert bh.problems(teacher) == bh.problems(student) == []
        assert len([name for name in once if name.endswith(".safetensors")]) == 1
        student.reload()  # the run, read again: nothing trains, nothing is written
        expect(bh.metric(student, "Steps trained")).to_have_text(f"{CONFIG.max_steps:,}", timeout=LONG_MS)
        assert stored_files(shared / "runs") == once
