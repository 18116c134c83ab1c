"""Claims on run keys in a folder that several app servers share: one computation per key, and a claim
whose server died is taken over."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lora_core import run_claims

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 60


def test_a_claim_is_exclusive_until_released(tmp_path):
    first = run_claims.claim(tmp_path, "run")
    assert first is not None and first.held() and not run_claims.lapsed(tmp_path, "run")
    assert run_claims.claim(tmp_path, "run") is None
    other = run_claims.claim(tmp_path, "other")
    assert other is not None
    first.release()
    other.release()
    assert not first.held() and run_claims.lapsed(tmp_path, "run")
    again = run_claims.claim(tmp_path, "run")
    assert again is not None
    again.release()
    assert list(tmp_path.iterdir()) == []  # released claims leave nothing behind


@pytest.mark.parametrize("key", ["", ".hidden", "../escape", "a/b", "x" * 201, "spaced key"])
def test_a_key_that_is_not_a_plain_file_name_is_refused(tmp_path, key):
    with pytest.raises(ValueError, match="a key is"):
        run_claims.claim(tmp_path, key)


# The other servers, in fresh interpreters: claims needs only the standard library, so it is loaded alone
# (importing lora_core would import torch, seconds per process on a busy machine).
LOAD = textwrap.dedent(f"""
    import importlib.util
    spec = importlib.util.spec_from_file_location("run_claims", {str(ROOT / "lora_core" / "run_claims.py")!r})
    run_claims = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_claims)
""")
RACER = LOAD + textwrap.dedent("""
    import os, sys, time
    root, start = sys.argv[1], float(sys.argv[2])
    result = os.path.join(root, "run.result")
    time.sleep(max(0.0, start - time.time()))  # every process asks at the same moment
    claim = None if os.path.exists(result) else run_claims.claim(root, "run")
    if claim is None:  # made, or another server makes it: wait for its result
        deadline = time.monotonic() + 60
        while not os.path.exists(result) and time.monotonic() < deadline:
            time.sleep(0.02)
    else:
        with open(os.path.join(root, "trainings.log"), "a") as log:
            log.write(f"{os.getpid()}\\n")
        time.sleep(0.5)  # the training
        with open(result + ".partial", "w") as f:
            f.write("trained once")
        os.replace(result + ".partial", result)
        claim.release()
    print(open(result).read())
""")


def test_servers_asking_for_the_same_key_at_once_compute_it_once(tmp_path):
    start = time.time() + 3  # after every interpreter has started
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path), str(start)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [racer.communicate(timeout=DEADLINE_S)[0].strip() for racer in racers]
    assert outputs == ["trained once"] * 4
    assert len((tmp_path / "trainings.log").read_text().split()) == 1


HOLDER = LOAD + textwrap.dedent("""
    import sys, time
    assert run_claims.claim(sys.argv[1], "run") is not None
    print("claimed", flush=True)
    time.sleep(600)
""")


def test_the_claim_of_a_server_that_was_killed_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "claimed"
        assert run_claims.claim(tmp_path, "run") is None  # alive: its claim stands
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(DEADLINE_S)
    assert run_claims.lapsed(tmp_path, "run")  # its process is gone: no need to wait for the claim to lapse
    taken = run_claims.claim(tmp_path, "run")
    assert taken is not None and taken.held()
    taken.release()


def test_a_claim_from_another_machine_stands_while_renewed_and_lapses_after_its_ttl(tmp_path):
    (tmp_path / ".run.claim").write_text('{"token": "t", "pid": 1, "host": "another-machine"}')
    assert run_claims.claim(tmp_path, "run", ttl_s=1.0) is None
    old = time.time() - 5
    os.utime(tmp_path / ".run.claim", (old, old))  # its owner stopped renewing it 5 s ago
    taken = run_claims.claim(tmp_path, "run", ttl_s=1.0)
    assert taken is not None
    time.sleep(3)  # three TTLs: only the renewals keep it
    assert run_claims.claim(tmp_path, "run", ttl_s=1.0) is None
    taken.release()
