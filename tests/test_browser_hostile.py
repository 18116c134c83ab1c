"""Hostile text in a real browser: an adapter's file name and metadata, and a link's query values, are
shown as plain text. No link or image made from them reaches the page, and the browser requests nothing
from an address they name (every request of the tab is recorded)."""
from urllib.parse import urlsplit

import pytest
import torch
from browser_harness import free_port, go, metric, open_app, press, rerun, set_number
from safetensors.torch import save as save_safetensors

import lora_core as lc
from lora_core.adapter_files import adapter_bytes

expect = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright").expect

MARK = f"127.0.0.1:{free_port()}"  # an address nothing answers on: a request to it would still be seen
NAMED = (MARK, "evil.example")
NAME = (f"[Reset your password](http://{MARK}/reset) ![t](http://{MARK}/track.png) "
        f"<img src=http://{MARK}/t2.png> **loud** www.evil.example me@evil.example.safetensors")
FORMAT = f"![m](http://{MARK}/m.png)"
QUERY = f"?preset=[p](http://{MARK}/p)&rank=![q](http://{MARK}/q.png)"
BASELINE_STEPS = 30

LINKS = """names => [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]
    .filter(a => /(^|:)(href|src|srcset|action|formaction|poster|data)$/.test(a.name))
    .filter(a => names.some(n => a.value.includes(n)))
    .map(a => `${e.tagName} ${a.name}=${a.value} in ${e.parentElement.outerHTML.slice(0, 300)}`))"""


def adapter_named_for_the_default_baseline() -> bytes:
    model = lc.add_lora(lc.MLP(), rank=1, targets=("linear3",))
    with torch.no_grad():
        lc.lora_of(model.linear3).lora_B.fill_(0.01)
    return adapter_bytes(model)


def shown(locator) -> str:
    return locator.inner_text().replace("\N{WORD JOINER}", "")


def test_uploaded_names_metadata_and_link_values_are_plain_text(chromium, streamlit_url):
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    requests = []
    context.on("request", lambda request: requests.append(request.url))
    try:
        page = open_app(context, streamlit_url, "baseline")
        set_number(page, "Step limit (0 = none)", BASELINE_STEPS)
        press(page, "Train baseline", 180_000)
        expect(metric(page, "Steps trained")).to_have_text(str(BASELINE_STEPS), timeout=120_000)
        go(page, "LoRA finetuning", "LoRA finetuning")

        uploader = page.get_by_test_id("stFileUploaderDropzoneInput")
        with rerun(page, 120_000):
            uploader.set_input_files({"name": NAME, "mimeType": "application/octet-stream",
                                      "buffer": adapter_named_for_the_default_baseline()})
        success = page.get_by_test_id("stAlertContentSuccess")
        expect(success).to_be_visible(timeout=60_000)
        assert f"{NAME} is attached to a copy of your baseline as rank 1 · {NAME}" in shown(success)
        heading = page.get_by_role("heading", name="Current adapter")
        assert shown(heading).strip() == f"Current adapter: rank 1 · {NAME}"
        assert f"Uploaded {NAME}: rank 1" in shown(page.get_by_test_id("stCaptionContainer").filter(
            has_text="Uploaded").first)
        assert page.evaluate(LINKS, list(NAMED)) == []

        with rerun(page, 120_000):
            uploader.set_input_files({"name": "meta.safetensors", "mimeType": "application/octet-stream",
                                      "buffer": save_safetensors({"w": torch.zeros(2)}, metadata={"format": FORMAT})})
        error = page.get_by_test_id("stAlertContentError")
        expect(error).to_be_visible(timeout=60_000)
        assert f"not a LoRA Lab adapter (format '{FORMAT}')" in shown(error)
        go(page, "ΔW inspector", "ΔW inspector")
        expect(page.get_by_text("Inspecting the adapter from the LoRA finetuning page")).to_be_visible(
            timeout=60_000)
        assert f"Uploaded {NAME}" in shown(page.get_by_test_id("stCaptionContainer").filter(
            has_text="Inspecting the adapter").first)

        linked = open_app(context, streamlit_url, QUERY)
        warning = linked.get_by_test_id("stAlert").filter(has_text="not all usable")
        expect(warning).to_be_visible(timeout=60_000)
        values = linked.get_by_test_id("stMain")  # the link's values, each on its own line below the warning
        assert f"preset='[p](http://{MARK}/p)' is not one of" in shown(values)
        assert f"rank='![q](http://{MARK}/q.png)' is not" in shown(values)

        for tab in (page, linked):
            assert tab.evaluate(LINKS, list(NAMED)) == []
            assert not tab.locator("img[src*='track'], img[src*='.png']").count()
        linked.wait_for_timeout(1000)  # an image would be requested as soon as it was drawn
        hosts = [urlsplit(url).netloc.rsplit("@", 1)[-1] for url in requests]
        assert [h for h in hosts if any(h == n or h.endswith("." + n) for n in NAMED)] == []
        assert any(MARK in url for url in requests)  # the query's own request: the record does see them
    finally:
        context.close()
