"""LoRA Lab: `streamlit run app.py`. The frame: page setup, navigation and the sidebar every page shares."""
import streamlit as st

from ui import context, state

st.set_page_config(page_title="LoRA Lab", page_icon="🧪", layout="wide")
state.init()
st.session_state.context = context.sidebar()

pages = st.navigation([
    st.Page("pages/home.py", title="What is LoRA?", icon="🏠", default=True),
    st.Page("pages/svd.py", title="SVD playground", icon="🧮"),
    st.Page("pages/baseline.py", title="Baseline training", icon="🏋️"),
    st.Page("pages/lora.py", title="LoRA finetuning", icon="🎯"),
    st.Page("pages/ranks.py", title="Rank comparison", icon="📊"),
])
context.warn_fallback(st.session_state.context)
pages.run()
