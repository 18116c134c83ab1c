import streamlit as st

from lora_core.adapter_files import MAX_ADAPTER_BYTES
from service import downloads
from ui import adapters, baseline, charts, context, current, experiment, finetunes, inside, uploads
from ui.plain import for_chart
from views import current_adapter, figures, tables

ctx = context.current()
st.title("LoRA finetuning")
st.markdown("Freeze the trained baseline, add **W′ = W + (α/r)·B·A** to its layers, and train only A and B "
            "on a few classes. The chosen classes improve; the others may get worse — and switching the "
            "adapter off gives back the original network exactly.")
held = baseline.require(ctx)
base = held["run"]
adapters.restore_uploads(base, ctx.data, held["key"])  # a link's or a reload's uploads, before the switches
uploads.note_refused()
st.caption(f"Adapting your baseline: test accuracy {tables.percent(base.evaluation.accuracy)}, "
           f"{len(base.losses):,} training steps" + (" (stopped early)." if not base.complete else "."))

cols = st.columns(3)
# labels, bounds and help from the settings table (lora_core.settings)
experiment.widget(cols[0], "rank")
experiment.widget(cols[1], "alpha", step=0.5)
experiment.widget(cols[2], "targets")
cols = st.columns(3)
experiment.widget(cols[0], "digits", format_func=lambda i: ctx.data.classes[i])
experiment.widget(cols[1], "steps", help=f"Training steps of {st.session_state.lora_batch:,} images each (the batch "
                                         "size, under More settings) on the chosen classes.")
experiment.widget(cols[2], "lr", format_func="{:g}".format)
with st.expander("More settings: batch, initialisation, scaling, DoRA, LoRA+"):
    cols = st.columns(3)
    experiment.widget(cols[0], "batch")
    experiment.widget(cols[1], "init", format_func=inside.INIT_LABELS.get)
    experiment.widget(cols[2], "rslora")
    cols = st.columns(3)
    experiment.widget(cols[0], "dora")
    experiment.widget(cols[1], "loraplus", step=1.0)

config = None
if problem := experiment.problem_for("finetune", "finetune"):
    st.error(tables.settings_error(ValueError(problem)))
else:
    try:
        config = experiment.current().study("finetune")
        counted = (held["key"], config.rank, config.alpha, config.targets, ctx.seed)  # a rerun: not counted again
        if st.session_state.get("lora_counted", (None,))[0] != counted:
            st.session_state.lora_counted = (counted, tables.lora_parameters(base.model, config.rank, config.alpha,
                                                                             config.targets, ctx.seed))
        counts = st.session_state.lora_counted[1]
    except ValueError as err:  # e.g. a rank larger than a target layer allows: the core names the layer
        st.error(tables.settings_error(err))
        config = None
if config is not None:
    col1, col2, col3 = st.columns(3)
    col1.metric("Original parameters (frozen)", f"{counts['base']:,}")
    col2.metric("LoRA parameters (trained)", f"{counts['lora']:,}")
    col3.metric("Increase", tables.percent(counts["lora"] / counts["base"], 3),
                help="Adapter parameters as a share of the original network's.")

if config is not None:
    finetunes.train_controls(ctx, held, config)
# The current adapter is drawn here once an upload further down, if any, has been taken in: a new file is
# shown in the same pass, without a rerun of the page.
current_area = st.container()

st.subheader("Adapters as files")
st.markdown("An adapter is only its A and B matrices: a file of kilobytes next to the megabytes of the "
            "network. Download the current one — as LoRA Lab's `adapter.safetensors` or in Hugging Face "
            "PEFT's format — and upload one back onto your baseline here or in another browser.")
save_col, load_col = st.columns(2)
with load_col:
    upload = st.file_uploader("Upload an adapter (.zip or .safetensors)", type=["zip", "safetensors"],
                              key="lora_upload", max_upload_size=MAX_ADAPTER_BYTES // 2**20,
                              help="A zip downloaded here (either format) or an adapter.safetensors. It is "
                                   "checked against your baseline before anything changes.")
    adapters.upload(upload, base, ctx.data, held["key"])  # a new file becomes the current adapter
result = adapters.current(held["key"])
with load_col:
    uploads.draw_share(None if result is None else result.upload_key)
with current_area:
    current.draw(result, ctx.data.classes)
