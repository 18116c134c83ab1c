import streamlit as st

from service import jobs, limits
from ui import operator

st.title("Operator: trainings on this server")
if not operator.allowed():
    with st.form("op_sign_in"):
        token = st.text_input("Operator's token", type="password", key="op_token",
                              help="$LORA_LAB_OPERATOR_TOKEN of this server.")
        signed = st.form_submit_button("Sign in")
    if signed:
        if (refused := operator.sign_in(token)) is None:
            st.rerun()
        st.error(refused)
    st.stop()
st.markdown(f"{jobs.SLOTS.limit} training(s) run at once; the others wait in the queue. "
            + limits.caps_note())
st.button("Refresh", key="op_refresh", icon=":material/refresh:")
found = operator.rows()
if not found:
    st.info("No training is running or queued.")
else:
    st.dataframe(found, hide_index=True)
for row in found:
    label, button = st.columns([4, 1])
    label.text(f"{row['job']}: {row['what']}, {row['state']}, step {row['step']:,} of {row['of']:,}")
    if button.button("Stop", key=f"op_stop_{row['job']}", disabled=row["state"] == "stopping"):
        operator.stop(row["job"])
        st.rerun()

st.subheader("Stored runs")
kept = operator.stored()
if not kept:
    st.info("No run is stored on this server's disk.")
    st.stop()
st.dataframe(kept, hide_index=True)
holds = {row["run"]: row["holds"] for row in kept}
choice = st.selectbox("Run to delete", list(holds), key="op_delete_run",
                      format_func=lambda key: f"{key[:12]}… {holds[key]}",
                      help="Deleted from this server's memory and disk: whoever asks for it next makes it again.")
if st.button("Delete this run", key="op_delete", type="primary"):
    operator.delete(choice)
    st.rerun()
