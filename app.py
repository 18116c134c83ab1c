"""LoRA Lab: `streamlit run app.py`. The frame: page setup, navigation and the sidebar every page shares."""
import streamlit as st

from ui import context, frame, state

st.set_page_config(page_title="LoRA Lab", page_icon="🧪", layout="wide")
state.init()
pages = frame.navigation()
st.session_state.context = context.sidebar()
context.warn_fallback(st.session_state.context)
pages.run()
