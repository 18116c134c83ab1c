"""The operator's page in a real browser: its token is typed into a form and never reaches an address. No URL
of the tab's history carries it, none of them opens the operator's view in another browser, and a link that
carries the token (an old `?operator=…`) grants nothing.

The page exists only on a server with a token: this module starts its own (the shared one has none).
"""
import secrets

import pytest
from browser_harness import click, go, open_app, rerun, streamlit_server

expect = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright").expect
pytestmark = pytest.mark.browser

TOKEN = secrets.token_urlsafe(24)
OPERATOR_VIEW = "Stored runs"  # a heading only the signed-in operator's page draws
OPERATOR_TITLE = "Operator: trainings on this server"


@pytest.fixture(scope="module")
def operator_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("operator")
    env = {"LORA_LAB_DATA": str(root / "data"), "LORA_LAB_CACHE": str(root / "checkpoints"),
           "LORA_LAB_OPERATOR_TOKEN": TOKEN}
    with streamlit_server(env=env, log=root / "streamlit.log") as url:
        yield url


def new_tab(chromium, url: str, path: str):
    return open_app(chromium.new_context(viewport={"width": 1400, "height": 900}), url, path)


def operator_link(page):
    return page.get_by_test_id("stSidebarNav").get_by_role("link", name="Operator")


def assert_no_operator_view(page) -> None:
    """The tab shows nothing of the operator's: no view, no sidebar link; /operator asks for the token."""
    assert not page.get_by_role("heading", name=OPERATOR_VIEW).count()
    assert not operator_link(page).count()
    if page.url.split("?")[0].endswith("/operator"):
        expect(page.get_by_label("Operator's token", exact=True)).to_be_visible(timeout=30_000)


def test_the_token_typed_into_the_form_never_reaches_an_address(chromium, operator_url):
    page = new_tab(chromium, operator_url, "operator")
    seen = [page.url]
    page.on("framenavigated", lambda frame: frame == page.main_frame and seen.append(frame.url))
    page.get_by_label("Operator's token", exact=True).fill(TOKEN)
    click(page, page.get_by_role("button", name="Sign in"))
    expect(page.get_by_role("heading", name=OPERATOR_VIEW)).to_be_visible()
    expect(operator_link(page)).to_be_visible()  # listed for this session only
    go(page, "Baseline training", "Baseline training")
    go(page, "Operator", OPERATOR_TITLE)
    for step in (page.go_back, page.go_back, page.go_forward, page.go_forward):
        with rerun(page):  # each step of the history runs the page it lands on
            step()
        seen.append(page.url)
    assert len(set(seen)) >= 2 and all(TOKEN not in url for url in seen), seen
    # Which page a step leaves on screen is Streamlit's (under load its history handling can keep the last
    # page under the next address); what this test owns is that the session stays signed in.
    if page.get_by_role("heading", level=1).inner_text() != OPERATOR_TITLE:
        go(page, "Operator", OPERATOR_TITLE)
    expect(page.get_by_role("heading", name=OPERATOR_VIEW)).to_be_visible()

    for url in sorted(set(seen)):  # another browser opening any of them: no operator
        other = new_tab(chromium, operator_url, url.removeprefix(f"{operator_url}/"))
        assert_no_operator_view(other)
        other.context.close()
    page.context.close()


@pytest.mark.parametrize("path", [f"?operator={TOKEN}", f"operator?operator={TOKEN}"],
                         ids=["home", "operator page"])  # ids without the token: the same in every process
def test_a_token_in_a_link_grants_nothing_and_leaves_the_address(chromium, operator_url, path):
    page = new_tab(chromium, operator_url, path)
    assert_no_operator_view(page)
    assert TOKEN not in page.url  # taken out of the address: it does not stay in the history
    page.goto(f"{operator_url}/operator")
    expect(page.get_by_label("Operator's token", exact=True)).to_be_visible(timeout=60_000)
    assert_no_operator_view(page)
    page.context.close()
