"""This user's adapters: the current one (trained or uploaded), adapter files, and the list to blend.

Everything is computed by lora_core; this module only decides what is kept in `st.session_state`:
- "lora": the current adapter (views.current_adapter.CurrentAdapter) — a copy of the baseline carrying it,
  its evaluations and proofs;
- "lora_adapters": every adapter trained or uploaded (newest last, at most MAX_KEPT), each an
  `lc.Adapter` detached from any model, with its switch and strength;
- "blend_scores": evaluations of blends already scored, by (baseline, adapters, strengths).
A new current adapter is stored in one step, after everything about it was computed: a failed upload
changes nothing.
"""
import dataclasses

import streamlit as st

import lora_core as lc
from lora_core import works
from lora_core.adapter_zips import adapter_zip, read_upload
from lora_core.adapters import MAX_STRENGTH
from ui import server, uploads
from ui.plain import plain
from views import current_adapter
from views.current_adapter import CurrentAdapter

PROBE_IMAGES = 256  # test images an uploaded adapter must give finite outputs on

MAX_KEPT = uploads.PER_PERSON  # adapters in the list; the oldest is dropped first
MAX_SCORES = 64  # blends remembered per session
STRENGTH_STEP = 0.05


def current(base_key) -> CurrentAdapter | None:
    """The current adapter, when it was made on the baseline this user holds now."""
    held = st.session_state.get("lora")
    return held if held is not None and held.base_key == base_key else None


def uploaded(base: lc.BaselineRun, data: lc.Dataset, filename: str, adapter: lc.Adapter, base_key,
             say=lambda text: None) -> CurrentAdapter:
    """An uploaded adapter, attached to a copy of the baseline, as the current adapter."""
    model = lc.attach(lc.copy_model(base.model), adapter)  # checks the fit before changing the copy
    lc.check_outputs(model, data.test_x[:PROBE_IMAGES])  # finite A, B and ΔW can still overflow the outputs
    found = works.adapter_results(base, model, data, say=say)
    return current_adapter.uploaded(filename, adapter, model, base.evaluation, found, base_key)


def make_current(record: CurrentAdapter) -> CurrentAdapter:
    """Store a new current adapter, named uniquely, and add it to the list, switched on alone at strength 1:
    its switches are set so, which must happen before any of them is drawn in this pass. The one stored."""
    kept = st.session_state.setdefault("lora_adapters", [])
    taken = {entry["name"] for entry in kept}
    name, n = record.name, 2
    while name in taken:
        name, n = f"{record.name} ({n})", n + 1
    record = dataclasses.replace(record, name=name)
    uid = st.session_state.get("lora_adapter_uid", 0) + 1
    st.session_state.lora_adapter_uid = uid
    for entry in kept:
        entry["on"] = False
    kept.append({"uid": uid, "name": name, "adapter": record.adapter, "chosen": record.chosen,
                 "base_key": record.base_key, "source": record.source, "on": True, "strength": 1.0})
    del kept[:-MAX_KEPT]
    if record.merged is not None:  # this adapter alone at strength 1 is its merged copy: scored already
        remember_score((record.base_key, ((uid, 1.0),)), record.merged)
    st.session_state.lora = record
    st.session_state.lora_adapter_on = True
    for entry in kept:
        st.session_state[f"adapter_on_{entry['uid']}"] = entry["on"]
        st.session_state[f"adapter_strength_{entry['uid']}"] = entry["strength"]
    return record


def upload(file, base: lc.BaselineRun, data: lc.Dataset, base_key) -> None:
    """Use a newly uploaded file once; show what came of it while the file stays in the uploader. Call it
    before the current adapter and its switches are drawn: a new file becomes the current adapter."""
    if file is None:
        return
    if st.session_state.get("lora_upload_seen") != file.file_id:
        st.session_state.lora_upload_seen = file.file_id
        name = plain(file.name)
        box = st.empty()  # what the upload is doing (not st.status: it sleeps 0.05 s as it opens and closes)

        def say(text: str) -> None:
            box.info(f"{name}: {text}…", icon=":material/hourglass_top:")
        try:
            say("reading the file")  # an AdapterError says why the file cannot be used
            record = uploaded(base, data, file.name, read_upload(file.name, file.getvalue()), base_key, say)
        except lc.AdapterError as err:
            outcome = ("error", f"**{name} was not used:** {plain(err)}. Your baseline and adapters are unchanged.")
        except Exception:  # anything unforeseen: the details go to the server's log, the page says what it can
            server.log.exception("Using the uploaded file %r failed", file.name[:200])
            outcome = ("error", f"**{name} was not used:** it could not be applied to your baseline. Your "
                                "baseline and adapters are unchanged.")
        else:
            record = make_current(dataclasses.replace(record, upload_key=uploads.keep(file.name, file.getvalue())))
            outcome = ("success", f"**{name}** is attached to a copy of your baseline as "
                                  f"*{plain(record.name)}*: it is the current adapter, and switched on in the list.")
        box.empty()
        st.session_state.lora_upload_outcome = (file.file_id, *outcome)
    shown = st.session_state.get("lora_upload_outcome")
    if shown and shown[0] == file.file_id:
        getattr(st, shown[1])(shown[2])


