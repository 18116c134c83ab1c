import streamlit as st

import lora_core as lc
from ui import charts, context, state
from views import figures, tables

ctx = context.current()
st.title("SVD playground")
st.markdown("A matrix of low rank can be written as a product of two thin matrices, **W = B·A**. "
            "The singular value decomposition finds the best such product for any rank r you keep.")

col_d, col_k, col_true, col_r = st.columns(4)
d = col_d.slider("Rows d", 2, 512, key="svd_d",
                 help="W is d×k, like the weight of a layer with k inputs and d outputs.")
k = col_k.slider("Columns k", 2, 512, key="svd_k", help="The number of columns of W (the layer's inputs).")
limit = min(d, k)
state.clamp("svd_true_rank", 1, limit)
state.clamp("svd_r", 1, limit)
true_rank = col_true.slider(
    "True rank of W", 1, limit, key="svd_true_rank",
    help="W is built as (d×rank) @ (rank×k) random matrices, so it has exactly this rank: only this many "
         "singular values are not zero. A rank is at most min(d, k).")
r = col_r.slider(
    "Kept rank r", 1, limit, key="svd_r",
    help="How many singular values the factorisation keeps: B = U_r·diag(σ_r) is d×r and A = V_rᵀ is r×k. "
         "Keeping at least the true rank reproduces W exactly; fewer gives the best rank-r approximation.")

p = lc.playground(d, k, true_rank, r, ctx.seed)

col1, col2, col3, col4 = st.columns(4)
col1.metric("Numerical rank of W", p.numerical_rank,
            help="Singular values above max(d, k)·ε·σ₁ count, as numpy.linalg.matrix_rank does.")
col2.metric("Parameters of W (d·k)", f"{p.counts['full']:,}")
col3.metric("Parameters of B and A (r·(d+k))", f"{p.counts['factored']:,}",
            help="B is d×r and A is r×k: what LoRA trains instead of the d·k entries of W.")
col4.metric("Share saved", f"{p.counts['saved_share']:.1%}",
            help="1 − r·(d+k) / (d·k). Negative when r is so large that the factors cost more than W.")
col5, col6, col7, _ = st.columns(4)
col5.metric("Reconstruction error ‖W − BA‖_F", f"{p.error:.3g}",
            help="By the Eckart–Young theorem: the square root of the sum of the dropped σᵢ².")
col6.metric("Relative error ‖W − BA‖_F / ‖W‖_F", f"{p.relative_error:.3g}")
col7.metric("Largest |y − y′|", f"{p.max_abs_difference:.3g}")

zmax = figures.color_limit(p.W.numpy())  # one colour scale for both: equal colours mean equal values
left, right = st.columns(2)
with left:
    fig, stride = figures.heatmap(p.W.numpy(), f"W ({d}×{k}, rank {true_rank})", zmax)
    charts.show(fig, key="svd_W", caption=f"W's {d}×{k} entries as colours, one entry one square.")
with right:
    fig, _ = figures.heatmap(p.product.numpy(), f"B·A (kept rank {r})", zmax)
    charts.show(fig, key="svd_BA", caption=f"B·A on the same colour scale: ‖W − BA‖_F = {p.error:.3g}.")
if stride > 1:
    nth = {2: "second", 3: "third", 4: "fourth"}.get(stride, f"{stride}th")
    st.caption(f"The heatmaps draw every {nth} row and column: {d * k:,} cells are too many to send "
               "on every slider move.")

charts.show(figures.singular_values(p.singular_values.tolist(), r, p.numerical_rank), key="svd_sigma",
            caption=f"W's {len(p.singular_values)} singular values, largest {float(p.singular_values[0]):.3g}; "
                    f"{p.numerical_rank} are above rounding (its numerical rank) and B·A keeps the first {r}.")

st.subheader("A layer's output: y = Wx + b against y′ = BAx + b")
st.markdown("The same random input x and bias b go through W and through B·A.")
left, right = st.columns([2, 3])
left.dataframe(tables.outputs_table(p), height=420, width="stretch")
with right:
    charts.show(figures.outputs(p.y.tolist(), p.y_prime.tolist()), key="svd_outputs",
                caption=f"Each of the {d} entries of y and y′; the largest |y − y′| is {p.max_abs_difference:.3g}.")
