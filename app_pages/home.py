import streamlit as st

st.title("LoRA Lab")
st.markdown(r"""
**LoRA — low-rank adaptation** — finetunes a big network by training a tiny add-on instead of its weights.

For a layer with weight matrix $W$ ($d \times k$), LoRA freezes $W$ and learns two thin matrices,
$B$ ($d \times r$) and $A$ ($r \times k$), with a small rank $r$. The layer then uses

$$W' = W + \frac{\alpha}{r}\, B A$$

- $B$ starts at **zero** and $A$ **random**, so a fresh adapter changes nothing ($BA = 0$) yet learns
  at once: the gradient of $B$ is not zero because $A$ is not.
- Only $r\,(d + k)$ numbers are trained instead of $d \cdot k$: at rank 1 on this app's network, at its
  default sizes, that is **0.24 %** of its 2.8 million parameters.
- $\alpha$ scales the update. Hu et al. divide it by $r$ so that changing the rank needs less retuning of
  the learning rate; rsLoRA showed that this also shrinks the update as $r$ grows: after one Adam step
  $\lVert\Delta W\rVert$ falls like $1/\sqrt{r}$ (the **Scaling explorer** measures it).
- Switching the adapter off gives back the original network exactly; merging it into $W$ gives a plain
  network with no extra cost at run time.
""")

st.subheader("The pages")
st.markdown("""
1. **The notebook** — the tutorial notebook this app grows from: what it did, what it printed, its two
   bugs, and what the app does differently.
2. **SVD playground** — why a low rank can be enough: build a matrix of a chosen rank, keep *r* singular
   values, and see how many parameters B and A need and how close B·A stays to W.
3. **Baseline training** — train the notebook's classifier (784 → 1000 → 2000 → 10) and watch the loss fall.
4. **LoRA finetuning** — add an adapter to the trained baseline, finetune it on one class, and see that
   class improve while the original weights stay untouched.
5. **Rank comparison** — the same finetune at several ranks against full finetuning: how much is learned,
   how much is forgotten, for how many trainable parameters.

**Inside the update**, for the questions people ask about LoRA:

- **ΔW inspector** — the update (α/r)·B·A of each layer, its singular values beside W's, what its A reads
  in an image, and how it changes one image's logits; it redraws while the adapter trains.
- **Rank oracle** — how low-rank the update of full finetuning really is, and whether LoRA finds its directions.
- **Initialisation gallery** — why B starts at zero and A random: the notebook's both-zero start never moves.
- **Scaling explorer** — α/r against rsLoRA's α/√r: how the rank changes the size of the update.
- **Learn/forget frontier** — what each rank learns against what it forgets, with a strength slider.

The sidebar on the left chooses the device, the dataset and the random seed for every page.
""")