def restore_uploads(base: lc.BaselineRun, data: lc.Dataset, base_key) -> None:
    """The uploads a link or a reload names (ui.uploads: only those this browser may open), back in this
    session's list; the last one becomes the current adapter."""
    def attach(key: str, filename: str, adapter: lc.Adapter) -> None:
        make_current(dataclasses.replace(uploaded(base, data, filename, adapter, base_key), upload_key=key))
    uploads.restore(base, data, base_key, attach)


def zip_bytes(record: CurrentAdapter, peft_format: bool) -> bytes:
    """The current adapter as a zip (ours or PEFT's), made once per adapter."""
    files = record.made.zips
    if peft_format not in files:
        files[peft_format] = adapter_zip(record.model, peft_format)
    return files[peft_format]


def zip_data(record: CurrentAdapter, peft_format: bool):
    """zip_bytes for a download button: made when the button is clicked, not on the way to the results."""
    return lambda: zip_bytes(record, peft_format)


def merge_rows(record: CurrentAdapter, data: lc.Dataset, measure: bool) -> list[dict] | None:
    """merge_precision of the current adapter on the test images, measured once per adapter when asked
    (three passes over the test images: not on the way to the adapter's own results); None until then."""
    if record.made.merge_rows is None and measure:
        with st.spinner("Merging the adapter in float32, bfloat16 and float16 and counting flipped predictions…"):
            record.made.merge_rows = lc.merge_precision(record.model, data.test_x, reference=record.after.predictions)
    return record.made.merge_rows


def on_this_baseline(base_key) -> list[dict]:
    return [e for e in st.session_state.get("lora_adapters", []) if e["base_key"] == base_key]


def draw_switches(entries: list[dict]) -> None:
    """A switch and a strength slider per adapter; the entry keeps their values while the page is away."""
    for entry in entries:
        on_key, strength_key = f"adapter_on_{entry['uid']}", f"adapter_strength_{entry['uid']}"
        # the widget's value if it has one (this page was shown), else the stored one (it was away)
        entry["on"] = st.session_state[on_key] = st.session_state.get(on_key, entry["on"])
        entry["strength"] = st.session_state[strength_key] = st.session_state.get(strength_key, entry["strength"])
        left, middle, right = st.columns([3, 3, 4])
        entry["on"] = left.toggle(plain(entry["name"]), key=on_key, help="Use this adapter in the blend.")
        entry["strength"] = middle.slider(
            f"Strength of {plain(entry['name'])}", 0.0, MAX_STRENGTH, step=STRENGTH_STEP, key=strength_key,
            disabled=not entry["on"], label_visibility="collapsed",
            help="s in W + s·(α/r)·B·A: 0 leaves the adapter out, 1 is as trained, above 1 exaggerates it.")
        adapter = entry["adapter"]
        right.caption(plain(f"{entry['source']} · rank {adapter.rank}, α {adapter.alpha:g} · "
                            f"{', '.join(adapter.targets)}"))


def active(entries: list[dict]) -> list[tuple[dict, float]]:
    """(entry, strength) of every adapter switched on, strengths on the slider's grid."""
    return [(e, round(e["strength"], 2)) for e in entries if e["on"]]


def blend_score(base: lc.BaselineRun, data: lc.Dataset, base_key, entries: list[dict]) -> lc.Evaluation:
    """evaluate(blend(base, active adapters, strengths)), remembered: moving back to a setting is instant."""
    chosen = active(entries)
    if not chosen:
        return base.evaluation
    scores = st.session_state.setdefault("blend_scores", {})
    key = (base_key, tuple((e["uid"], s) for e, s in chosen))  # uids: a name can come back after a drop
    if key not in scores:
        with st.spinner("Scoring this blend on the test images…"):
            model = lc.blend(base.model, [e["adapter"] for e, _ in chosen], [s for _, s in chosen])
            remember_score(key, lc.evaluate(model, data.test_x, data.test_y))
    return scores[key]


def remember_score(key: tuple, evaluation: lc.Evaluation) -> None:
    scores = st.session_state.setdefault("blend_scores", {})
    scores[key] = evaluation
    while len(scores) > MAX_SCORES:
        scores.pop(next(iter(scores)))
