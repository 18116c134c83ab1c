"""Text from a user or a file, shown as plain text: never Markdown, never HTML.

Streamlit draws the text of st.markdown, alerts, captions, headers and widget labels as Markdown (GitHub's
dialect, plus its own :color[…], :material/…:, emoji shortcodes and $math$). A file named
`[Reset your password](http://…)` or metadata holding `![](http://…/track.png)` would become a link, or an
image the browser fetches. `plain` backslash-escapes every ASCII punctuation character — CommonMark draws
each escaped one as itself — so no link, image, emphasis, HTML tag, entity, bare address or Streamlit
directive can begin; control and format characters (newlines, bidirectional overrides) become spaces, so
the text cannot start a block or reorder itself. Escapes do not stop GitHub's bare-address links, which are
found in the text after escapes are undone: an invisible WORD JOINER before `http`, `www.` and `@` leaves no
address where one may start. Plotly draws its own subset of HTML in chart text: for that, `for_chart`.
"""
import html
import re
import unicodedata

_ASCII_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_ADDRESS_START = re.compile(r"(https?:|www\.|@)", re.IGNORECASE)
WORD_JOINER = "\N{WORD JOINER}"  # invisible, and neither a space nor punctuation: no address starts after it
MAX_CHARS = 300  # longer text from outside is cut: a page shows a name, not a file's worth of it


def _visible(text) -> str:
    """One line: control and format characters become spaces, runs of spaces one (as a browser shows them;
    four leading spaces would start a code block)."""
    text = " ".join("".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in str(text)).split())
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 1] + "…"


def plain(text) -> str:
    """`text` escaped for any Streamlit element that renders Markdown: it shows exactly as written."""
    text = _ADDRESS_START.sub(WORD_JOINER + r"\1", _visible(text))
    return _ASCII_PUNCTUATION.sub(r"\\\1", text)


def for_chart(text) -> str:
    """`text` escaped for a plotly title, legend or label: its tags (<a href=…>, <b>) show as written."""
    return html.escape(_visible(text))
