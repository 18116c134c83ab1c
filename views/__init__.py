"""Figures and tables drawn from typed results (plotly, pandas); no Streamlit: ui/ and app_pages/ show them."""
