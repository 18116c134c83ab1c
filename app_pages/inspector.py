import streamlit as st

from lora_core import anatomy
from ui import baseline, charts, context, experiment, inside, state
from ui.plain import plain
from views import figures, inside_figures, inside_tables, inspector, tables

PATTERNS_SHOWN = 16

ctx = context.current()
st.title("ΔW inspector")
st.markdown("What a trained adapter adds to each layer: the matrix **ΔW = (α/r)·B·A**, its singular values "
            "beside those of the frozen W, and what it does to one image. ΔW has rank at most r, so every "
            "singular value after the r-th is zero (up to rounding): the update is exactly low-rank.")
held = baseline.require(ctx)
base = held["run"]
config = inside.study_config("finetune")

st.caption(f"**Train and watch** uses the LoRA page's settings (and a shared link's): "
           f"{tables.describe_finetune(config, ctx.data.classes)}.")
every = experiment.widget(st, "every", format_func=lambda n: "— never (‖ΔW‖ only)" if n == 0 else f"{n} steps")


inspected = inside.run("inspect", held, ctx, config, "Train and watch", "Training the adapter", draw=inside.draw_live,
                       help="Finetune a fresh adapter with the LoRA page's settings and watch ΔW grow, step by step.")

sources = inside.subjects(dict(held, inspected=inspected), ctx.data.classes)
if not sources:
    st.info("Press **Train and watch**, or train an adapter on the **LoRA finetuning** page and come back.")
    st.stop()
if st.session_state.get("insp_source") not in sources:
    st.session_state.insp_source = next(iter(sources))
source = st.radio("Adapter to inspect", list(sources), key="insp_source", horizontal=True)
chosen = inside.with_views(sources[source])  # the LoRA page's adapter: its SVDs are computed once, here
model = chosen["model"]
if chosen["warning"]:
    st.warning(chosen["warning"])
st.caption(f"Inspecting the adapter {source}. {plain(chosen['caption'])}")

views = {v.name: v for v in chosen["views"]}
norms = anatomy.layer_update_norms(model)
st.dataframe(inside_tables.layer_frame(chosen["views"], norms), hide_index=True, column_config={
    "‖ΔW‖_F": st.column_config.NumberColumn(format="%.4g"),
    "effective rank": st.column_config.NumberColumn(format="%.3f"),
    "energy in top direction": st.column_config.NumberColumn(format="percent"),
    "σ₁(ΔW)": st.column_config.NumberColumn(format="%.4g"),
    "σ₁(W)": st.column_config.NumberColumn(format="%.4g"),
})

st.subheader("One layer's update")
if st.session_state.get("insp_layer") not in views:
    st.session_state.insp_layer = next(iter(views))
layer = st.selectbox("Layer", list(views), key="insp_layer")
view = views[layer]
delta_energy = anatomy.energy(view.delta_singular_values).tolist()
nonzero = anatomy.nonzero_count(view.delta_singular_values)
largest_entry = float(view.delta.abs().max())
weight_energy = anatomy.energy(view.weight_singular_values).tolist()
cols = st.columns(4)
cols[0].metric("Rank r", view.rank)
cols[1].metric("Effective rank", f"{view.effective_rank:.3f}", help=inspector.EFFECTIVE_RANK_HELP)
cols[2].metric("Energy in the top direction", tables.percent(delta_energy[0]), help=inspector.top_energy_help(nonzero))
cols[3].metric("‖ΔW‖_F", f"{norms[layer]:.4g}")

left, right = st.columns(2)
with left:
    heatmaps = st.session_state.setdefault("insp_heatmaps", {})  # a rerun redraws, it does not rebuild
    if heatmaps.get("delta") is not view.delta:
        heatmaps.clear()
        heatmaps["delta"] = view.delta
        delta = view.delta.numpy()
        heatmaps["drawn"] = figures.heatmap(delta, f"ΔW of {layer}", figures.color_limit(delta))
    fig, stride = heatmaps["drawn"]
    charts.show(fig, key="insp_heatmap", caption=inspector.heatmap_caption(layer, largest_entry))
    st.caption(inspector.heatmap_size_caption(view.delta.shape, stride))
