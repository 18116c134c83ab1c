"""The sidebar every page shares: device, dataset, seed; and the datasets, loaded once per server."""
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

import lora_core as lc
from ui import experiment, server

DATA_ENV = "LORA_LAB_DATA"  # where full MNIST / Fashion-MNIST live (or get downloaded to)
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "data"
RETRY_AFTER_S = 60  # a dataset that could not be had is not tried again on every rerun
DATASET_LABELS = {
    "mnist-sample": "MNIST sample (bundled, offline)",
    "mnist": "MNIST (full, 60,000 training images)",
    "fashion-mnist": "Fashion-MNIST (clothing, 60,000 training images)",
}


@dataclass(frozen=True)
class Context:
    data: lc.Dataset
    device: str
    seed: int
    fallback: tuple[str, str] | None  # (the dataset chosen, why it was replaced by the bundled sample), if it was


def data_root() -> Path:
    return Path(os.environ.get(DATA_ENV) or DEFAULT_ROOT)


@st.cache_resource(show_spinner="Loading the dataset onto the device…")
def _dataset(name: str, device: str, root: str) -> lc.Dataset:
    """Shared read-only by every session: the tensors are never written to."""
    return lc.load_dataset(name, root=root, device=device)


@st.cache_resource
def _failures() -> dict:
    return {"lock": threading.Lock(), "by_key": {}}  # (name, device, root) → (time, message)


def load(name: str, device: str) -> tuple[lc.Dataset, str | None]:
    """The dataset, or the bundled sample and the reason when `name` cannot be had."""
    root = str(data_root())
    failures, key = _failures(), (name, device, root)
    with failures["lock"]:
        failed = failures["by_key"].get(key)
    if failed and time.monotonic() - failed[0] < RETRY_AFTER_S:
        return _dataset("mnist-sample", device, root), failed[1]
    try:
        return _dataset(name, device, root), None
    except Exception as err:  # DatasetUnavailable or anything else: never a traceback, always the sample
        # the page says why in words; the details (paths, the network's error) are the operator's, in the log
        server.log.warning("Dataset %s unavailable, the bundled sample used instead: %s", name, err)
        message = err.reason if isinstance(err, lc.DatasetUnavailable) else "It could not be loaded on this server."
        with failures["lock"]:
            failures["by_key"][key] = (time.monotonic(), message)
        return _dataset("mnist-sample", device, root), message


def sidebar() -> Context:
    """Draw the shared controls and return what every page works with."""
    exp = experiment.from_link()  # a shared link's settings, before the widgets that show them
    with st.sidebar:
        st.header("Settings")
        device = st.selectbox(
            "Device", lc.available_devices(), key="device",
            help="Where tensors live and models train. cuda (NVIDIA GPU) and mps (Apple GPU) appear when "
                 "this machine has them; cpu always works.")
        lock = experiment.class_lock("dataset")
        name = st.session_state["dataset"] if lock == experiment.HIDDEN else st.selectbox(
            "Dataset", lc.DATASETS, key="dataset", format_func=DATASET_LABELS.get, disabled=lock is not None,
            help="The bundled MNIST sample works offline. Full MNIST and Fashion-MNIST are read from "
                 f"the data folder (${DATA_ENV}, default ./data) or downloaded when online."
                 + (" " + experiment.LOCKED_NOTE if lock else ""))
        data, fallback = load(name, device)
        if fallback:  # the Dataset box, the experiment and the URL say what is used: the sample, drawn anew
            st.session_state.dataset_fallback = (name, fallback)
            experiment.set_later("dataset", "mnist-sample")
            experiment.replace_current(dataset="mnist-sample")
            st.rerun()
        st.caption(data.source)
        seed = experiment.widget(
            st, "seed", step=1,
            help="Seeds the initial weights, the order of the training images, the adapter's random A "
                 "and the SVD playground's matrices. The same settings give the same numbers on the same "
                 "server (its runs are stored and shared); another CPU or torch thread count rounds floats "
                 "differently, so elsewhere the last digits may differ.")
        experiment.sidebar(exp)
    return Context(data, device, int(seed), st.session_state.pop("dataset_fallback", None))


def warn_fallback(ctx: Context) -> None:
    """Say so, at the top of the page, when the chosen dataset was replaced by the bundled sample."""
    if ctx.fallback:
        chosen, why = ctx.fallback
        st.warning(f"**{DATASET_LABELS[chosen]} is not available, so the bundled MNIST sample is used instead** "
                   f"(the Dataset box and the link say so too). {why} The server's log has the details.",
                   icon=":material/warning:")


def current() -> Context:
    """The context the frame drew for this run (app.py runs the frame around every page)."""
    return st.session_state["context"]
