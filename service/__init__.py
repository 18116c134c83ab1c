"""What makes and keeps the app's runs, without Streamlit: the kinds of run (kinds)."""