with right:
    shown = min(len(view.weight_singular_values), max(3 * view.rank, 40))
    charts.show(inside_figures.spectra(view.delta_singular_values.tolist(), view.weight_singular_values.tolist(),
                                       view.rank, shown, layer), key="insp_spectra",
                caption=inspector.spectra_caption(view, nonzero))
    st.caption(inspector.spectra_shown_caption(shown, len(view.weight_singular_values)))


@st.fragment
def energy_view() -> None:
    """The top-k slider and what it moves: a new k reruns this alone."""
    top = min(len(weight_energy), 200)
    state.clamp("insp_k", 1, top)
    k = st.slider("Energy captured by the top k singular directions", 1, top, key="insp_k",
                  help="The share of ‖M‖²_F that the k largest singular directions hold, for ΔW and for W.")
    cols = st.columns(2)
    cols[0].metric(f"ΔW: energy in the top {k}", tables.percent(delta_energy[min(k, len(delta_energy)) - 1]))
    cols[1].metric(f"W: energy in the top {k}", tables.percent(weight_energy[k - 1]),
                   help="The frozen weights are far from low-rank: many directions share their energy.")
    charts.show(inside_figures.energy({"ΔW": delta_energy, "W (frozen)": weight_energy}, [view.rank],
                          f"Energy in the top k directions of {layer}"), key="insp_energy",
                caption=inspector.energy_caption(k, delta_energy, weight_energy, nonzero, view.rank))


energy_view()

if chosen["patterns"] is not None:
    st.subheader("What linear1's adapter reads")
    patterns = chosen["patterns"][:PATTERNS_SHOWN].tolist()
    st.markdown(inspector.PATTERNS_TEXT)
    rows_word = "row" if len(patterns) == 1 else f"{len(patterns)} rows"
    charts.show(inside_figures.patterns(patterns, f"The {rows_word} of A in linear1, as 28×28 images"),
                key="insp_patterns", caption=inspector.patterns_caption(patterns))
    if len(chosen["patterns"]) > PATTERNS_SHOWN:
        st.caption(f"The first {PATTERNS_SHOWN} of {len(chosen['patterns'])} rows.")

st.subheader("One test image through W and through W + ΔW")

@st.fragment
def image_view() -> None:
    """The test-image slider and what it moves: a new image reruns this alone."""
    index = st.slider("Test image", 0, len(ctx.data.test_y) - 1, key="insp_image",
                      help="Pick any test image: its logits with the adapter off and on.")
    image, label = ctx.data.test_x[index], int(ctx.data.test_y[index])
    without, with_adapter = (t.tolist() for t in anatomy.logits_with_and_without(model, image))
    classes = ctx.data.classes
    predicted_off, predicted_on = inspector.predicted(without, classes), inspector.predicted(with_adapter, classes)
    left, right = st.columns([1, 3])
    with left:
        charts.show(inside_figures.image(image.reshape(28, 28).cpu().numpy(),
                                         f"test image {index:,}: {classes[label]}"),
                    key="insp_image_chart", caption=f"Test image {index:,}, true class {classes[label]}.")
    with right:
        charts.show(inside_figures.logits(without, with_adapter, classes, "Logits with the adapter off and on"),
                    key="insp_logits",
                    caption=inspector.logits_caption(without, with_adapter, classes))
    st.markdown(f"True class **{classes[label]}** · predicted through W: **{predicted_off}** · through W + ΔW: "
                f"**{predicted_on}**")


image_view()

if "norms" in chosen:
    st.subheader("ΔW while it was trained")
    charts.show(inside_figures.norm_curves(chosen["norms"], "‖ΔW‖_F of each layer, step by step"), key="insp_norms",
                caption=inspector.norms_caption(chosen["norms"]))
    if chosen["snapshots"]:
        last_step, last = chosen["snapshots"][-1]
        charts.show(inside_figures.spectrum_history(chosen["snapshots"], layer), key="insp_history",
                    caption=inspector.history_caption(layer, last_step, last))
else:
    st.caption("**Train and watch** also records ‖ΔW‖_F of each layer after every step, and ΔW's singular "
               "values as they grow.")
