"""Adapters as files: our safetensors format, PEFT's on-disk format, zips for the browser, and blends.

An `Adapter` is the trained part alone — per layer A (r×in) and B (out×r), with r and α — detached from
any model, so that it can be saved, checked against a model before anything changes, and combined.
Files are safetensors only: loading never unpickles.
"""
import io
import json
import math
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn
from torch.nn.utils import parametrize

from .lora import (
    LoRAParametrization,
    add_lora,
    copy_model,
    lora_layers,
    lora_of,
    merge_lora,
    original_weight,
    remove_lora,
)
from .train import logits_of

MAX_ADAPTER_BYTES = 16 * 2**20  # rank 64 on every MLP layer is 1.7 MiB; anything far larger is not ours
FORMAT = "lora-lab-adapter/1"
ADAPTER_FILE = "adapter.safetensors"
PEFT_WEIGHTS, PEFT_CONFIG = "adapter_model.safetensors", "adapter_config.json"
PEFT_PREFIX = "base_model.model."  # without it PEFT only warns and keeps its own initial weights
MAX_STRENGTH = 1.5


class AdapterError(ValueError):
    """An adapter that cannot be read, or does not fit the model it is meant for."""


@dataclass(frozen=True, eq=False)
class Adapter:
    rank: int
    alpha: float
    weights: dict[str, tuple[torch.Tensor, torch.Tensor]]  # layer → (A (r, in), B (out, r))
    rslora: bool = False  # ΔW scaled by α/√r rather than α/r

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.weights)

    def __repr__(self) -> str:
        rslora = ", rslora" if self.rslora else ""
        return f"Adapter(rank={self.rank}, alpha={self.alpha:g}{rslora}, targets={self.targets})"


def adapter_of(model: nn.Module) -> Adapter:
    """The model's adapter, copied to the CPU."""
    layers = lora_layers(model)
    if not layers:
        raise AdapterError("the model has no LoRA adapter")
    first = lora_of(next(iter(layers.values())))
    weights = {name: (lora_of(layer).lora_A.detach().cpu().clone(), lora_of(layer).lora_B.detach().cpu().clone())
               for name, layer in layers.items()}
    return Adapter(first.rank, first.alpha, weights, first.rslora)


def check_fits(model: nn.Module, adapter: Adapter) -> None:
    """Raise AdapterError unless every tensor is finite and shaped for the model's layer."""
    if not isinstance(adapter.rank, int) or adapter.rank < 1:
        raise AdapterError(f"rank must be a positive integer, got {adapter.rank!r}")
    if not (isinstance(adapter.alpha, (int, float)) and 0 < adapter.alpha < math.inf):
        raise AdapterError(f"alpha must be a positive number, got {adapter.alpha!r}")
    if not adapter.weights:
        raise AdapterError("the adapter holds no layers")
    modules = dict(model.named_modules())
    for name, (A, B) in adapter.weights.items():
        layer = modules.get(name)
        if not isinstance(layer, nn.Linear):
            raise AdapterError(f"the adapter targets {name!r}, which is not a Linear layer of this model")
        out_f, in_f = layer.out_features, layer.in_features
        if tuple(A.shape) != (adapter.rank, in_f) or tuple(B.shape) != (out_f, adapter.rank):
            raise AdapterError(
                f"{name}: the adapter has A {tuple(A.shape)} and B {tuple(B.shape)}, but this model needs "
                f"A ({adapter.rank}, {in_f}) and B ({out_f}, {adapter.rank}) at rank {adapter.rank}")
        for label, tensor in (("A", A), ("B", B)):
            if not torch.isfinite(tensor).all():
                raise AdapterError(f"{name}: {label} holds NaN or infinite values")


def attach(model: nn.Module, adapter: Adapter) -> nn.Module:
    """Add LoRA to `model` (which must have none) carrying exactly `adapter`'s weights."""
    check_fits(model, adapter)  # before anything on the model changes
    add_lora(model, adapter.rank, adapter.alpha, adapter.targets, rslora=adapter.rslora)
    with torch.no_grad():
        for name, (A, B) in adapter.weights.items():
            lora = lora_of(model.get_submodule(name))
            lora.lora_A.copy_(A)
            lora.lora_B.copy_(B)
    return model


# --- our format ------------------------------------------------------------------------------------

def adapter_bytes(model: nn.Module) -> bytes:
    """The model's adapter as safetensors, with rank, alpha, targets and base shapes in the metadata."""
    adapter = adapter_of(model)
    tensors = {}
    for name, (A, B) in adapter.weights.items():
        tensors[f"{name}.lora_A"], tensors[f"{name}.lora_B"] = A.contiguous(), B.contiguous()
    shapes = {name: list(original_weight(layer).shape) for name, layer in lora_layers(model).items()}
    metadata = {"format": FORMAT, "rank": str(adapter.rank), "alpha": repr(adapter.alpha),
                "rslora": json.dumps(adapter.rslora), "targets": json.dumps(adapter.targets),
                "base_shapes": json.dumps(shapes)}
    return save_safetensors(tensors, metadata=metadata)


