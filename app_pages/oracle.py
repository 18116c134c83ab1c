import streamlit as st

from lora_core import anatomy, count_parameters
from ui import baseline, charts, context, experiment, inside
from views import inside_figures, inside_tables, tables

ctx = context.current()
st.title("Rank oracle")
st.markdown("Which rank does the update need? Full finetuning trains every weight with no rank limit; the SVD "
            "of its update ΔW_full shows how much of it the top r directions hold. Then: does LoRA at rank r "
            "find those same directions? A similarity of 1 means the same subspace, 0 orthogonal ones — and two "
            "random r-dimensional subspaces of the layer's d outputs already score r/d on average, the chance "
            "level drawn beside every bar.")
held = baseline.require(ctx)
base = held["run"]

cols = st.columns(3)
ranks = experiment.widget(cols[0], "oracle_ranks")  # labels, bounds and help: lora_core.settings
steps = experiment.widget(cols[1], "oracle_steps")
experiment.widget(cols[2], "oracle_full_lr", format_func="{:g}".format,
                  help=f"Its own, smaller than LoRA's: at LoRA's 1e-3, training all "
                       f"{count_parameters(base.model)['base']:,} weights on "
                       "one class makes the network answer that class for almost every image.")
config = inside.study_config("oracle")
st.caption(tables.study_settings(config, ctx.data.classes, own=("steps",), hidden=("rank",)))

result = inside.run("oracle", held, ctx, config, "Run the oracle", "Full finetuning, then LoRA at each rank",
                    help="Finetune every weight, take the SVD of its update, then train LoRA at each rank and compare.")
if result is None or not result.ranks:
    st.info("Press **Run the oracle**.")
    st.stop()
c = result.config
st.caption(f"Last run: {tables.describe_finetune(c, ctx.data.classes, with_rank=False)}; ranks "
           f"{', '.join(map(str, result.ranks))}. The full finetune, at learning rate {result.full_lr:g}, "
           f"reached test accuracy {tables.percent(result.oracle.full_evaluation.accuracy)}.")

if st.session_state.get("oracle_layer") not in result.oracle.layers:
    st.session_state.oracle_layer = next(iter(result.oracle.layers))
layer = st.selectbox("Layer", list(result.oracle.layers), key="oracle_layer")
full = result.oracle.layers[layer]
energy = full.energy.tolist()
cols = st.columns(3)
cols[0].metric("Effective rank of the full ΔW", f"{full.effective_rank:.1f}",
               help="exp of the entropy of its normalised singular values: how many directions really share it.")
cols[1].metric("Rank holding 90 % of it", anatomy.rank_for_energy(energy, 0.9))
cols[2].metric("Rank holding 99 % of it", anatomy.rank_for_energy(energy, 0.99))

frame = inside_tables.oracle_frame(result, layer)
left, right = st.columns(2)
with left:
    charts.show(inside_figures.energy({"full finetuning's ΔW": energy}, result.ranks,
                          f"Energy of {layer}'s full ΔW in its top k"), key="oracle_energy",
                caption="Share of ‖ΔW_full‖²_F held by its top k singular directions; at the LoRA ranks: "
                        + ", ".join(f"r={r}: {energy[r - 1]:.0%}" for r in result.ranks) + ".")
with right:
    charts.show(inside_figures.similarity(frame), key="oracle_similarity",
                caption=f"Similarity of LoRA's r output directions with the full update's top r, beside the "
                        f"chance level r/d of random subspaces (d = {full.out_features:,} outputs): "
                        + ", ".join(f"r={row['rank r']}: {row['subspace similarity']:.2f} vs "
                                    f"{row['chance level r/d']:.2f}" for row in frame.to_dict("records")) + ".")
st.dataframe(frame, hide_index=True, column_config={
    "energy of the full ΔW in its top r": st.column_config.NumberColumn(format="percent"),
    "subspace similarity": st.column_config.NumberColumn(format="%.3f"),
    "chance level r/d": st.column_config.NumberColumn(format="%.3f"),
    "smallest angle (°)": st.column_config.NumberColumn(format="%.1f"),
    "largest angle (°)": st.column_config.NumberColumn(format="%.1f"),
})
st.caption("Similarity = ‖U_LoRAᵀ U_full‖²_F / r, where U are the top-r output directions (left singular "
           "vectors) of each update; the principal angles between the two subspaces run from 0° (shared) "
           "to 90° (orthogonal). Random r-dimensional subspaces of R^d score r/d on average (the chance level): "
           "near 0 for linear1 and linear2, with 1,000s of outputs, but 0.8 at r = 8 for linear3's 10 outputs.")
