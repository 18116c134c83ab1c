import streamlit as st

import lora_core as lc

TUNE = lc.FinetuneConfig()  # the app's default finetune, as the LoRA page starts

st.title("The notebook")
st.markdown("LoRA Lab grows from a tutorial notebook, *LoRA from scratch*, that builds LoRA with "
            "`torch.nn.utils.parametrize` on an MNIST classifier. The pages cite it often; this is what it "
            "did, what it printed, the two bugs that made its finetuning a no-op, and what the app changes.")

st.subheader("What it did, and what it printed")
st.markdown("Every line in a grey box is the notebook's own output, copied as printed (typos included).")
st.markdown("**1. An SVD of a 10×10 matrix of rank 2.** It builds W from two random thin matrices, keeps its "
            "two singular values as B = U·Σ (10×2) and A = Vᵀ (2×10), and checks that y = Wx + b and "
            "y′ = B·A·x + b agree. The **SVD playground** starts from the same matrix size and rank.")
st.code("Total number of parameters of W :  100\ntotal number of parameters for B and A :  40", language=None)
st.markdown("**2. A baseline classifier.** 784 → 1000 → 2000 → 10 with ReLU, trained with Adam (learning rate "
            "0.001) for one epoch over the 60,000 MNIST training images in batches of 10:")
st.code("Epoch 1: 100%|██████████| 6000/6000 [00:55<00:00, 108.81it/s, loss=0.242]\n"
        "Accuracy : 0.961\n"
        "wrong counts fopr the digit 2 : 88", language=None)
st.markdown("Digit 2 had the most wrong test images (88; the next were 7 and 8 with 50 each), so the notebook "
            "finetunes on it.")
st.markdown("**3. LoRA on all three layers**, rank 1 and α = 1, through a parametrization W′ = W + (α/r)·B·A:")
st.code("Params introduced by LoRA : 6,794\nPrams increment : 0.242%", language=None)
st.markdown("**4. Finetuning on digit 2** with every original weight frozen, for what should be 100 steps, "
            "then the same test. It printed exactly what it printed before finetuning:")
st.code("Accuracy : 0.961\nwrong counts fopr the digit 2 : 88", language=None)

st.subheader("Its two bugs")
st.markdown(
    "**Both LoRA matrices start at zero** (`lora_a = torch.zeros(…)`, `lora_b = torch.zeros(…)`). The layer "
    "computes W·x + (α/r)·B·(A·x). The gradient of B is (α/r)·g·(A·x)ᵀ, zero while A = 0; the gradient of A is "
    "(α/r)·Bᵀ·g·xᵀ, zero while B = 0. Both are zero at the start, so Adam never moves either: nothing is ever "
    "learned, which is why the accuracy and the wrong counts did not change. The **Initialisation gallery** "
    "runs this start beside the working ones.")
st.markdown(
    "**Its step limit stops after one step.** The loop ends with "
    "`if total_iterations_limit is not None and total_iterations_limit >= total_iterations: return` — with a "
    "limit of 100, the check 100 ≥ 1 is already true after the first step. (Its own progress bar stopped at "
    "`0/100`.) Even a working adapter would have trained one step.")

st.subheader("What LoRA Lab does instead")
st.markdown(
    f"""
- **A starts random, B at zero** (kaiming-uniform for A, as loralib and PEFT do): a fresh adapter changes
  nothing, yet B's gradient is not zero because A is not, so it learns from the first step.
- **The step limit counts steps**: the LoRA page's default trains {TUNE.steps} steps of {TUNE.batch_size}
  images, rank {TUNE.rank}, α {TUNE.alpha:g}, learning rate {TUNE.lr:g}, on digit
  {", ".join(map(str, TUNE.digits))}.
- **The data ships with the app**: a bundled sample of real MNIST (all 10,000 test images, 5,000 training
  images) works offline and is the default; full MNIST or Fashion-MNIST is used only when chosen in the
  sidebar (downloaded when missing; the sample stands in when it cannot be had). Accuracies here are therefore
  not the notebook's 0.961.
- **Training trains LoRA's factors directly** (W·x + (α/r)·B·(A·x)) and evaluates whole batches at once;
  the **LoRA finetuning** page proves the original weights unchanged, the adapter switch exact, and the
  merged network equal to the adapted one.
- **Full finetuning is the reference** on the Rank comparison and Rank oracle pages, at its own smaller
  learning rate.
""")