with save_col:
    if result is None:
        st.caption("Train or upload an adapter to download it.")
    else:
        st.download_button("Download adapter (.zip)", adapters.zip_data(result, False), f"{result.stem}.zip",
                           mime="application/zip", key="lora_download", on_click="ignore",
                           help="A zip holding adapter.safetensors: A, B, rank, α and the target layers.")
        st.download_button("Download for PEFT (.zip)", adapters.zip_data(result, True),
                           downloads.peft_zip_name(result.stem), mime="application/zip", key="lora_download_peft",
                           on_click="ignore", help="adapter_model.safetensors and adapter_config.json, as "
                                                   "peft.PeftModel.from_pretrained reads them.")
        st.download_button("Download the baseline (.safetensors)", downloads.baseline_data(base, ctx.data.name),
                           downloads.baseline_name(held, ctx.data.name), mime="application/octet-stream",
                           key="lora_download_baseline", on_click="ignore",
                           help="The network the adapter was trained on: its weights, with the layer sizes and "
                                "the input normalisation in the file's metadata.")
        st.download_button("Download the test images (.npz)", downloads.test_images_data(ctx.data),
                           downloads.test_images_name(ctx.data.name), mime="application/octet-stream",
                           key="lora_download_test_images", on_click="ignore",
                           help=f"The {len(ctx.data.test_y):,} test images the page scores (28×28 pixels, 0–255) "
                                "and their labels, for the code below.")
if result is not None:
    with st.expander("Use them in Python: copy as code", icon=":material/code:"):
        st.caption("Download the baseline, the PEFT zip and the test images into one folder and run this there "
                   "(as a file, or pasted into python): it prints the accuracy shown above. It needs only torch, "
                   "safetensors, peft and numpy, nothing of LoRA Lab.")
        st.code(downloads.snippet(held, result.stem, ctx.data.name), language="python")
    st.subheader("Merge lab: W + ΔW stored in lower precision")
    st.markdown("Merging adds ΔW into W, so the adapter costs nothing at run time. Stored in a smaller "
                "number format the sum is rounded: how far from the exact sum, and how many of the "
                f"{len(ctx.data.test_y):,} test predictions change?")
    measure = result.made.merge_rows is None and st.button(
        "Merge and count", key="lora_merge_measure",
        help="Merges this adapter three times and scores each copy on every test image (a few seconds).")
    rows = adapters.merge_rows(result, ctx.data, measure)
if result is not None and rows is not None:
    left, right = st.columns([2, 3])
    left.dataframe(rows, hide_index=True, column_config={
        "dtype": "stored as",
        "max_abs_error": st.column_config.NumberColumn("max |error|", format="%.3g"),
        "flipped": st.column_config.NumberColumn("flipped predictions"),
    })
    with right:
        charts.show(figures.merge_precision(rows), key="lora_merge",
                    caption=current_adapter.merge_caption(rows))

entries = adapters.on_this_baseline(held["key"])
if entries:
    st.subheader("Your adapters: switch and blend")
    st.markdown("Every adapter you trained or uploaded on this baseline (the last "
                f"{adapters.MAX_KEPT}). The network **W + Σ sᵢ·(α/r)·Bᵢ·Aᵢ** of those switched on is "
                "scored at once — no retraining.")
    adapters.draw_switches(entries)
    score = adapters.blend_score(base, ctx.data, held["key"], entries)
    on = adapters.active(entries)
    label = " + ".join(f"{s:g}·({for_chart(e['name'])})" for e, s in on) or "all off: the baseline"
    blended = sorted({c for e, _ in on for c in e["chosen"]})
    col1, col2, _ = st.columns(3)
    col1.metric("Blend accuracy", tables.percent(score.accuracy),
                delta=f"{(score.accuracy - base.evaluation.accuracy) * 100:+.2f} points")
    col2.metric("Blend wrong test images", f"{score.wrong:,}", delta=f"{score.wrong - base.evaluation.wrong:+,}",
                delta_color="inverse")
    if result is not None and st.session_state.lora_adapter_on and result.charted_like(score, base.evaluation, blended):
        st.caption(current_adapter.blend_charted_above_caption(score))
    else:
        charts.show(figures.before_after(base.evaluation.wrong_per_class, score.wrong_per_class, ctx.data.classes,
                                        blended, "blend", f"Blend: {label}"), key="lora_blend",
                    caption=current_adapter.blend_caption(base.evaluation, score))
