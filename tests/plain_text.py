"""What a reader sees of Markdown that ui.plain.plain wrote: its escapes undone, its word joiners dropped."""
import re

from ui.plain import WORD_JOINER


def as_shown(markdown: str) -> str:
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace(WORD_JOINER, "")
