"""The browser tests' helpers. They live in benchmarks.browser, which the UI benchmark and
scripts/screenshots.py use too."""
from benchmarks.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RUN_MS,
    chart_when,
    chromium,
    click,
    free_port,
    go,
    metric,
    open_app,
    press,
    problems,
    rerun,
    set_number,
    streamlit_server,
    wait_idle,
)

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "RUN_MS", "chart_when", "chromium", "click", "free_port", "go", "metric",
           "open_app", "press", "problems", "rerun", "set_number", "streamlit_server", "wait_idle"]
