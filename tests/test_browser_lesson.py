"""A teacher's first lesson, end to end in real browsers: the teacher (a projector's 1280×720) trains the
notebook preset on a server whose public address is set; two students on phones open the shared link from
another machine's address (their browsers resolve the school's name to the server); one downloads the files
and runs the page's code as written, another uploads that adapter. No step ends in an error or a dead end."""
import re
import subprocess
import sys

from browser_harness import CHROMIUM, CHROMIUM_ARGS, RUN_MS, free_port, go, metric, open_app, press, problems
from browser_harness import streamlit_server as server

PUBLIC_NAME = "lab.school.test"  # the name students type; only their browsers know it is this machine


def test_a_first_lesson_has_no_dead_end(chromium, tmp_path_factory):
    from playwright.sync_api import expect

    root = tmp_path_factory.mktemp("lesson")
    port = free_port()
    env = {"LORA_LAB_DATA": str(root / "data"), "LORA_LAB_CACHE": str(root / "cache"),
           "LORA_LAB_PUBLIC_URL": f"http://{PUBLIC_NAME}:{port}"}
    with server(env=env, log=root / "streamlit.log", port=port) as url:
        teacher = chromium.new_context(viewport={"width": 1280, "height": 720})
        try:
            tab = open_app(teacher, url, "baseline?v=2&preset=the+notebook")
            press(tab, "Train baseline", 240_000)
            expect(metric(tab, "Steps trained")).to_have_text("500", timeout=RUN_MS)
            go(tab, "LoRA finetuning", "LoRA finetuning")
            press(tab, "Train LoRA", 240_000)
            accuracy = metric(tab, "Accuracy after LoRA")
            expect(accuracy).to_have_text(re.compile(r"\d+\.\d\d%"), timeout=RUN_MS)
            shown = accuracy.inner_text().strip()
            tab.get_by_text("Share this experiment").click()
            link = tab.get_by_test_id("stSidebar").get_by_test_id("stCode").first.locator("code").text_content()
            assert link.startswith(f"http://{PUBLIC_NAME}:{port}/lora?"), link
            assert not tab.get_by_text("opens only here").count()  # the public address needs no warning
            assert not problems(tab)
        finally:
            teacher.close()
        _students(chromium.browser_type, link, shown, tmp_path_factory.mktemp("student"))


def _students(browser_type, link: str, shown: str, folder) -> None:
    """Two phones on another machine's address: each sees the teacher's run at once; one downloads the files
    and runs the code as shown, the other uploads the adapter the first downloaded."""
    from playwright.sync_api import expect

    browser = browser_type.launch(  # another machine: the school's name resolves to the server
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {PUBLIC_NAME} 127.0.0.1"])
    try:
        phones = [browser.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)
                  for _ in range(2)]
        tabs = []
        for phone in phones:
            tab = phone.new_page()
            tab.goto(link, timeout=120_000)
            expect(metric(tab, "Accuracy after LoRA")).to_have_text(shown, timeout=120_000)  # stored: no training
            assert tab.get_by_role("button", name="Train LoRA", exact=True).is_disabled()
            tabs.append(tab)
        for button in ("Download for PEFT (.zip)", "Download the baseline (.safetensors)",
                       "Download the test images (.npz)"):
            with tabs[0].expect_download() as download:
                tabs[0].get_by_role("button", name=button).click()
            download.value.save_as(folder / download.value.suggested_filename)
        box = tabs[0].get_by_test_id("stExpander").filter(has_text="Use them in Python: copy as code")
        box.get_by_text("Use them in Python: copy as code").click()
        code = box.get_by_test_id("stCode").locator("code").text_content()
        (folder / "score.py").write_text(code)
        done = subprocess.run([sys.executable, "score.py"], cwd=folder, capture_output=True, text=True,
                              timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(folder)})
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"test accuracy {shown} (")
        zip_file, = folder.glob("*-peft.zip")
        tabs[1].get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(zip_file))
        expect(tabs[1].get_by_text("is attached to a copy of your baseline")).to_be_visible(timeout=RUN_MS)
        expect(metric(tabs[1], "Accuracy after LoRA")).to_have_text(shown, timeout=RUN_MS)
        for tab in tabs:
            assert not problems(tab)
    finally:
        browser.close()
