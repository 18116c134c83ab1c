import streamlit as st

from lora_core.intruders import EPSILON, TOP_K
from lora_core.settings import LEARNING_RATES
from ui import baseline, charts, context, experiment, inside
from views import intruders as view
from views import tables

ctx = context.current()
st.title("Intruder dimensions")
st.markdown(f"Finetuning turns each weight W into W′. Take W′'s top {TOP_K} left singular vectors (its main output "
            "directions) and give each its largest |cosine| with any of W's: 1 means W already had that "
            "direction, near 0 that it is new. Shuttleworth et al. (2024, *LoRA vs Full Fine-tuning: An Illusion "
            f"of Equivalence*) call a direction below ε = {EPSILON:g} (PEFT's default) an **intruder dimension**, "
            "find them in LoRA's W′ far more than in full finetuning's, and tie them to forgetting. Here: LoRA at "
            "each rank and full finetuning, seen in their weights beside what they learned and forgot.")
held = baseline.require(ctx)

cols = st.columns(2)
experiment.widget(cols[0], "oracle_ranks")  # the rank oracle's runs: one training serves both pages
experiment.widget(cols[1], "oracle_steps")
config = inside.study_config("oracle")
st.caption(tables.study_settings(config, ctx.data.classes, own=("steps",), hidden=("rank",))
           + " These are the **Rank oracle** page's runs (full finetuning's learning rate is set there).")

result = inside.run("oracle", held, ctx, config, "Run the oracle", "Full finetuning, then LoRA at each rank",
                    help="Finetune every weight, then train LoRA at each rank; compare each W′ with W.")
if result is None or not result.ranks:
    st.info("Press **Run the oracle**.")
    st.stop()
c, runs = result.config, list(result.oracle.intruders)
names = tables.class_names(ctx.data.classes, c.digits)
st.caption(f"Last run: {tables.describe_finetune(c, ctx.data.classes, with_rank=False)}; ranks "
           f"{', '.join(map(str, result.ranks))}; full finetuning at learning rate {result.full_lr:g}.")

if where := view.found(runs):
    st.markdown(f"Intruders (i = 1 is W′'s largest direction): {where}.")
else:
    st.markdown(f"No run has an intruder in linear1 or linear2: each of W′'s top {TOP_K} directions keeps a "
                f"|cosine| of at least {EPSILON:g} with one of W's. With the LoRA page's learning rate at "
                f"{max(LEARNING_RATES):g} (default baseline, class 2, 50 steps), LoRA r=1's directions in linear2 "
                "come close to ε: its smallest |cosine| drops to about 0.55 while full finetuning's stays above "
                "0.95, and it forgets most of the other classes.")

layer = st.selectbox("Layer", [found.layer for found in runs[0].layers], key="intr_layer")
charts.show(view.similarity(runs, layer), key="intruders_similarity",
            caption=f"For each run, the largest |cos| of W′'s singular vector i with W's, i = 1 to {TOP_K}; the "
                    f"dotted line at ε = {EPSILON:g}. Smallest per run: "
                    + ", ".join(f"{run.run} {min(run.layer(layer).similarity):.3f}" for run in runs) + ".")
last = runs[0].layer("linear3")
if last.spans_output_space:
    st.markdown(f"linear3 has {last.outputs} outputs, and W's {last.outputs} left singular vectors span all of "
                f"them: every direction of W′ has a |cosine| of at least 1/√{last.outputs} ≈ {last.floor:.2f} with "
                "one of them (the grey floor), so an intruder there could only be a turn inside a space W already "
                "fills, never a new direction.")

st.dataframe(view.table(runs, names), hide_index=True)
st.caption(f"On all {len(ctx.data.test_y):,} test images: learned is the baseline's errors on {names} minus the "
           "run's; forgotten is the run's errors on the other classes minus the baseline's (negative: it fixed "
           "some there too).")
