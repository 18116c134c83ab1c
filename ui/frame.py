"""The app's pages, declared once: the frame uses them, and so does a page that ran without the frame."""
import streamlit as st

from ui import operator


def navigation():
    extra = [st.Page("pages/operator.py", title="Operator", icon=":material/admin_panel_settings:")] \
        if operator.allowed() else []
    return st.navigation([
        st.Page("pages/home.py", title="What is LoRA?", icon=":material/home:", default=True),
        st.Page("pages/svd.py", title="SVD playground", icon=":material/grid_on:"),
        st.Page("pages/baseline.py", title="Baseline training", icon=":material/fitness_center:"),
        st.Page("pages/lora.py", title="LoRA finetuning", icon=":material/tune:"),
        st.Page("pages/ranks.py", title="Rank comparison", icon=":material/bar_chart:"),
        st.Page("pages/inspector.py", title="ΔW inspector", icon=":material/biotech:"),
        st.Page("pages/oracle.py", title="Rank oracle", icon=":material/insights:"),
        st.Page("pages/inits.py", title="Initialisation gallery", icon=":material/eco:"),
        st.Page("pages/scaling.py", title="Scaling explorer", icon=":material/straighten:"),
        st.Page("pages/frontier.py", title="Learn/forget frontier", icon=":material/balance:"),
    ] + extra)