def save_adapter(model: nn.Module, path) -> None:
    Path(path).write_bytes(adapter_bytes(model))


def _checked_size(size: int) -> None:
    if size > MAX_ADAPTER_BYTES:
        raise AdapterError(f"the file is {size / 2**20:.1f} MiB; adapters here are at most "
                           f"{MAX_ADAPTER_BYTES / 2**20:.0f} MiB")


def _safetensors_metadata(blob: bytes) -> dict:
    """The header's __metadata__ (safetensors: 8-byte little-endian length, then a JSON header)."""
    length = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8:8 + length]).get("__metadata__") or {}


def _read_safetensors(blob: bytes) -> tuple[dict, dict]:
    _checked_size(len(blob))
    try:
        return load_safetensors(blob), _safetensors_metadata(blob)
    except (SafetensorError, ValueError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AdapterError(f"not a safetensors file ({' '.join(str(err).split())})") from None


def read_adapter_bytes(blob: bytes) -> Adapter:
    tensors, meta = _read_safetensors(blob)
    if meta.get("format") != FORMAT:
        raise AdapterError(f"a safetensors file, but not a LoRA Lab adapter (format {meta.get('format')!r})")
    try:
        rank, alpha, targets = int(meta["rank"]), float(meta["alpha"]), json.loads(meta["targets"])
        rslora = json.loads(meta.get("rslora", "false")) is True
        weights = {name: (tensors[f"{name}.lora_A"].float(), tensors[f"{name}.lora_B"].float()) for name in targets}
    except (KeyError, ValueError, TypeError) as err:
        raise AdapterError(f"the adapter file is incomplete or inconsistent ({err})") from None
    return Adapter(rank, alpha, weights, rslora)


def load_adapter(model: nn.Module, path) -> nn.Module:
    """Attach the adapter saved at `path` to `model`; the model is untouched if the file does not fit."""
    path = Path(path)
    _checked_size(path.stat().st_size)
    return attach(model, read_adapter_bytes(path.read_bytes()))


# --- PEFT's format ---------------------------------------------------------------------------------

def export_peft(model: nn.Module, directory) -> None:
    """Write what `peft.PeftModel.from_pretrained(MLP(), directory)` loads without warnings."""
    adapter = adapter_of(model)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, (A, B) in adapter.weights.items():
        tensors[f"{PEFT_PREFIX}{name}.lora_A.weight"] = A.contiguous()  # (r, in)
        tensors[f"{PEFT_PREFIX}{name}.lora_B.weight"] = B.contiguous()  # (out, r)
    (directory / PEFT_WEIGHTS).write_bytes(save_safetensors(tensors, metadata={"format": "pt"}))
    config = {"peft_type": "LORA", "r": adapter.rank, "lora_alpha": adapter.alpha,
              "target_modules": list(adapter.targets), "lora_dropout": 0.0, "bias": "none",
              "fan_in_fan_out": False, "use_rslora": adapter.rslora, "use_dora": False, "init_lora_weights": True,
              "inference_mode": True, "task_type": None, "base_model_name_or_path": None}
    (directory / PEFT_CONFIG).write_text(json.dumps(config, indent=2))


def _read_peft(config_text: str, weights_blob: bytes) -> Adapter:
    try:
        config = json.loads(config_text)
        if config.get("peft_type") != "LORA":
            raise AdapterError(f"peft_type is {config.get('peft_type')!r}, not 'LORA'")
        rank, alpha, targets = int(config["r"]), float(config["lora_alpha"]), config["target_modules"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise AdapterError(f"{PEFT_CONFIG} is not a PEFT LoRA config ({err})") from None
    for refused in ("use_dora", "rank_pattern", "alpha_pattern"):  # other maths: refused, not half-handled
        if config.get(refused):
            raise AdapterError(f"adapters with {refused} are not supported")
    if isinstance(targets, str):
        raise AdapterError("target_modules as a regular expression is not supported; list the layers")
    tensors, _ = _read_safetensors(weights_blob)
    weights = {}
    for key, tensor in tensors.items():
        name = key.removeprefix(PEFT_PREFIX).replace(".default.", ".")  # adapter name is optional
        for part, index in ((".lora_A.weight", 0), (".lora_B.weight", 1)):
            if name.endswith(part):
                weights.setdefault(name.removesuffix(part), [None, None])[index] = tensor.float()
    missing = [t for t in targets if t not in weights or None in weights[t]]
    if missing:
        raise AdapterError(f"{PEFT_WEIGHTS} lacks lora_A/lora_B weights for {missing}")
    return Adapter(rank, alpha, {t: tuple(weights[t]) for t in targets}, config.get("use_rslora") is True)


def read_peft(directory) -> Adapter:
    directory = Path(directory)
    for name in (PEFT_CONFIG, PEFT_WEIGHTS):
        if not (directory / name).is_file():
            raise AdapterError(f"{directory} has no {name}")
    _checked_size((directory / PEFT_WEIGHTS).stat().st_size)
    return _read_peft((directory / PEFT_CONFIG).read_text(), (directory / PEFT_WEIGHTS).read_bytes())


def import_peft(model: nn.Module, directory) -> nn.Module:
    """Attach an adapter that PEFT saved with `save_pretrained`."""
    return attach(model, read_peft(directory))


# --- zips and uploads for the browser --------------------------------------------------------------

def adapter_zip(model: nn.Module, peft_format: bool = False) -> bytes:
    """A zip holding either adapter.safetensors or PEFT's adapter_model.safetensors + adapter_config.json."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        if peft_format:
            with tempfile.TemporaryDirectory() as tmp:
                export_peft(model, tmp)
                for name in (PEFT_WEIGHTS, PEFT_CONFIG):
                    zf.write(Path(tmp) / name, name)
        else:
            zf.writestr(ADAPTER_FILE, adapter_bytes(model))
    return buffer.getvalue()


def read_upload(filename: str, blob: bytes) -> Adapter:
    """An uploaded .safetensors or .zip (either format) as an Adapter, or AdapterError saying why not."""
    _checked_size(len(blob))
    if not filename.lower().endswith(".zip"):
        return read_adapter_bytes(blob)
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            names = {Path(n).name: n for n in zf.namelist()}
            if sum(zf.getinfo(n).file_size for n in names.values()) > MAX_ADAPTER_BYTES:
                raise AdapterError("the zip unpacks to more than an adapter can be")
            if PEFT_CONFIG in names and PEFT_WEIGHTS in names:
                return _read_peft(zf.read(names[PEFT_CONFIG]).decode(), zf.read(names[PEFT_WEIGHTS]))
            if ADAPTER_FILE in names:
                return read_adapter_bytes(zf.read(names[ADAPTER_FILE]))
    except (zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise AdapterError(f"not a readable zip ({err})") from None
    raise AdapterError(f"the zip holds neither {ADAPTER_FILE} nor {PEFT_CONFIG} with {PEFT_WEIGHTS}")


# --- several adapters on one base ------------------------------------------------------------------

def blend(base: nn.Module, adapters: list[Adapter], strengths: list[float]) -> nn.Module:
    """A merged copy of `base` with W + Σ sᵢ·(αᵢ/rᵢ)·Bᵢ·Aᵢ: switching and blending need no retraining.

    Each adapter becomes one LoRA parametrization, chained on the same weight, so ΔW is computed by
    the same `delta_weight` as everywhere else; the strength scales it.
    """
    if len(adapters) != len(strengths):
        raise ValueError(f"{len(adapters)} adapters but {len(strengths)} strengths")
    for s in strengths:
        if not 0 <= s <= MAX_STRENGTH:
            raise ValueError(f"strength must be in 0..{MAX_STRENGTH}, got {s!r}")
    model = copy_model(base)
    for adapter, strength in zip(adapters, strengths, strict=True):
        check_fits(model, adapter)
        if strength == 0:
            continue
        for name, (A, B) in adapter.weights.items():
            layer = model.get_submodule(name)
            lora = LoRAParametrization(layer.out_features, layer.in_features, adapter.rank, adapter.alpha,
                                       rslora=adapter.rslora)
            with torch.no_grad():
                lora.lora_A.copy_(A)
                lora.lora_B.copy_(B)
            lora.scale *= strength
            parametrize.register_parametrization(layer, "weight", lora.to(layer.weight.device))
    return merge_lora(model)


# --- merge precision -------------------------------------------------------------------------------

MERGE_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@torch.no_grad()  # not inference_mode: removing a parametrization needs ordinary tensors
def merge_precision(model: nn.Module, x: torch.Tensor, dtypes=MERGE_DTYPES, reference=None) -> list[dict]:
    """Merge W + ΔW in each dtype: the largest error against the float64 sum, and predictions that flip.

    Every weight and bias is stored in the dtype (the merge adds in it); the forward runs in float32,
    so what differs is the stored precision alone. Flips count against the parametrized float32 model's
    predictions: `reference` when they were computed already.
    """
    model.eval()
    reference_predictions = logits_of(model, x).argmax(dim=1) if reference is None else reference
    layers = lora_layers(model)
    parts = {name: (original_weight(layer), lora_of(layer).delta_weight()) for name, layer in layers.items()}
    rows = []
    for dtype in dtypes:
        merged = remove_lora(copy_model(model))
        error = 0.0
        for name, (W, delta) in parts.items():
            low = W.to(dtype) + delta.to(dtype)  # the merge, done in the low precision
            merged.get_submodule(name).weight.copy_(low)
            error = max(error, float((low.double() - (W.double() + delta.double())).abs().max()))
        for param in merged.parameters():
            param.copy_(param.to(dtype))  # stored in dtype, computed in float32
        flipped = int((logits_of(merged, x).argmax(dim=1) != reference_predictions).sum())
        rows.append({"dtype": str(dtype).removeprefix("torch."), "max_abs_error": error, "flipped": flipped})
    return rows
