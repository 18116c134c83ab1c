"""The project's Streamlit settings, on a real server in a real browser: the server refuses uploads larger
than an adapter can be, whatever the browser allows, and an uncaught exception shows the student no type,
message, traceback or path, while the server's log keeps them."""
import re
from pathlib import Path

import pytest
from browser_harness import click, open_app, streamlit_server

from lora_core.adapter_files import MAX_ADAPTER_BYTES

expect = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright").expect


@pytest.fixture(scope="module")
def limits_url(tmp_path_factory):
    pytest.importorskip("playwright", reason="the browser tests need Playwright (pip install playwright)")
    log = tmp_path_factory.mktemp("limits") / "streamlit.log"
    with streamlit_server(log=log, script="tests/apps/server_limits.py") as url:
        yield url, log


def upload_status(page, folder: Path, size: int) -> int:
    """The HTTP status of the server's answer to an upload of `size` bytes through the page's uploader. The
    browser reads the file from disk (a buffer of megabytes would first travel to it encoded, for seconds)."""
    path = folder / f"big-{size}.bin"
    with open(path, "wb") as f:
        f.truncate(size)  # zeros
    with page.expect_response(lambda r: "/_stcore/upload_file/" in r.url and r.request.method == "PUT",
                              timeout=60_000) as answer:
        page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(path)
    return answer.value.status


def test_the_server_refuses_uploads_larger_than_an_adapter(chromium, limits_url, tmp_path):
    url, _ = limits_url
    context = chromium.new_context()
    try:
        page = open_app(context, url)
        assert upload_status(page, tmp_path, MAX_ADAPTER_BYTES) < 300
        expect(page.get_by_text(f"received {MAX_ADAPTER_BYTES} bytes")).to_be_visible(timeout=60_000)
        page.reload()
        page.get_by_role("heading", level=1).first.wait_for(timeout=60_000)
        assert upload_status(page, tmp_path, MAX_ADAPTER_BYTES + 2**20) == 413  # beyond the request limit of 17 MiB
    finally:
        context.close()


def test_an_uncaught_exception_shows_no_details_and_is_logged(chromium, limits_url):
    url, log = limits_url
    context = chromium.new_context()
    try:
        page = open_app(context, url)
        click(page, page.get_by_role("button", name="Fail"))
        box = page.get_by_test_id("stException")
        expect(box).to_be_visible(timeout=30_000)
        text = box.inner_text()
        assert not any(leak in text for leak in ("secret", "RuntimeError", "Traceback", "/srv", ".py")), text
        logged = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text())  # the console log is coloured
        assert "RuntimeError: a detail for the server's log only: /srv/lora-lab/secret.py" in logged
    finally:
        context.close()
