"""The share link students can open: the visitor's address or $LORA_LAB_PUBLIC_URL, and a warning when the
link would open only on the teacher's machine."""
import pytest
from conftest import open_session

from service import share_link

QUERY = {"v": "2", "seed": "7", "targets": "linear1,linear2"}


@pytest.mark.parametrize("browser_url, local_only", [
    ("http://localhost:8501/lora", True),
    ("http://127.0.0.1:8501/", True),
    ("http://127.8.0.3:8501/ranks", True),
    ("http://[::1]:8501/lora", True),
    ("http://0.0.0.0:8501/lora", True),
    ("http://lab.localhost:8501/lora", True),
    ("http://192.168.1.20:8501/lora", False),
    ("https://lab.school.example/lora", False),
])
def test_a_link_on_the_visitors_address_says_whether_it_opens_only_here(browser_url, local_only):
    url, only_here = share_link.link(browser_url, QUERY, public_url="")
    assert url == browser_url + "?v=2&seed=7&targets=linear1,linear2"
    assert only_here is local_only


def test_the_public_address_replaces_the_visitors_and_keeps_the_page():
    url, only_here = share_link.link("http://localhost:8501/lora", QUERY, public_url="https://school.example/lab/")
    assert (url, only_here) == ("https://school.example/lab/lora?v=2&seed=7&targets=linear1,linear2", False)
    url, _ = share_link.link("http://localhost:8501/", QUERY, public_url="http://10.0.0.5:8501")
    assert url == "http://10.0.0.5:8501/?v=2&seed=7&targets=linear1,linear2"


def test_the_warning_names_no_loopback_address_as_the_way_out():
    text = share_link.local_only_warning(8501)
    assert share_link.PUBLIC_URL_ENV in text and "How a class connects" in text
    assert "127.0.0.1" not in text and "localhost" not in text
    assert all(not share_link._loopback(a) for a in share_link.network_addresses())


def test_the_sidebar_shows_the_public_address_when_the_operator_sets_it(monkeypatch):
    monkeypatch.setenv(share_link.PUBLIC_URL_ENV, "http://10.20.30.40:8501")
    at = open_session()
    link, = [c.value for c in at.sidebar.code if c.value.startswith("http")]
    assert link.startswith("http://10.20.30.40:8501/?v=")
    assert not [w for w in at.sidebar.warning if share_link.PUBLIC_URL_ENV in w.value]
