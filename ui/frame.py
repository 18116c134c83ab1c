"""The app's pages, declared once: the frame uses them, and so does a page that ran without the frame."""
import streamlit as st


def navigation():
    return st.navigation([
        st.Page("pages/home.py", title="What is LoRA?", icon="🏠", default=True),
        st.Page("pages/svd.py", title="SVD playground", icon="🧮"),
        st.Page("pages/baseline.py", title="Baseline training", icon="🏋️"),
        st.Page("pages/lora.py", title="LoRA finetuning", icon="🎯"),
        st.Page("pages/ranks.py", title="Rank comparison", icon="📊"),
        st.Page("pages/inspector.py", title="ΔW inspector", icon="🔬"),
        st.Page("pages/oracle.py", title="Rank oracle", icon="🔮"),
        st.Page("pages/inits.py", title="Initialisation gallery", icon="🌱"),
        st.Page("pages/scaling.py", title="Scaling explorer", icon="📏"),
        st.Page("pages/frontier.py", title="Learn/forget frontier", icon="⚖️"),
    ])
