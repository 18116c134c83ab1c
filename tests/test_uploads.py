"""Uploaded adapters: private to their uploader unless shared, named by a random key with no file name,
stored as uploaded, bounded per person and in all, and gone after a day."""
import time

import pytest
from conftest import open_session, train_baseline
from safetensors.torch import load, save

import lora_core as lc
from lora_core.adapter_files import adapter_bytes
from lora_core.checkpoints import safetensors_metadata
from service import runs
from ui import uploads

SETTINGS = {"base_hidden1": 32, "base_hidden2": 16, "base_max_steps": 40, "lora_steps": 20}


@pytest.fixture(scope="module")
def adapter_file():
    """A real adapter trained on the small baseline, as the file a student uploads."""
    at = open_session(SETTINGS, timeout=180)
    base = train_baseline(at)["run"]
    config = lc.FinetuneConfig(steps=20, seed=at.session_state["seed"])
    return adapter_bytes(lc.finetune_lora(base.model, lc.load_dataset("mnist-sample"), config).model)


def lora_page(**query) -> object:
    """A new session (another person: no browser is known under AppTest) on the LoRA page, with a link's
    query parameters."""
    at = open_session(SETTINGS, timeout=180)
    train_baseline(at)
    for name, value in query.items():
        at.query_params[name] = value
    at.session_state[uploads.PENDING_KEY] = [v for v in query.get("uploads", "").split(",") if v]
    return at.switch_page("app_pages/lora.py").run()


def upload(at, name: str, blob: bytes):
    at.file_uploader(key="lora_upload").set_value((name, blob, "application/octet-stream")).run()
    assert not at.exception, at.exception
    return at


def test_an_upload_is_private_to_its_uploader_until_shared(adapter_file):
    alice = upload(lora_page(), "alice-smith-homework3-grade-D.safetensors", adapter_file)
    key, = alice.session_state[uploads.UPLOADS_KEY]
    link = alice.query_params["uploads"]
    assert link == [key] or link == key
    assert "alice" not in key and "homework" not in key and len(key) == len("upload-") + 32  # random, no name
    bob = lora_page(uploads=key)
    assert "only their uploader can open" in bob.info[0].value
    assert "lora_adapters" not in bob.session_state
    alice.toggle(key=f"share_{key}").set_value(True).run()
    assert runs.store().get(key)["shared"] is True
    carol = lora_page(uploads=key)
    entry, = carol.session_state["lora_adapters"]
    assert entry["name"] == "rank 1 · alice-smith-homework3-grade-D.safetensors"


def test_the_same_bytes_uploaded_again_never_rename_anothers_upload(adapter_file):
    first = upload(lora_page(), "first.safetensors", adapter_file)
    second = upload(lora_page(), "second.safetensors", adapter_file)
    one, = first.session_state[uploads.UPLOADS_KEY]
    two, = second.session_state[uploads.UPLOADS_KEY]
    assert one != two and runs.store().get(one)["filename"] == "first.safetensors"


def as_float16(blob: bytes) -> bytes:
    """The same adapter file with its tensors in float16, metadata unchanged (as another tool may save it)."""
    return save({name: t.half() for name, t in load(blob).items()}, metadata=safetensors_metadata(blob))


def test_a_float16_upload_is_stored_as_uploaded(adapter_file):
    half = as_float16(adapter_file)
    assert len(half) < 0.6 * len(adapter_file)
    at = upload(lora_page(), "half.safetensors", half)
    key, = at.session_state[uploads.UPLOADS_KEY]
    assert runs.store().get(key)["blob"].numpy().tobytes() == half  # byte for byte, not widened to float32
    assert at.session_state["lora_adapters"][-1]["name"] == "rank 1 · half.safetensors"


def test_an_expired_upload_does_not_come_back(adapter_file):
    at = upload(lora_page(), "old.safetensors", adapter_file)
    key, = at.session_state[uploads.UPLOADS_KEY]
    record = runs.store().get(key)
    runs.store().put(key, {**record, "shared": True, "expires": time.time() - 1})
    later = lora_page(uploads=key)
    assert "lora_adapters" not in later.session_state


def test_uploads_are_bounded_per_person_and_in_all(monkeypatch):
    monkeypatch.setattr(uploads, "_kept", type(uploads._kept)())
    monkeypatch.setattr(uploads, "UPLOADS_IN_ALL", 5)
    gone = [uploads._bound(f"upload-a{i}", "alice") for i in range(uploads.PER_PERSON + 2)]
    assert gone[-1] == ["upload-a4"]  # over the server's five: the oldest of all goes
    assert list(uploads._kept) == [f"upload-a{i}" for i in range(5, 10)]
    monkeypatch.setattr(uploads, "UPLOADS_IN_ALL", 100)
    assert uploads._bound("upload-b", "bob") == []
    gone = [uploads._bound(f"upload-c{i}", "carol") for i in range(uploads.PER_PERSON + 1)]
    assert gone[-1] == ["upload-c0"]  # over one person's bound: that person's oldest goes, not others'
    assert "upload-b" in uploads._kept
