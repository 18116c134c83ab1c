"""The practitioner's path: the baseline file the LoRA page offers, and the Python it shows, run as written
outside the app, print the accuracy the page shows."""
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import held_baseline, open_session, train_baseline
from safetensors import safe_open
from streamlit.testing.v1 import AppTest

import lora_core as lc
from lora_core import export
from lora_core.data import MEAN, SAMPLE_FILE, STD
from service import downloads
from ui import adapters

SETTINGS = {"base_hidden1": 32, "base_hidden2": 16, "base_max_steps": 40, "lora_steps": 30, "lora_rank": 2,
            "lora_targets": ["linear1", "linear3"]}


def test_the_baseline_file_round_trips_with_its_sizes_and_normalisation(small_mlp, tmp_path):
    blob = export.baseline_bytes(small_mlp, "mnist-sample")
    model, info = export.read_baseline(blob)
    assert info["layer_sizes"] == "[784, 32, 16, 10]" and float(info["mean"]) == MEAN and float(info["std"]) == STD
    for name, value in small_mlp.state_dict().items():
        assert torch.equal(model.state_dict()[name], value)
    (tmp_path / "b.safetensors").write_bytes(blob)
    loaded = export.load_baseline(tmp_path / "b.safetensors")
    assert not any(p.requires_grad for p in loaded.parameters())


@pytest.mark.parametrize("damage, words", [
    (lambda blob: blob[:100], "not a readable safetensors file"),
    (lambda blob: blob.replace(b"lora-lab-baseline/1", b"lora-lab-baseline/9"), "not a LoRA Lab baseline"),
    (lambda blob: blob.replace(b"[784, 32, 16, 10]", b"[784, 32, 17, 10]"), "do not fit layer sizes"),
    (lambda blob: blob.replace(b"[784, 32, 16, 10]", b"[784, 32, -6, 10]"), "layer_sizes must be"),
])
def test_a_file_that_is_not_a_baseline_is_refused_with_the_reason(small_mlp, damage, words):
    with pytest.raises(ValueError, match=words):
        export.read_baseline(damage(export.baseline_bytes(small_mlp, "mnist-sample")))


@pytest.fixture(scope="module")
def page():
    """The LoRA page after training an adapter: what it shows and the files it offers."""
    at = open_session(SETTINGS, timeout=180)
    train_baseline(at)
    at.switch_page("app_pages/lora.py").run()
    at.button(key="lora_train").click().run()
    assert not at.exception, at.exception
    return at


def offered_files(at: AppTest, folder: Path) -> None:
    """Write the three files the page offers under the names it offers them, as a browser saves them."""
    held = held_baseline(at)
    record = at.session_state["lora"]
    (folder / downloads.peft_zip_name(record.stem)).write_bytes(adapters.zip_bytes(record, True))
    (folder / downloads.baseline_name(held, "mnist-sample")).write_bytes(
        downloads.baseline_data(held["run"], "mnist-sample")())
    data = lc.load_dataset("mnist-sample")
    (folder / downloads.test_images_name("mnist-sample")).write_bytes(downloads.test_images_data(data)())


@pytest.mark.parametrize("how", ["as a file", "pasted into python's prompt"])
def test_the_code_on_the_page_prints_the_accuracy_on_the_page(page, how, tmp_path):
    shown = {m.label: m.value for m in page.metric}["Accuracy after LoRA"]
    record = page.session_state["lora"]
    right = 10_000 - record.after.wrong  # the core's evaluation of the page's adapter
    snippet, = [c.value for c in page.main.code]  # the sidebar holds the share link
    offered_files(page, tmp_path)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # a fresh interpreter in a fresh folder
    if how == "as a file":
        (tmp_path / "score.py").write_text(snippet)
        done = subprocess.run([sys.executable, "score.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
    else:  # -i reads standard input as the interactive prompt does: a blank line inside a block would end it
        done = subprocess.run([sys.executable, "-i", "-q"], input=snippet, cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Error" not in done.stderr, done.stderr
    printed = done.stdout.replace(">>> ", "").replace("... ", "").strip().splitlines()
    assert printed[-1] == f"test accuracy {shown} ({right:,} of 10,000 test images right)"
    assert printed[:-1] in ([], ["<All keys matched successfully>"])  # the prompt echoes load_state_dict's value
    assert shown == f"{record.after.accuracy:.2%}" and record.after.accuracy != record.before.accuracy


def test_the_code_names_its_packages_and_needs_nothing_of_this_project(page):
    snippet, = [c.value for c in page.main.code]  # the sidebar holds the share link
    assert snippet.startswith("# Needs: pip install torch safetensors peft numpy\n")
    imported = {line.split()[1].split(".")[0] for line in snippet.splitlines() if line.startswith(("import ", "from "))}
    assert imported == {"json", "zipfile", "numpy", "torch", "peft", "safetensors"}


def test_the_offered_test_images_are_the_datasets_own_pixels():
    with np.load(io.BytesIO(export.test_images_bytes(*_test_set()))) as f:
        pixels, labels = f["pixels"], f["labels"]
    with np.load(SAMPLE_FILE) as f:
        assert np.array_equal(pixels, f["test_x"].reshape(-1, 28, 28))
        assert np.array_equal(labels, f["test_y"])


def test_the_baseline_file_says_its_sizes_and_normalisation(page, tmp_path):
    offered_files(page, tmp_path)
    path, = tmp_path.glob("*.safetensors")
    with safe_open(path, "pt") as f:
        info = f.metadata()
    assert info["layer_sizes"] == "[784, 32, 16, 10]" and (float(info["mean"]), float(info["std"])) == (MEAN, STD)
    held = held_baseline(page)
    assert path.name == f"lora-lab-baseline-mnist-sample-32x16-seed0-{len(held['run'].losses)}steps.safetensors"
    assert lc.evaluate(export.load_baseline(path), *_test_set()).accuracy == held["run"].evaluation.accuracy


def _test_set():
    data = lc.load_dataset("mnist-sample")
    return data.test_x, data.test_y
