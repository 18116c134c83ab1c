"""A views figure drawn on the page."""
import plotly.graph_objects as go
import streamlit as st

# app_pages/lora.py and ui.progress still take these from here
from views.figures import before_after, loss_curve, merge_precision  # noqa: F401


def show(fig: go.Figure, key: str | None = None, caption: str | None = None) -> None:
    """Draw a styled figure with its own template rather than Streamlit's theme, and under it a one-line
    caption saying what it shows and its key numbers: the chart's text alternative."""
    st.plotly_chart(fig, theme=None, key=key, width="stretch")
    if caption:
        st.caption(caption)
