"""The browser tests' helpers. They live in benchmarks.browser, which the UI benchmark uses too."""
from benchmarks.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    FIRST_RUN_MS,
    RUN_MS,
    RunCounter,
    chart_when,
    charts,
    chromium,
    click,
    free_port,
    full_page_screenshot,
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

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "FIRST_RUN_MS", "RUN_MS", "RunCounter", "chart_when", "charts", "chromium",
           "click", "free_port", "full_page_screenshot", "go", "metric", "open_app", "press", "problems", "rerun",
           "set_number", "streamlit_server", "wait_idle"]
