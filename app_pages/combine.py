import streamlit as st

import lora_core as lc
from lora_core.combine import METHODS, SVD_METHODS, uses_density, uses_sign_election
from ui import adapters, baseline, charts, context
from ui import combine as ui_combine
from ui.plain import for_chart, plain
from views import figures, tables

ctx = context.current()
st.title("Combine adapters")
st.markdown("PEFT's `add_weighted_adapter` turns several adapters into one, by one of eleven methods, computed "
            "here by LoRA Lab's own code (checked against PEFT's). What users mean is usually the weighted sum "
            "**Σ wᵢ·ΔWᵢ**; each layer below shows how far the combined **ΔW′ = B′·A′** is from it. "
            "`linear` and the TIES/DARE/magnitude methods combine the A's and the B's separately, so B′·A′ holds "
            "cross terms Bᵢ·Aⱼ; `cat` stacks the factors and is exact, at the sum of the ranks; `svd` is exact "
            "once its rank reaches the rank of the sum.")
held = baseline.require(ctx)
base = held["run"]
entries = {e["uid"]: e for e in adapters.on_this_baseline(held["key"])}
if len(entries) < 2:
    st.info("Train or upload at least two adapters on this baseline on the **LoRA finetuning** page (for "
            "example one on digit 2 and one on digit 7), then combine them here.")
    st.stop()

ui_combine.init_widgets(list(entries))
chosen_uids = st.multiselect("Adapters to combine", list(entries), key="combine_chosen",
                             format_func=lambda uid: entries[uid]["name"],  # options are drawn as text
                             help="Your adapters on this baseline, from the LoRA finetuning page.")
chosen = [entries[uid] for uid in chosen_uids]
if len(chosen) < 2:
    st.error("Choose at least two adapters.")
    st.stop()
columns = st.columns(len(chosen))
weights = []
for column, entry in zip(columns, chosen, strict=True):
    weights.append(column.number_input(f"Weight of {plain(entry['name'])}", -2.0, 2.0, step=0.1,
                                       key=f"combine_weight_{entry['uid']}",
                                       help="wᵢ in Σ wᵢ·ΔWᵢ: negative subtracts the adapter."))
left, middle, right = st.columns(3)
method = left.selectbox("Method", METHODS, key="combine_method",
                        help="PEFT's combination_type. cat and the svd methods accept different ranks.")
density = middle.slider("Density", 0.05, 1.0, step=0.05, key="combine_density", disabled=not uses_density(method),
                        help="The fraction of each tensor's entries kept (TIES, DARE, magnitude pruning).")
sign = right.selectbox("Majority sign", ("total", "frequency"), key="combine_sign",
                       disabled=not uses_sign_election(method),
                       help="How TIES elects each entry's sign: by the sum of the values, or by a count of signs.")
svd_rank = left.number_input("svd_rank", 1, 4096, key="combine_svd_rank", disabled=method not in SVD_METHODS,
                             help="The combined adapter's rank for the svd methods.")
seed = middle.number_input("Seed of DARE's masks", 0, 2**31 - 1, key="combine_seed",
                           disabled=not method.startswith("dare"))
try:
    config = lc.CombineConfig(method, tuple(weights), density if uses_density(method) else None, sign,
                              svd_rank if method in SVD_METHODS else None, seed)
    result = ui_combine.combination(held["key"], chosen, config)
except ValueError as err:
    st.error(plain(err))
    st.stop()

for note in result.notes:
    st.warning(note, icon=":material/warning:")
st.subheader(f"The combined adapter: rank {result.adapter.rank}, {result.parameters:,} parameters")
st.dataframe([{"layer": name, "rank r′": la.rank, "parameters": la.parameters, "rank of Σ wᵢΔWᵢ": la.sum_rank,
               "‖ΔW′ − Σ wᵢΔWᵢ‖ / ‖Σ wᵢΔWᵢ‖": la.relative_error} for name, la in result.layers.items()],
             hide_index=True, column_config={
                 "‖ΔW′ − Σ wᵢΔWᵢ‖ / ‖Σ wᵢΔWᵢ‖": st.column_config.NumberColumn(format="%.3g")})
st.caption("Relative error 0 (to float32 rounding) means the combination is exactly the weighted sum. PEFT's combined "
           "adapter has the same A′ and B′, with α = r′.")

st.subheader("What the network then gets right and wrong")
digits = sorted({d for e in chosen for d in e["chosen"]})
groups = {tables.class_names(ctx.data.classes, e["chosen"]): tuple(e["chosen"]) for e in chosen if e["chosen"]}
groups["the other classes" if digits else "all classes"] = tuple(d for d in range(len(ctx.data.classes))
                                                               if d not in digits)
scores = {"baseline": base.evaluation}
for entry in chosen:
    scores[entry["name"]] = ui_combine.score(base, ctx.data, (held["key"], entry["uid"]), entry["adapter"])
combined = ui_combine.score(base, ctx.data, (held["key"], config, tuple(chosen_uids)), result.adapter)
scores[f"combined ({method})"] = combined
together = ui_combine.joint([e for e in entries.values() if e not in chosen], digits) if digits else None
if together is not None:
    scores[f"{together['name']} (trained on them together)"] = ui_combine.score(
        base, ctx.data, (held["key"], together["uid"]), together["adapter"])
st.dataframe(ui_combine.rows(scores, groups), hide_index=True,  # cells are drawn as text, never Markdown
             column_config={"accuracy": st.column_config.NumberColumn(format="percent")})
if digits and together is None and all(sorted(e["chosen"]) != digits for e in chosen):
    st.caption(f"To compare with one adapter trained on {tables.class_names(ctx.data.classes, digits)} together, "
               "train it on the LoRA finetuning page: it then appears in this table.")
label = " + ".join(f"{w:g}·({for_chart(e['name'])})" for e, w in zip(chosen, weights, strict=True))
charts.show(figures.before_after(base.evaluation.wrong_per_class, combined.wrong_per_class, ctx.data.classes,
                                digits, f"combined ({method})", f"Combined by {method}: {label}"),
            key="combine_chart",
            caption=f"Misclassified test images per class for the baseline (grey) and the combined adapter (blue): "
                    f"{base.evaluation.wrong:,} and {combined.wrong:,} in all; accuracy "
                    f"{tables.percent(combined.accuracy)}.")

left, right = st.columns(2)
left.download_button("Download the combined adapter (.zip)", ui_combine.zip_data(base, result, False),
                     f"combined-{method}.zip", mime="application/zip", key="combine_download", on_click="ignore")
right.download_button("Download for PEFT (.zip)", ui_combine.zip_data(base, result, True),
                      f"combined-{method}-peft.zip", mime="application/zip", key="combine_download_peft",
                      on_click="ignore", help="adapter_model.safetensors and adapter_config.json, as "
                                              "peft.PeftModel.from_pretrained reads them.")
