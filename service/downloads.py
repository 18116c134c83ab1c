"""The LoRA page's files for use outside the app: the baseline, the test images, and the Python that loads
them with the adapter (lora_core.export), named as the page offers them."""
import lora_core as lc
from lora_core import export


def baseline_name(held: dict, dataset: str) -> str:
    run = held["run"]
    c = run.config
    return f"lora-lab-baseline-{dataset}-{c.hidden1}x{c.hidden2}-seed{c.seed}-{len(run.losses)}steps.safetensors"


def baseline_data(base: lc.BaselineRun, dataset: str):
    """The baseline file, made when the button is clicked (megabytes: not on every rerun)."""
    return lambda: export.baseline_bytes(base.model, dataset)


def peft_zip_name(stem: str) -> str:
    """The PEFT zip of the adapter whose downloads are named `stem`."""
    return f"{stem}-peft.zip"


def test_images_name(dataset: str) -> str:
    return f"{dataset}-test-images.npz"


def test_images_data(data: lc.Dataset):
    """The dataset's test images as an .npz, made when the button is clicked."""
    return lambda: export.test_images_bytes(data.test_x, data.test_y)


def snippet(held: dict, stem: str, dataset: str) -> str:
    """Python that scores the current adapter (its downloads named `stem`) on its baseline and the offered test
    images, as the page does."""
    return export.peft_snippet(baseline_name(held, dataset), peft_zip_name(stem), test_images_name(dataset))
