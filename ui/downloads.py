"""The LoRA page's files for use outside the app: the baseline, and the Python that loads it with the
adapter (lora_core.export), named as the page offers them."""
import lora_core as lc
from lora_core import export


def baseline_name(held: dict, dataset: str) -> str:
    run = held["run"]
    c = run.config
    return f"lora-lab-baseline-{dataset}-{c.hidden1}x{c.hidden2}-seed{c.seed}-{len(run.losses)}steps.safetensors"


def baseline_data(base: lc.BaselineRun, dataset: str):
    """The baseline file, made when the button is clicked (megabytes: not on every rerun)."""
    return lambda: export.baseline_bytes(base.model, dataset)


def peft_zip_name(result: dict) -> str:
    return f"{result['stem']}-peft.zip"


def snippets(held: dict, result: dict, dataset: str) -> dict[str, str]:
    """Route → Python that scores the current adapter on its baseline, as the page does."""
    names = baseline_name(held, dataset), peft_zip_name(result), dataset
    return {"With PEFT": export.peft_snippet(*names), "With lora_core": export.lora_core_snippet(*names)}
