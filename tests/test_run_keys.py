"""A run's key holds the code that computed it, and claims on keys that a killed server left are swept."""
import os
import shutil
import time
from pathlib import Path

from lora_core import store

PACKAGE = Path(store.__file__).parent


def test_the_key_moves_with_the_code_that_computes_runs(tmp_path):
    copy = tmp_path / "lora_core"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "data"))
    assert store.code_version(copy) == store.CODE == store.code_version()  # the same sources, the same version
    train = copy / "train.py"
    train.write_text(train.read_text() + "\n# one more line\n")
    assert store.code_version(copy) != store.CODE
    (copy / "train.py").unlink()
    assert store.code_version(copy) != store.CODE


def test_the_same_description_on_the_same_code_keeps_its_key(monkeypatch):
    identity, environment = {"seed": 1}, store.environment("cpu", 1)
    key = store.run_key("baseline", identity, environment)
    assert key == store.run_key("baseline", dict(identity), dict(environment))
    monkeypatch.setattr(store, "CODE", "another-commit")
    assert store.run_key("baseline", identity, environment) != key


def test_lapsed_claims_are_swept_and_live_ones_kept(tmp_path):
    from lora_core import run_claims

    live = run_claims.claim(tmp_path, "live-run")
    dead = run_claims.claim(tmp_path, "dead-run")
    dead._released.set()  # its server was killed: nobody renews it any more
    old = time.time() - 2 * run_claims.TTL_S
    os.utime(dead.path, (old, old))
    leftover = tmp_path / ".x.claim.0123.stale"
    leftover.write_text("{}")
    os.utime(leftover, (old, old))
    try:
        assert run_claims.sweep_lapsed(tmp_path) == 2
        assert sorted(p.name for p in tmp_path.iterdir()) == [".live-run.claim"] and live.held()
    finally:
        live.release()
