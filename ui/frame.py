"""The app's pages, declared once: the frame uses them, and so does a page that ran without the frame."""
import streamlit as st

from ui import classroom, operator

# Captions carry the charts' text alternatives and their key numbers, so they must read from the back of a
# classroom: 16 px, the size of the body text and of the charts' own labels (Streamlit draws them at 14 px),
# and darker than Streamlit's faded grey (about 8:1 against white instead of 4:1).
READABLE_CAPTIONS = """<style>
[data-testid="stCaptionContainer"] { font-size: 1rem; color: rgba(49, 51, 63, 0.85); }
</style>"""


def readable_captions() -> None:
    st.html(READABLE_CAPTIONS)


def navigation():
    classroom.remember_join_code()
    # only where the server has a token; listed only for the session that signed in, reachable at /operator
    extra = [st.Page("app_pages/operator.py", title="Operator", icon=":material/admin_panel_settings:",
                     visibility="visible" if operator.allowed() else "hidden")] if operator.enabled() else []
    return st.navigation([
        st.Page("app_pages/home.py", title="What is LoRA?", icon=":material/home:", default=True),
        st.Page("app_pages/notebook.py", title="The notebook", icon=":material/menu_book:"),
        st.Page("app_pages/svd.py", title="SVD playground", icon=":material/grid_on:"),
        st.Page("app_pages/baseline.py", title="Baseline training", icon=":material/fitness_center:"),
        st.Page("app_pages/lora.py", title="LoRA finetuning", icon=":material/tune:"),
        st.Page("app_pages/ranks.py", title="Rank comparison", icon=":material/bar_chart:"),
        st.Page("app_pages/inspector.py", title="ΔW inspector", icon=":material/biotech:"),
        st.Page("app_pages/oracle.py", title="Rank oracle", icon=":material/insights:"),
        st.Page("app_pages/intruders.py", title="Intruder dimensions", icon=":material/crisis_alert:"),
        st.Page("app_pages/inits.py", title="Initialisation gallery", icon=":material/eco:"),
        st.Page("app_pages/scaling.py", title="Scaling explorer", icon=":material/straighten:"),
        st.Page("app_pages/frontier.py", title="Learn/forget frontier", icon=":material/balance:"),
        st.Page("app_pages/combine.py", title="Combine adapters", icon=":material/merge:"),
        st.Page("app_pages/class.py", title="Class", icon=":material/groups:"),
    ] + extra, expanded=True)  # every page listed: none behind a "View more"
