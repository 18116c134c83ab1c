"""A page for tests/test_server_limits.py: what the project's Streamlit settings do, seen in a browser."""
import streamlit as st

st.title("Server limits")
# The browser is told 200 MB here, so only the server's own limit (.streamlit/config.toml) can refuse a file.
file = st.file_uploader("Any file", max_upload_size=200, key="any")
if file is not None:
    st.write(f"received {file.size} bytes")
if st.button("Fail"):
    raise RuntimeError("a detail for the server's log only: /srv/lora-lab/secret.py")
