"""Uploaded adapters kept on the server, so that a reload brings them back to their uploader.

An upload is private to the browser that uploaded it (or, where the browser cannot be told, to its session):
the address bar names it by a random key of 128 bits that says nothing of the file, and another browser that
opens such a link gets nothing until the uploader switches on "Share with the link"; then the link carries
the right to open it. Each upload is kept as its own file, as uploaded (float16 stays float16, the file is
read and checked again when it comes back), for UPLOAD_TTL_S; a person keeps at most PER_PERSON uploads
and the server UPLOADS_IN_ALL, the oldest going first, and every upload keeps the run folder under its bound.
"""
import secrets
import threading
import time
from collections import OrderedDict

import streamlit as st
import torch

import lora_core as lc
from lora_core.adapter_zips import read_upload
from lora_core.checkpoints import tidy
from service import environment, runs
from ui import server

UPLOAD_PREFIX = "upload-"
URL_FIELD = "uploads"  # the address bar's list of this session's uploads
UPLOADS_KEY = "lora_uploads"  # this session's uploads, by the store's key: the URL's `uploads`
PENDING_KEY = "lora_uploads_pending"  # named by the URL, not yet back in the list
REFUSED_KEY = "lora_uploads_refused"  # how many a link named that this browser may not open
UPLOAD_TTL_S = 24 * 3600.0
PER_PERSON = 8  # as the adapter list's length: an older upload would not be in it any more
UPLOADS_IN_ALL = 200
_kept: OrderedDict[str, str] = OrderedDict()  # upload key → owner, oldest first (this server's uploads)
_kept_lock = threading.Lock()


def owner() -> str:
    """Whom an upload of this session belongs to: its browser, else the session alone."""
    browser = server.browser_id()
    return f"browser:{browser}" if browser else f"session:{st.session_state.session_id}"


def keep(filename: str, blob: bytes) -> str:
    """Store an upload under a new random key, private to its uploader, and name it in this session's URL."""
    key = UPLOAD_PREFIX + secrets.token_hex(16)
    record = {"filename": filename, "blob": torch.frombuffer(bytearray(blob), dtype=torch.uint8),
              "owner": owner(), "shared": False, "expires": time.time() + UPLOAD_TTL_S}
    runs.store().put(key, record)
    for old in _bound(key, record["owner"]):
        runs.store().delete(old)
    tidy(environment.runs_dir(), environment.cache_limit_bytes())
    held = st.session_state.get(UPLOADS_KEY, [])
    _name_in_url((held + [key])[-PER_PERSON:])
    return key


def _name_in_url(keys: list[str]) -> None:
    """This session's uploads, and the address bar's `uploads` at once: a reload right after an upload
    brings every one of them back (the frame writes the rest of the address before the page runs)."""
    st.session_state[UPLOADS_KEY] = keys
    if keys:
        st.query_params[URL_FIELD] = ",".join(keys)
    elif URL_FIELD in st.query_params:
        del st.query_params[URL_FIELD]


def _bound(key: str, whose: str) -> list[str]:
    """Register a new upload; the keys to delete so that its owner and the server stay within their bounds."""
    with _kept_lock:
        _kept[key] = whose
        mine = [k for k, o in _kept.items() if o == whose]
        gone = mine[:-PER_PERSON] + [k for k in list(_kept)[:-UPLOADS_IN_ALL]]
        for old in set(gone):
            _kept.pop(old, None)
    return sorted(set(gone))


def share(key: str, shared: bool) -> None:
    """Let anyone with the link open this upload (or only its uploader again); only its uploader may."""
    record = runs.store().get(key)
    if record is not None and record["owner"] == owner():
        runs.store().put(key, {**record, "shared": bool(shared)})


def _openable(record, now: float) -> bool:
    return (isinstance(record, dict) and record.get("expires", 0) > now
            and (record.get("shared") is True or record.get("owner") == owner()))


def restore(base: lc.BaselineRun, data: lc.Dataset, base_key, attach) -> None:
    """The uploads a link or a reload names, back in this session's list (once), each through
    `attach(key, filename, adapter)`. One that is gone, expired, someone else's and not shared, or does not fit
    this baseline is skipped; how many were someone else's is kept for the page (refused())."""
    pending = st.session_state.pop(PENDING_KEY, None)
    if not pending:
        return
    restored, refused, now = [], 0, time.time()
    for key in pending:
        record = runs.store().get(key)
        if record is None:
            continue
        if not _openable(record, now):
            refused += record.get("expires", 0) > now
            continue
        try:
            attach(key, record["filename"], read_upload(record["filename"], record["blob"].numpy().tobytes()))
        except lc.AdapterError:
            continue
        restored.append(key)
    _name_in_url(restored[-PER_PERSON:])
    st.session_state[REFUSED_KEY] = refused


def refused() -> int:
    """How many uploads the link named that are someone else's and not shared (said once)."""
    return st.session_state.pop(REFUSED_KEY, 0)


def draw_share(key: str | None) -> None:
    """The current adapter's share switch, when it is an upload of this browser's (its `key`)."""
    stored = runs.store().get(key) if key else None
    if stored is None or stored["owner"] != owner():
        return
    switch = f"share_{key}"
    st.toggle("Share this upload with the link", value=bool(stored["shared"]), key=switch,
              on_change=lambda: share(key, st.session_state[switch]),
              help="Off: only this browser gets it back, from a reload or its own link. On: anyone who opens "
                   "this page's link can use and download it. Uploads are deleted after a day.")


def note_refused() -> None:
    """Say, once, that the link named uploads this browser may not open."""
    if count := refused():
        st.info(f"This link names {count} uploaded adapter(s) that only their uploader can open: ask them to "
                "switch on **Share this upload with the link**.", icon=":material/lock:")
