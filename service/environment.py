"""The server's settings from its environment: one reader, one policy. A value that is not a valid number
is named in the log with the default used instead: a mistyped setting never stops the server, and never
shows a user a traceback."""
import logging
import os

log = logging.getLogger("lora_lab")  # Streamlit's logger of that name (ui.server) once the app runs


def number(name: str, default, kind=int, low=1):
    """The environment variable `name` as a `kind` ≥ `low`, or `default` when it is unset or not one."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
        if not low <= value < float("inf"):  # also refuses nan
            raise ValueError
        return value
    except ValueError:
        what = "an integer" if kind is int else "a number"
        log.warning("%s=%r is not %s ≥ %s; using %s", name, text, what, low, default)
        return default


def text(name: str) -> str:
    """The environment variable `name`, stripped; '' when unset."""
    return os.environ.get(name, "").strip()
