"""Damaged checkpoints read as None (retrain), never as an exception; the checkpoint folder stays bounded."""
import os
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_safetensors

import lora_core as lc
from lora_core import works
from lora_core.checkpoints import FORMAT, digest, load_tensors, save_tensors, tidy
from lora_core.store import RunStore

LIMIT = 2**20  # bytes of tensors read back: far more than these files hold


def mlp(seed):
    torch.manual_seed(seed)
    return lc.MLP(32, 16)


def save(model, path, info: dict | None = None) -> None:
    save_tensors(model.state_dict(), path, info)


def forged(tensors: dict, info='{"v": 1}', **metadata) -> bytes:
    """A checkpoint whose digest matches its tensors: only the damage named in the test is wrong."""
    meta = {"format": FORMAT, "sha256": digest(tensors), "info": info, **metadata}
    return save_safetensors(tensors, metadata=meta)


def state(seed=0):
    return {k: v.clone() for k, v in mlp(seed).state_dict().items()}


def _write(path: Path, blob: bytes) -> None:
    path.write_bytes(blob)


DAMAGES = {
    "truncated": lambda p, good: _write(p, good[: len(good) // 2]),
    "cut in the header": lambda p, good: _write(p, good[:5]),
    "empty": lambda p, good: _write(p, b""),
    "no metadata": lambda p, good: _write(p, save_safetensors(state())),
    "info is null": lambda p, good: _write(p, forged(state(), info="null")),
    "info is a list": lambda p, good: _write(p, forged(state(), info="[1, 2]")),
    "info is not JSON": lambda p, good: _write(p, forged(state(), info="{{")),
    "info nested too deep": lambda p, good: _write(p, forged(state(), info="[" * 100_000 + "]" * 100_000)),
    "digest of other tensors": lambda p, good: _write(p, forged(state(), sha256="0" * 64)),
    "other format": lambda p, good: _write(p, forged(state(), format="something-else/1")),
    "a directory": lambda p, good: p.mkdir(),
    "a FIFO": lambda p, good: os.mkfifo(p),  # opened the ordinary way, reading it would wait for a writer
    "a dangling symlink": lambda p, good: p.symlink_to(p.parent / "nowhere"),
    "a symlink to an endless device": lambda p, good: p.symlink_to("/dev/zero"),
    "missing": lambda p, good: None,
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_every_damaged_checkpoint_reads_as_none(tmp_path, damage):
    saved = tmp_path / "saved.safetensors"
    save(mlp(0), saved, {"v": 1})
    path = tmp_path / "m.safetensors"
    DAMAGES[damage](path, saved.read_bytes())
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(load_tensors(path, LIMIT)), daemon=True)
    reader.start()
    reader.join(30)  # a FIFO or a device must not hold the reader
    assert outcome == [None]


def test_the_forgery_helper_makes_a_loadable_checkpoint(tmp_path):
    """The damages above are each the only thing wrong: undamaged, the same file loads."""
    (tmp_path / "m.safetensors").write_bytes(forged(state(0)))
    tensors, info = load_tensors(tmp_path / "m.safetensors", LIMIT)
    assert info == {"v": 1} and torch.equal(tensors["linear1.weight"], mlp(0).linear1.weight)


WEIGHT_DAMAGES = {
    "a tensor missing": lambda s: {k: v for k, v in s.items() if k != "linear3.bias"},
    "an extra tensor": lambda s: {**s, "extra": torch.zeros(3)},
    "wrong shape": lambda s: {**s, "linear3.bias": torch.zeros(11)},
    "wrong dtype": lambda s: {k: v.double() for k, v in s.items()},
    "NaN weights": lambda s: {**s, "linear2.weight": torch.full((16, 32), torch.nan)},
}


@pytest.mark.parametrize("damage", WEIGHT_DAMAGES)
def test_a_stored_baseline_whose_weights_are_not_its_networks_is_never_served(tmp_path, data, damage):
    """A verified file whose weights do not fit the network its config describes reads as damaged."""
    run = lc.train_baseline(lc.BaselineConfig(hidden1=32, hidden2=16, max_steps=2), data)
    record = works.baseline_record(run)
    RunStore(tmp_path).put("k", dict(record, state=WEIGHT_DAMAGES[damage](record["state"])))
    store = RunStore(tmp_path, problem=works.record_problem)
    assert store.get("k", lambda stored: works.baseline_from_record(stored, "cpu")) is None
    assert store.damaged == {"k"}
    RunStore(tmp_path).put("k", record)  # undamaged, the same record is served
    assert store.get("k", lambda stored: works.baseline_from_record(stored, "cpu")) is not None


def test_an_unreadable_checkpoint_reads_as_none(tmp_path):
    """chmod 000 stops every user but root; as root the read is made as `nobody` (seteuid), so the kernel
    really refuses it with PermissionError, as it would for a server running as an ordinary user."""
    path = tmp_path / "m.safetensors"
    save(mlp(0), path, {"v": 1})
    path.chmod(0)
    as_root = os.geteuid() == 0
    if as_root:
        os.seteuid(65534)
    try:
        with pytest.raises(PermissionError):
            path.read_bytes()
        assert load_tensors(path, LIMIT) is None
    finally:
        if as_root:
            os.seteuid(0)


def sized(path: Path, size: int, mtime: float) -> Path:
    path.write_bytes(b"\0" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_tidy_keeps_the_most_recently_used_within_the_limit(tmp_path):
    now = 1_000_000.0
    files = [sized(tmp_path / f"baseline-{i}.safetensors", 100, now - 10 * i) for i in range(5)]  # 0 newest
    other = sized(tmp_path / "notes.txt", 1000, now - 100)  # not a checkpoint: never touched
    done = tidy(tmp_path, max_bytes=350, now=now)
    assert done == {"partial": 0, "evicted": 2, "kept_bytes": 300}
    assert [f.exists() for f in files] == [True, True, True, False, False] and other.exists()
    assert tidy(tmp_path, max_bytes=350, now=now)["evicted"] == 0


def test_tidy_deletes_leftover_partials_but_not_a_write_in_progress(tmp_path):
    now = 1_000_000.0
    old = sized(tmp_path / "baseline-a.safetensorsx1y2.partial", 50, now - 3600)  # a kill -9 mid-write
    fresh = sized(tmp_path / "baseline-b.safetensorsx3y4.partial", 50, now - 1)  # being written now
    assert tidy(tmp_path, max_bytes=10**9, now=now)["partial"] == 1
    assert not old.exists() and fresh.exists()
    assert tidy(tmp_path / "absent", max_bytes=1) == {"partial": 0, "evicted": 0, "kept_bytes": 0}


def test_loading_marks_a_checkpoint_as_recently_used(tmp_path):
    path = tmp_path / "m.safetensors"
    save(mlp(0), path)
    os.utime(path, (1, 1))
    assert load_tensors(path, LIMIT) is not None
    assert path.stat().st_mtime > 1


def test_storing_a_run_keeps_the_folder_under_its_limit(monkeypatch, data):
    """service.runs evicts the least recently used run file beyond $LORA_LAB_CACHE_MB when it stores one."""
    from service import runs
    from service.runs import Run
    from ui import baseline

    def store(seed: int) -> str:
        config = lc.BaselineConfig(hidden1=24, hidden2=24, max_steps=3, seed=seed)
        key = runs.key(lc.Experiment(baseline=config, seed=seed), "baseline", "cpu")
        work = lambda job: lc.train_baseline(config, data)  # noqa: E731
        runs.obtain(Run(key, "baseline", work=work, keep=baseline.keep), "session").job.wait(60)
        return key

    first = runs.store().path(store(1))
    size = first.stat().st_size
    os.utime(first, (1, 1))  # used long ago
    monkeypatch.setenv("LORA_LAB_CACHE_MB", str(1.5 * size / 2**20))  # room for one
    second = runs.store().path(store(2))
    assert not first.exists() and second.exists()


@pytest.mark.parametrize("losses", ["not a list", [1.0, None], [True], None])
def test_a_stored_baseline_whose_losses_have_the_wrong_types_is_retrained(tmp_path, data, losses):
    from lora_core.store import RunStore
    from ui import baseline

    config = lc.BaselineConfig(hidden1=24, hidden2=24, max_steps=3, seed=5)
    run = lc.train_baseline(config, data)
    record = dict(works.baseline_record(run), losses=losses)
    RunStore(tmp_path).put("k", record)
    fresh = RunStore(tmp_path)  # a restart: read from disk
    revive = baseline.revive_on(data)
    assert fresh.get("k", revive) is None and "k" in fresh.damaged
    RunStore(tmp_path).put("k", works.baseline_record(run))
    assert RunStore(tmp_path).get("k", revive).losses == run.losses
