import streamlit as st

from ui import fair, jobs, operator

st.title("Operator: trainings on this server")
st.markdown(f"{jobs.SLOTS.limit} training(s) run at once; the others wait in the queue. "
            + fair.caps_note())
st.button("Refresh", key="op_refresh", icon=":material/refresh:")
found = operator.rows()
if not found:
    st.info("No training is running or queued.")
    st.stop()
st.dataframe(found, hide_index=True)
for row in found:
    label, button = st.columns([4, 1])
    label.text(f"{row['job']}: {row['what']}, {row['state']}, step {row['step']:,} of {row['of']:,}")
    if button.button("Stop", key=f"op_stop_{row['job']}", disabled=row["state"] == "stopping"):
        operator.stop(row["job"])
        st.rerun()
