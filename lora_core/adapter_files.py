"""LoRA Lab's adapter file: one safetensors file, rank, alpha, targets and flags in its metadata.

Also the checks every adapter file passes (PEFT's too): a size cap, a readable safetensors header, and
rank, alpha and layer names refused with a message that quotes the bad value. Loading never unpickles.
"""
import json
import math
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from .adapters import Adapter, AdapterError, adapter_of, attach, shown
from .checkpoints import safetensors_metadata
from .lora import lora_layers, original_weight

MAX_ADAPTER_BYTES = 16 * 2**20  # rank 64 on every MLP layer is 1.7 MiB; anything far larger is not ours
FORMAT = "lora-lab-adapter/1"
ADAPTER_FILE = "adapter.safetensors"
# PEFT's two files, named here so that its weights uploaded alone get a message saying what is missing
PEFT_WEIGHTS, PEFT_CONFIG = "adapter_model.safetensors", "adapter_config.json"


def adapter_bytes(model: nn.Module) -> bytes:
    """The model's adapter as safetensors, with rank, alpha, targets and base shapes in the metadata."""
    adapter = adapter_of(model)
    tensors = {}
    for name, (A, B) in adapter.weights.items():
        tensors[f"{name}.lora_A"], tensors[f"{name}.lora_B"] = A.contiguous(), B.contiguous()
        if adapter.magnitudes is not None:
            tensors[f"{name}.lora_magnitude"] = adapter.magnitudes[name].contiguous()
    shapes = {name: list(original_weight(layer).shape) for name, layer in lora_layers(model).items()}
    metadata = {"format": FORMAT, "rank": str(adapter.rank), "alpha": repr(adapter.alpha),
                "rslora": json.dumps(adapter.rslora), "dora": json.dumps(adapter.magnitudes is not None),
                "targets": json.dumps(adapter.targets),
                "base_shapes": json.dumps(shapes)}
    return save_safetensors(tensors, metadata=metadata)


def save_adapter(model: nn.Module, path) -> None:
    Path(path).write_bytes(adapter_bytes(model))


def checked_size(size: int) -> None:
    if size > MAX_ADAPTER_BYTES:
        raise AdapterError(f"the file is {size / 2**20:.1f} MiB; adapters here are at most "
                           f"{MAX_ADAPTER_BYTES / 2**20:.0f} MiB")


def parse_json(text, what: str):
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # bad JSON or bytes (ValueErrors), or nesting deeper than Python recurses
        raise AdapterError(f"{what} is not valid JSON") from None


def checked_rank(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AdapterError(f"{where}: the rank must be a whole number of at least 1, got {shown(value)}")
    return value


def checked_alpha(value, where: str) -> float:
    try:
        alpha = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an integer too large for a float
        alpha = math.inf
    if not 0 < alpha < math.inf:  # also refuses NaN
        raise AdapterError(f"{where}: alpha must be a positive finite number, got {shown(value)}")
    return alpha


def layer_names(value, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(name, str) for name in value):
        raise AdapterError(f"{where}: the target layers must be a list of layer names, got {shown(value)}")
    return tuple(dict.fromkeys(value))


def _safetensors_metadata(blob: bytes) -> dict:
    """The header's __metadata__ ({} when it has none)."""
    try:
        return safetensors_metadata(blob)
    except (ValueError, RecursionError):  # bad JSON or bytes, or nesting deeper than Python recurses
        raise AdapterError("the safetensors header is not valid JSON") from None


def read_safetensors(blob: bytes) -> tuple[dict, dict]:
    checked_size(len(blob))
    try:
        tensors = load_safetensors(blob)
    except (SafetensorError, ValueError, UnicodeDecodeError):
        raise AdapterError("not a safetensors file: its header or its tensors cannot be read") from None
    return tensors, _safetensors_metadata(blob)


def _is_peft_weights(tensors: dict, meta: dict) -> bool:
    return meta.get("format") == "pt" or any(key.endswith(".lora_A.weight") for key in tensors)


def read_adapter_bytes(blob: bytes) -> Adapter:
    tensors, meta = read_safetensors(blob)
    if meta.get("format") != FORMAT:
        if _is_peft_weights(tensors, meta):
            raise AdapterError(f"this looks like PEFT's {PEFT_WEIGHTS} on its own. PEFT's adapter needs its "
                               f"{PEFT_CONFIG} beside it (rank, alpha and target layers are there): zip the "
                               "folder holding both files and upload the zip")
        raise AdapterError(f"a safetensors file, but not a LoRA Lab adapter (format {shown(meta.get('format'))})")
    where = "the adapter's metadata"
    missing = [key for key in ("rank", "alpha", "targets") if key not in meta]
    if missing:
        raise AdapterError(f"the adapter file is incomplete: its metadata lacks {', '.join(missing)}")
    text = meta["rank"]
    rank = checked_rank(int(text) if text.isascii() and text.isdigit() and len(text) < 10 else text, where)
    try:
        alpha = checked_alpha(float(meta["alpha"]), where)
    except ValueError:
        raise AdapterError(f"{where}: alpha must be a positive finite number, got {shown(meta['alpha'])}") from None
    targets = layer_names(parse_json(meta["targets"], "the adapter's list of target layers"), where)
    rslora, dora = (parse_json(meta.get(key, "false"), f"the adapter's {key} flag") for key in ("rslora", "dora"))
    for key, flag in (("rslora", rslora), ("dora", dora)):
        if not isinstance(flag, bool):
            raise AdapterError(f"{where}: {key} must be true or false, got {shown(flag)}")
    parts = ("A", "B", "magnitude") if dora else ("A", "B")
    absent = [f"{name}.lora_{m}" for name in targets for m in parts if f"{name}.lora_{m}" not in tensors]
    if absent:
        raise AdapterError(f"the adapter file is incomplete: it lacks the tensors {shown(absent)}")
    weights = {name: (tensors[f"{name}.lora_A"].float(), tensors[f"{name}.lora_B"].float()) for name in targets}
    magnitudes = {name: tensors[f"{name}.lora_magnitude"].float() for name in targets} if dora else None
    return Adapter(rank, alpha, weights, rslora, magnitudes)


def load_adapter(model: nn.Module, path) -> nn.Module:
    """Attach the adapter saved at `path` to `model`; the model is untouched if the file does not fit."""
    path = Path(path)
    checked_size(path.stat().st_size)
    return attach(model, read_adapter_bytes(path.read_bytes()))
