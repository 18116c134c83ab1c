"""A run's key holds the code that computed it, and claims on keys that a killed server left are swept."""
import os
import shutil
import time
from pathlib import Path

import torch

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


def test_a_run_served_from_memory_is_not_the_first_the_folders_bound_deletes(tmp_path):
    from lora_core.checkpoints import tidy

    runs = store.RunStore(tmp_path)
    record = {"weights": torch.zeros(64, 64)}  # 16 KiB of tensors each
    for key in ("in-use", "old-1", "old-2"):
        runs.put(key, record)
    long_ago = time.time() - 3600
    for key in ("in-use", "old-1", "old-2"):
        os.utime(runs.path(key), (long_ago, long_ago))  # written an hour ago, all three
    os.utime(runs.path("old-2"), (long_ago + 1, long_ago + 1))
    assert runs.get("in-use") is not None  # served from memory: the class uses it
    size = runs.path("in-use").stat().st_size
    tidy(tmp_path, max_bytes=2.5 * size)  # room for two of the three
    assert sorted(p.stem for p in tmp_path.glob("*.safetensors")) == ["in-use", "old-2"]
