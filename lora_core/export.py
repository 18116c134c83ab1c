"""A trained baseline as a file to use anywhere, and the Python that uses it with a downloaded adapter.

The file is safetensors (never unpickled): the MLP's state_dict, and in its metadata what rebuilding
and feeding the network needs — the layer sizes and the input normalisation. The snippet loads it with
the PEFT adapter and the test images the LoRA page offers, by plain torch + safetensors + peft + numpy
(nothing of this project), and prints the test accuracy the page shows.
"""
import io
import json
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from .checkpoints import safetensors_metadata
from .data import MEAN, STD
from .model import IMAGE_PIXELS, MLP, NUM_CLASSES

FORMAT = "lora-lab-baseline/1"
EVAL_BATCH = 1_000  # as lora_core.evaluate: the same batches give the same rounding


def baseline_bytes(model: MLP, dataset: str) -> bytes:
    """The baseline's weights as safetensors; metadata: format, layer_sizes (JSON), mean, std, dataset."""
    tensors = {name: value.detach().cpu().contiguous() for name, value in model.state_dict().items()}
    sizes = [IMAGE_PIXELS, model.linear1.out_features, model.linear2.out_features, NUM_CLASSES]
    metadata = {"format": FORMAT, "layer_sizes": json.dumps(sizes), "mean": repr(MEAN), "std": repr(STD),
                "dataset": dataset,
                "input": "a 28x28 image as 784 pixels p in 0..255, fed as (p / 255 - mean) / std"}
    return save_safetensors(tensors, metadata=metadata)


def read_baseline(blob: bytes) -> tuple[MLP, dict]:
    """(the MLP with the file's weights, its metadata); ValueError saying why when it is not a baseline."""
    try:
        tensors = load_safetensors(blob)
        metadata = safetensors_metadata(blob)
        sizes = json.loads(metadata.get("layer_sizes", "null"))
    except (SafetensorError, ValueError, UnicodeDecodeError, AttributeError) as err:
        raise ValueError(f"not a readable safetensors file ({err})") from None
    if metadata.get("format") != FORMAT:
        raise ValueError(f"not a LoRA Lab baseline (format {metadata.get('format')!r})")
    if not (isinstance(sizes, list) and len(sizes) == 4 and all(type(s) is int and s > 0 for s in sizes)
            and sizes[0] == IMAGE_PIXELS and sizes[3] == NUM_CLASSES):
        raise ValueError(f"layer_sizes must be [784, hidden1, hidden2, 10], got {sizes!r}")
    model = MLP(sizes[1], sizes[2])
    try:
        model.load_state_dict(tensors)
    except RuntimeError as err:
        raise ValueError(f"the weights do not fit layer sizes {sizes} ({err})") from None
    return model, metadata


def load_baseline(path) -> nn.Module:
    """The baseline saved at `path`, frozen, ready for an adapter."""
    model, _ = read_baseline(Path(path).read_bytes())
    return model.requires_grad_(False).eval()


def test_images_bytes(test_x: torch.Tensor, test_y: torch.Tensor) -> bytes:
    """A dataset's test images as the page offers them: an .npz of `pixels` (N, 28, 28) uint8 and `labels`
    (N,) int64, the 0..255 pixels recovered from the normalised ones (exact: the rounding is far below 0.5)."""
    pixels = (test_x.detach().cpu().double() * STD + MEAN).mul(255).round().clamp(0, 255).to(torch.uint8)
    out = io.BytesIO()
    np.savez_compressed(out, pixels=pixels.reshape(-1, 28, 28).numpy(), labels=test_y.cpu().numpy())
    return out.getvalue()


def peft_snippet(baseline_file: str, adapter_zip: str, test_file: str) -> str:
    """Python that needs only torch, safetensors, peft and numpy: rebuild, load, adapt, score.

    Written to run both as a file and pasted into Python's prompt: no blank line inside a block (the prompt
    would end the block there) and one after each block (the prompt needs it to end one)."""
    return f'''# Needs: pip install torch safetensors peft numpy
# Save the three downloads into one folder; run this there (python score.py, or paste it into python).
import json
import zipfile
import numpy as np
import torch
from peft import PeftModel
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

BASELINE = {baseline_file!r}  # "Download the baseline"
ADAPTER_ZIP = {adapter_zip!r}  # "Download for PEFT"
TEST_IMAGES = {test_file!r}  # "Download the test images"
with safe_open(BASELINE, "pt") as f:
    info = f.metadata()

sizes = json.loads(info["layer_sizes"])  # [784, hidden 1, hidden 2, 10]
mean, std = float(info["mean"]), float(info["std"])
class MLP(nn.Module):  # LoRA Lab's classifier: 784 → hidden 1 → hidden 2 → 10, with ReLU
    def __init__(self, sizes):
        super().__init__()
        self.linear1 = nn.Linear(sizes[0], sizes[1])
        self.linear2 = nn.Linear(sizes[1], sizes[2])
        self.linear3 = nn.Linear(sizes[2], sizes[3])
    def forward(self, x):
        return self.linear3(torch.relu(self.linear2(torch.relu(self.linear1(x)))))

model = MLP(sizes)
model.load_state_dict(load_file(BASELINE))
zipfile.ZipFile(ADAPTER_ZIP).extractall("adapter")
model = PeftModel.from_pretrained(model, "adapter").eval()
with np.load(TEST_IMAGES) as f:
    pixels, labels = torch.from_numpy(f["pixels"]), torch.from_numpy(f["labels"])

x = pixels.reshape(len(pixels), -1).float().div(255).sub(mean).div(std)
with torch.no_grad():
    predictions = torch.cat([model(batch).argmax(1) for batch in x.split({EVAL_BATCH})])

right = int((predictions == labels).sum())
print(f"test accuracy {{right / len(labels):.2%}} ({{right:,}} of {{len(labels):,}} test images right)")
'''
