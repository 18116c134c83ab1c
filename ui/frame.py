"""The app's pages, declared once, and the parts of the frame around every page (app.py)."""
import streamlit as st

from ui import classroom, operator

# Captions carry the charts' text alternatives and their key numbers, so they must read from the back of a
# classroom: 16 px, the size of the body text and of the charts' own labels (Streamlit draws them at 14 px),
# and darker than Streamlit's faded grey (about 8:1 against white instead of 4:1).
READABLE_CAPTIONS = """<style>
[data-testid="stCaptionContainer"] { font-size: 1rem; color: rgba(49, 51, 63, 0.85); }
</style>"""

PAGES = (  # its file in app_pages/, its title, its Material icon; home is the default page
    ("home", "What is LoRA?", "home"),
    ("notebook", "The notebook", "menu_book"),
    ("svd", "SVD playground", "grid_on"),
    ("baseline", "Baseline training", "fitness_center"),
    ("lora", "LoRA finetuning", "tune"),
    ("ranks", "Rank comparison", "bar_chart"),
    ("inspector", "ΔW inspector", "biotech"),
    ("oracle", "Rank oracle", "insights"),
    ("intruders", "Intruder dimensions", "crisis_alert"),
    ("inits", "Initialisation gallery", "eco"),
    ("scaling", "Scaling explorer", "straighten"),
    ("frontier", "Learn/forget frontier", "balance"),
    ("combine", "Combine adapters", "merge"),
    ("class", "Class", "groups"),
)


def readable_captions() -> None:
    st.html(READABLE_CAPTIONS)


def navigation():
    classroom.remember_join_code()
    # only where the server has a token; listed only for the session that signed in, reachable at /operator
    extra = [st.Page("app_pages/operator.py", title="Operator", icon=":material/admin_panel_settings:",
                     visibility="visible" if operator.allowed() else "hidden")] if operator.enabled() else []
    pages = [st.Page(f"app_pages/{name}.py", title=title, icon=f":material/{icon}:", default=name == "home")
             for name, title, icon in PAGES]
    return st.navigation(pages + extra, expanded=True)  # every page listed: none behind a "View more"
