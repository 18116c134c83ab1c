"""Figures and tables drawn from typed results (plotly, pandas); no Streamlit: ui/ and pages/ show them."""
