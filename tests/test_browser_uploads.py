"""Uploads in real browsers: a reload right after two uploads keeps both for their uploader; another browser
opening the uploader's address gets neither until one is shared, and then only that one."""
import re

from browser_harness import RUN_MS, open_app, press, rerun

import lora_core as lc
from lora_core.adapter_files import adapter_bytes

SMALL = "v=2&h1=32&h2=16&base_steps=20"


def adapter_file(folder, name: str, seed: int):
    """A rank-1 adapter that fits the 32×16 baseline's layers, as a file a student has."""
    path = folder / name
    path.write_bytes(adapter_bytes(lc.add_lora(lc.MLP(32, 16), rank=1, seed=seed)))
    return path


def names_in_list(tab, count: int) -> list[str]:
    """The adapters in the page's "switch and blend" list, by the switches' labels, once `count` are drawn."""
    from playwright.sync_api import expect

    switches = tab.get_by_test_id("stWidgetLabel").filter(has_text=re.compile(r"^rank \d+ · "))
    expect(switches).to_have_count(count, timeout=RUN_MS)
    return sorted(text.strip() for text in switches.all_inner_texts())


def test_uploads_come_back_to_their_uploader_and_to_others_only_when_shared(chromium, streamlit_url, tmp_path):
    from playwright.sync_api import expect

    alice = chromium.new_context(viewport={"width": 1400, "height": 900})
    bob = chromium.new_context(viewport={"width": 1400, "height": 900})  # another browser: its own cookie
    try:
        tab = open_app(alice, streamlit_url, f"baseline?{SMALL}")
        press(tab, "Train baseline", 120_000)
        tab.goto(f"{streamlit_url}/lora?{SMALL}")
        expect(tab.get_by_role("heading", level=1)).to_have_text("LoRA finetuning", timeout=RUN_MS)
        for name, seed in (("alice-homework-a.safetensors", 1), ("alice-homework-b.safetensors", 2)):
            with rerun(tab):
                tab.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(adapter_file(tmp_path, name, seed))
            expect(tab.get_by_text(f"{name} is attached to a copy of your baseline")).to_be_visible(timeout=RUN_MS)
        address = tab.url
        keys = re.search(r"uploads=([^&]+)", address).group(1).replace("%2C", ",").split(",")
        assert len(keys) == 2 and "alice" not in address  # both named at once, by keys that say no name
        tab.reload()
        expect(tab.get_by_role("heading", level=1)).to_have_text("LoRA finetuning", timeout=RUN_MS)
        assert names_in_list(tab, 2) == ["rank 1 · alice-homework-a.safetensors",
                                         "rank 1 · alice-homework-b.safetensors"]

        other = open_app(bob, streamlit_url, address.removeprefix(streamlit_url + "/"))
        expect(other.get_by_text("only their uploader can open")).to_be_visible(timeout=RUN_MS)
        assert names_in_list(other, 0) == []

        with rerun(tab):  # Alice shares the current one, b
            tab.get_by_text("Share this upload with the link").click()
        other = open_app(bob, streamlit_url, address.removeprefix(streamlit_url + "/"))
        assert names_in_list(other, 1) == ["rank 1 · alice-homework-b.safetensors"]
        expect(other.get_by_text("names 1 uploaded adapter(s) that only their uploader can open")).to_be_visible()
    finally:
        alice.close()
        bob.close()
