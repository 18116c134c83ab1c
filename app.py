"""LoRA Lab: `streamlit run app.py`. The frame: page setup, navigation and the sidebar every page shares."""
import streamlit as st

from ui import context, frame, server, state

st.set_page_config(page_title="LoRA Lab", page_icon="🧪", layout="wide")
server.setup()  # every run: its thread's float mode; once per server: torch threads, the sweep of idle sessions
state.init()
session_id = server.run_started()
try:
    pages = frame.navigation()
    frame.readable_captions()
    st.session_state.context = context.sidebar()
    context.warn_fallback(st.session_state.context)
    if note := st.session_state.pop(server.NOTE_KEY, None):
        st.info(note, icon=":material/cleaning_services:")
    pages.run()
finally:  # no Streamlit call here: after st.stop() or the header's Stop, each one raises again
    server.run_finished(session_id)
