"""LoRA Lab: `streamlit run app.py`. The frame: page setup, navigation and the sidebar every page shares."""
import streamlit as st

from ui import context, frame, server, state

st.set_page_config(page_title="LoRA Lab", page_icon="🧪", layout="wide")
server.setup()  # every run: its thread's float mode; once per server: torch threads, the sweep of idle sessions
state.init()
server.run_started()
try:
    pages = frame.navigation()
    frame.readable_captions()
    st.session_state.context = context.sidebar()
    context.warn_fallback(st.session_state.context)
    if note := st.session_state.pop(server.NOTE_KEY, None):
        st.info(note, icon=":material/cleaning_services:")
    st.session_state[context.FRAMED] = True
    pages.run()
finally:
    st.session_state.pop(context.FRAMED, None)
    server.run_finished()
