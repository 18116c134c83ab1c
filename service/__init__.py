"""What makes the app's runs, without Streamlit: one call, runs.obtain, gives a run stored, running (to
follow), made by another server, refused, or started once. Its parts: the kinds of run (kinds), the server's
settings from its environment (environment), the limits on one training and one person (limits), the jobs
that run trainings in background threads under the training slots (jobs), and the executor they run on
(executors)."""
