"""The practitioner's path in a real browser: download the baseline, the PEFT adapter and the test images with
the LoRA page's buttons, copy its Python as shown, run it in an empty folder with nothing of this project: it
prints the accuracy the page shows."""
import re
import subprocess
import sys

from browser_harness import go, metric, open_app, press, set_number


def test_the_downloads_and_the_code_on_the_page_give_the_pages_accuracy(chromium, streamlit_url, tmp_path):
    from playwright.sync_api import expect

    context = chromium.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    try:
        tab = open_app(context, streamlit_url, "baseline")
        for label, value in (("Hidden layer 1 size", 40), ("Hidden layer 2 size", 20), ("Step limit (0 = none)", 30)):
            set_number(tab, label, value)
        press(tab, "Train baseline", 180_000)
        expect(metric(tab, "Steps trained")).to_have_text("30", timeout=120_000)
        go(tab, "LoRA finetuning", "LoRA finetuning")
        set_number(tab, "Steps", 30)
        press(tab, "Train LoRA", 180_000)
        shown = metric(tab, "Accuracy after LoRA")
        expect(shown).to_have_text(re.compile(r"\d+\.\d\d%"), timeout=120_000)
        for button in ("Download for PEFT (.zip)", "Download the baseline (.safetensors)",
                       "Download the test images (.npz)"):
            with tab.expect_download() as download:
                tab.get_by_role("button", name=button).click()
            download.value.save_as(tmp_path / download.value.suggested_filename)
        box = tab.get_by_test_id("stExpander").filter(has_text="Use them in Python: copy as code")
        box.get_by_text("Use them in Python: copy as code").click()
        block = box.get_by_test_id("stCode")
        expect(block).to_contain_text("PeftModel.from_pretrained")
        code = block.locator("code").text_content()
        accuracy = shown.inner_text().strip()
    finally:
        context.close()
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".npz", ".safetensors", ".zip"]
    (tmp_path / "snippet.py").write_text(code)
    done = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"test accuracy {accuracy} (")
