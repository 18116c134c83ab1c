"""ui.plain: text from a user or a file renders as exactly that text, with no markup, in CommonMark.

The oracle is markdown-it-py, an independent CommonMark renderer (with GitHub's tables and strikethrough);
Streamlit's own renderer (which also turns bare addresses into links) is checked in a real browser by
tests/test_browser_hostile.py.
"""
import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plain_text import as_shown

from ui.plain import MAX_CHARS, WORD_JOINER, for_chart, plain

markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py renders CommonMark independently")
RENDERER = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"])

HOSTILE = [
    "[Reset your password](http://evil.example/reset)",
    "![](http://evil.example/track.png)",
    '<img src="http://evil.example/t.png"> <script>alert(1)</script>',
    "**bold** _it_ ~~gone~~ `code` # not a heading",
    "&lt;b&gt; &amp; &#60;",
    "[a]: http://evil.example/ref\n[a]",
    "    indented: a code block if it led a line",
    "- a list\n1. another",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "back\\slash \\[escaped\\]",
    "name\u202egpj.exe",  # a right-to-left override, to spoof an extension
    "",
]
markdown_alphabet = st.sampled_from(list("[]()!<>*_`~#&;:/\\|-+.=\"' \n\t\u202e\u200bah0@$^{}") + ["http://", "www.",
                                                                                                   "&amp;", "<img "])
texts = st.text() | st.lists(markdown_alphabet, max_size=40).map("".join)


def rendered_text(markdown: str) -> str:
    """The HTML markdown-it makes of `markdown`, which must be one paragraph of text (or nothing)."""
    out = RENDERER.render(markdown).strip()
    if not out:
        return ""
    assert out.startswith("<p>") and out.endswith("</p>"), out
    inner = out[3:-4]
    assert "<" not in inner, f"markup in {out!r}"  # escaped text holds &lt;, never a tag
    return html.unescape(inner).replace(WORD_JOINER, "")


def visible(text: str) -> str:
    """What a browser shows of `text`: control and format characters gone, runs of spaces one."""
    return " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]", " ", text).split())


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_renders_as_itself(text):
    assert rendered_text(plain(text)) == visible(text)
    assert as_shown(plain(text)) == visible(text)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_any_text_renders_as_itself_without_markup(text):
    shown = rendered_text(plain(text))
    expected = " ".join("".join(" " if c.isspace() or not c.isprintable() else c for c in text).split())
    if len(expected) <= MAX_CHARS:
        assert shown == " ".join(shown.split())
        assert shown.replace(" ", "") == "".join(c for c in expected if c.isprintable()).replace(" ", "")
    else:
        assert len(shown) == MAX_CHARS and shown.endswith("…")


def test_bare_addresses_get_an_invisible_joiner_first():
    """GitHub's dialect links `www.`, `http(s):` and e-mail addresses found in text after escapes are undone;
    an address needs a space or punctuation before it, which the joiner is not."""
    escaped = plain("see www.evil.example, https://evil.example and me@evil.example")
    assert escaped.count(WORD_JOINER) == 3
    assert all(WORD_JOINER + start in escaped for start in ("www", "https", "\\@"))


def test_chart_text_shows_its_tags():
    assert for_chart('<a href="http://evil.example">x</a> & <b>') == \
        "&lt;a href=&quot;http://evil.example&quot;&gt;x&lt;/a&gt; &amp; &lt;b&gt;"
