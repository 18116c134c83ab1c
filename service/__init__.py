"""What makes the app's runs, without Streamlit: the kinds of run (kinds), the server's settings from its
environment (environment), and the executor its trainings run on (executors)."""
