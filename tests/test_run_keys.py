"""A run's key holds the code that computed it: servers on different code never share a run."""
import shutil
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
