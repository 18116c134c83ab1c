"""Adapters as files: our safetensors format, PEFT's on-disk format, zips for the browser, and blends.

An `Adapter` is the trained part alone — per layer A (r×in) and B (out×r), with r and α, and DoRA's
magnitudes — detached from any model, so that it can be saved, checked against a model before anything
changes, and combined. It always applies to the base model's own weights: an adapter whose init moved part
of W into it (PiSSA, OLoRA) is converted as PEFT's `path_initial_model_for_weight_conversion` does.
Files are safetensors only: loading never unpickles.
"""
import io
import json
import logging
import math
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn
from torch.nn.utils import parametrize

from .checkpoints import safetensors_metadata
from .lora import (
    LoRAParametrization,
    add_lora,
    base_relative_factors,
    copy_model,
    lora_layers,
    lora_of,
    merge_lora,
    moved_part,
    original_weight,
    remove_lora,
)
from .train import logits_of

MAX_ADAPTER_BYTES = 16 * 2**20  # rank 64 on every MLP layer is 1.7 MiB; anything far larger is not ours
FORMAT = "lora-lab-adapter/1"
ADAPTER_FILE = "adapter.safetensors"
PEFT_WEIGHTS, PEFT_CONFIG = "adapter_model.safetensors", "adapter_config.json"
PEFT_PREFIX = "base_model.model."  # without it PEFT only warns and keeps its own initial weights
PEFT_MAGNITUDE = "lora_magnitude_vector"  # DoRA's m in PEFT's files
MAX_STRENGTH = 1.5
MAX_ZIP_ENTRIES = 64  # an adapter zip holds one or two files; thousands of entries are a zip built to hurt
SHOWN_CHARS = 60  # a value from a file is quoted in a message up to this length

log = logging.getLogger(__name__)


class AdapterError(ValueError):
    """An adapter that cannot be read, or does not fit the model it is meant for."""


@dataclass(frozen=True, eq=False)
class Adapter:
    rank: int
    alpha: float
    weights: dict[str, tuple[torch.Tensor, torch.Tensor]]  # layer → (A (r, in), B (out, r))
    rslora: bool = False  # ΔW scaled by α/√r rather than α/r
    magnitudes: dict[str, torch.Tensor] | None = None  # DoRA: layer → m (out,); None for plain LoRA

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.weights)

    def __repr__(self) -> str:
        rslora = ", rslora" if self.rslora else ""
        dora = ", dora" if self.magnitudes is not None else ""
        return f"Adapter(rank={self.rank}, alpha={self.alpha:g}{rslora}{dora}, targets={self.targets})"


def adapter_of(model: nn.Module) -> Adapter:
    """The model's adapter, copied to the CPU, for the base model's own weights.

    After PiSSA or OLoRA the layers hold W_res = W − s·B₀·A₀, so the adapter becomes PEFT's conversion
    A′ = [A; A₀], B′ = [B | −B₀] at rank 2r, with α doubled (×√2 with rsLoRA) to keep s: on W it computes
    W + s·(B·A − B₀·A₀) = W_res + s·B·A, the trained network. DoRA's norms see that same sum, so m carries over.
    """
    layers = lora_layers(model)
    if not layers:
        raise AdapterError("the model has no LoRA adapter")
    first = lora_of(next(iter(layers.values())))
    weights = {name: tuple(t.detach().cpu().clone() for t in base_relative_factors(lora_of(layer)))
               for name, layer in layers.items()}
    rank, alpha = first.rank, first.alpha
    if moved_part(first) is not None:
        rank, alpha = 2 * rank, alpha * (2 ** 0.5 if first.rslora else 2)
    magnitudes = ({name: lora_of(layer).lora_magnitude.detach().cpu().clone() for name, layer in layers.items()}
                  if first.dora else None)
    return Adapter(rank, alpha, weights, first.rslora, magnitudes)


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
            raise AdapterError(f"the adapter targets {_shown(name)}, which is not a Linear layer of this model")
        out_f, in_f = layer.out_features, layer.in_features
        if tuple(A.shape) != (adapter.rank, in_f) or tuple(B.shape) != (out_f, adapter.rank):
            raise AdapterError(
                f"{name}: the adapter has A {tuple(A.shape)} and B {tuple(B.shape)}, but this model needs "
                f"A ({adapter.rank}, {in_f}) and B ({out_f}, {adapter.rank}) at rank {adapter.rank}")
        for label, tensor in (("A", A), ("B", B)):
            if not torch.isfinite(tensor).all():
                raise AdapterError(f"{name}: {label} holds NaN or infinite values")
        _check_magnitude(adapter, name, out_f)
        lora = LoRAParametrization(out_f, in_f, adapter.rank, adapter.alpha, rslora=adapter.rslora)
        with torch.no_grad():
            lora.lora_A.copy_(A)
            lora.lora_B.copy_(B)
            if not torch.isfinite(lora.delta_weight()).all():  # finite A and B, but α·B·A overflows
                raise AdapterError(f"{name}: the update ΔW = (α/r)·B·A is too large to compute (α = "
                                   f"{adapter.alpha:g}): it holds infinite or NaN values")


def _check_magnitude(adapter: Adapter, name: str, out_features: int) -> None:
    if adapter.magnitudes is None:
        return
    m = adapter.magnitudes.get(name)
    if m is None:
        raise AdapterError(f"{name}: the DoRA adapter has no magnitude vector for this layer")
    if tuple(m.shape) != (out_features,):
        raise AdapterError(f"{name}: the DoRA magnitude has shape {tuple(m.shape)}, but this layer needs "
                           f"({out_features},): one per output neuron")
    if not torch.isfinite(m).all():
        raise AdapterError(f"{name}: the DoRA magnitude holds NaN or infinite values")


@torch.no_grad()
def check_outputs(model: nn.Module, x: torch.Tensor) -> None:
    """Raise AdapterError unless the model carrying an adapter gives finite outputs on the probe batch `x`."""
    if not torch.isfinite(model(x)).all():
        raise AdapterError("with this adapter the network's outputs on test images are infinite or NaN: "
                           "its update is far too large for these weights")


def attach(model: nn.Module, adapter: Adapter) -> nn.Module:
    """Add LoRA to `model` (which must have none) carrying exactly `adapter`'s weights."""
    check_fits(model, adapter)  # before anything on the model changes
    add_lora(model, adapter.rank, adapter.alpha, adapter.targets, rslora=adapter.rslora,
             dora=adapter.magnitudes is not None)
    with torch.no_grad():
        for name, (A, B) in adapter.weights.items():
            lora = lora_of(model.get_submodule(name))
            lora.lora_A.copy_(A)
            lora.lora_B.copy_(B)
            if adapter.magnitudes is not None:
                lora.lora_magnitude.copy_(adapter.magnitudes[name])
    return model


# --- our format ------------------------------------------------------------------------------------

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


def _checked_size(size: int) -> None:
    if size > MAX_ADAPTER_BYTES:
        raise AdapterError(f"the file is {size / 2**20:.1f} MiB; adapters here are at most "
                           f"{MAX_ADAPTER_BYTES / 2**20:.0f} MiB")


def _shown(value) -> str:
    """A value read from a file, quoted for a message and cut short: a file may hold megabytes of it."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 1] + "…"


def _json(text, what: str):
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # bad JSON or bytes (ValueErrors), or nesting deeper than Python recurses
        raise AdapterError(f"{what} is not valid JSON") from None


def _rank(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AdapterError(f"{where}: the rank must be a whole number of at least 1, got {_shown(value)}")
    return value


def _alpha(value, where: str) -> float:
    try:
        alpha = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an integer too large for a float
        alpha = math.inf
    if not 0 < alpha < math.inf:  # also refuses NaN
        raise AdapterError(f"{where}: alpha must be a positive finite number, got {_shown(value)}")
    return alpha


def _layer_names(value, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(name, str) for name in value):
        raise AdapterError(f"{where}: the target layers must be a list of layer names, got {_shown(value)}")
    return tuple(dict.fromkeys(value))


def _safetensors_metadata(blob: bytes) -> dict:
    """The header's __metadata__ ({} when it has none)."""
    try:
        return safetensors_metadata(blob)
    except (ValueError, RecursionError):  # bad JSON or bytes, or nesting deeper than Python recurses
        raise AdapterError("the safetensors header is not valid JSON") from None


def _read_safetensors(blob: bytes) -> tuple[dict, dict]:
    _checked_size(len(blob))
    try:
        tensors = load_safetensors(blob)
    except (SafetensorError, ValueError, UnicodeDecodeError):
        raise AdapterError("not a safetensors file: its header or its tensors cannot be read") from None
    return tensors, _safetensors_metadata(blob)


def _is_peft_weights(tensors: dict, meta: dict) -> bool:
    return meta.get("format") == "pt" or any(key.endswith(".lora_A.weight") for key in tensors)


def read_adapter_bytes(blob: bytes) -> Adapter:
    tensors, meta = _read_safetensors(blob)
    if meta.get("format") != FORMAT:
        if _is_peft_weights(tensors, meta):
            raise AdapterError(f"this looks like PEFT's {PEFT_WEIGHTS} on its own. PEFT's adapter needs its "
                               f"{PEFT_CONFIG} beside it (rank, alpha and target layers are there): zip the "
                               "folder holding both files and upload the zip")
        raise AdapterError(f"a safetensors file, but not a LoRA Lab adapter (format {_shown(meta.get('format'))})")
    where = "the adapter's metadata"
    missing = [key for key in ("rank", "alpha", "targets") if key not in meta]
    if missing:
        raise AdapterError(f"the adapter file is incomplete: its metadata lacks {', '.join(missing)}")
    text = meta["rank"]
    rank = _rank(int(text) if text.isascii() and text.isdigit() and len(text) < 10 else text, where)
    try:
        alpha = _alpha(float(meta["alpha"]), where)
    except ValueError:
        raise AdapterError(f"{where}: alpha must be a positive finite number, got {_shown(meta['alpha'])}") from None
    targets = _layer_names(_json(meta["targets"], "the adapter's list of target layers"), where)
    rslora, dora = (_json(meta.get(key, "false"), f"the adapter's {key} flag") for key in ("rslora", "dora"))
    for key, flag in (("rslora", rslora), ("dora", dora)):
        if not isinstance(flag, bool):
            raise AdapterError(f"{where}: {key} must be true or false, got {_shown(flag)}")
    parts = ("A", "B", "magnitude") if dora else ("A", "B")
    absent = [f"{name}.lora_{m}" for name in targets for m in parts if f"{name}.lora_{m}" not in tensors]
    if absent:
        raise AdapterError(f"the adapter file is incomplete: it lacks the tensors {_shown(absent)}")
    weights = {name: (tensors[f"{name}.lora_A"].float(), tensors[f"{name}.lora_B"].float()) for name in targets}
    magnitudes = {name: tensors[f"{name}.lora_magnitude"].float() for name in targets} if dora else None
    return Adapter(rank, alpha, weights, rslora, magnitudes)


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
        if adapter.magnitudes is not None:  # PEFT's key in its files (in memory it adds .default.weight)
            tensors[f"{PEFT_PREFIX}{name}.{PEFT_MAGNITUDE}"] = adapter.magnitudes[name].contiguous()  # (out,)
    (directory / PEFT_WEIGHTS).write_bytes(save_safetensors(tensors, metadata={"format": "pt"}))
    config = {"peft_type": "LORA", "r": adapter.rank, "lora_alpha": adapter.alpha,
              "target_modules": list(adapter.targets), "lora_dropout": 0.0, "bias": "none",
              "fan_in_fan_out": False, "use_rslora": adapter.rslora, "use_dora": adapter.magnitudes is not None,
              "init_lora_weights": True,
              "inference_mode": True, "task_type": None, "base_model_name_or_path": None}
    (directory / PEFT_CONFIG).write_text(json.dumps(config, indent=2))


# PEFT config fields that do not change what a saved adapter computes; every other field must be off
# (absent, null, false, empty or "none"), or the adapter is refused, as PEFT refuses what it cannot do.
PEFT_NEUTRAL = {"task_type", "peft_type", "auto_mapping", "peft_version", "base_model_name_or_path", "revision",
                "inference_mode", "r", "target_modules", "lora_alpha", "lora_dropout", "use_rslora",
                "init_lora_weights", "runtime_config", "megatron_core", "qalora_group_size", "bias", "use_dora"}
PEFT_PLAIN_INITS = (True, False, None, "gaussian", "orthogonal")
# PEFT 0.21's starts that subtract s·B₀·A₀ from the base weights (loftq quantises them instead): an adapter
# trained from one fits those changed weights. eva (B zero) and mica (A zero) leave W alone, but are not read.
PEFT_BASE_CHANGING = ("pissa", "corda", "olora", "lora_ga", "loftq")


def _check_init(init, rank: int) -> None:
    """AdapterError for a PEFT start that LoRA Lab does not read, or that PEFT itself refuses."""
    if init == "orthogonal" and rank % 2:
        raise AdapterError(f"{PEFT_CONFIG}: init_lora_weights = 'orthogonal' needs an even rank, got r = {rank}: "
                           "PEFT itself refuses to load it")
    if init in PEFT_PLAIN_INITS:
        return
    shown = f"{PEFT_CONFIG}: init_lora_weights = {_shown(init)} is not supported"
    if isinstance(init, str) and init.lower().startswith(PEFT_BASE_CHANGING):
        raise AdapterError(f"{shown}: PEFT starts it by changing the base weights, so the adapter fits those "
                           "changed weights and not this network. Save it from PEFT with save_pretrained(..., "
                           "path_initial_model_for_weight_conversion=...): that converts it to plain LoRA on the "
                           "original weights, which LoRA Lab reads")
    raise AdapterError(f"{shown}: LoRA Lab reads adapters started as plain LoRA (true, false, 'gaussian' or "
                       "'orthogonal')")


def _peft_config(config) -> tuple[int, float, tuple[str, ...], bool, bool]:
    """(rank, alpha, targets, rslora, dora) of a PEFT LoRA config, or AdapterError naming what is not supported."""
    if not isinstance(config, dict):
        raise AdapterError(f"{PEFT_CONFIG} must hold a JSON object, got {_shown(config)}")
    if config.get("peft_type") != "LORA":
        raise AdapterError(f"{PEFT_CONFIG}: peft_type is {_shown(config.get('peft_type'))}, not 'LORA'")
    for key in ("r", "lora_alpha", "target_modules"):
        if key not in config:
            raise AdapterError(f"{PEFT_CONFIG} lacks {key}")
    if isinstance(config["target_modules"], str):
        raise AdapterError(f"{PEFT_CONFIG}: target_modules as a regular expression is not supported; "
                           "list the layers")
    rank, alpha = _rank(config["r"], PEFT_CONFIG), _alpha(config["lora_alpha"], PEFT_CONFIG)
    targets = _layer_names(config["target_modules"], PEFT_CONFIG)
    if config.get("bias", "none") != "none":
        raise AdapterError(f"{PEFT_CONFIG}: bias = {_shown(config['bias'])} is not supported: the adapter "
                           "would also change the layers' biases; LoRA Lab reads adapters with bias 'none'")
    _check_init(config.get("init_lora_weights"), rank)
    for key, value in config.items():
        if key not in PEFT_NEUTRAL and value not in (None, False, "none", "", [], {}):
            raise AdapterError(f"{PEFT_CONFIG}: {_shown(key)} = {_shown(value)} is not supported: LoRA Lab reads "
                               "plain LoRA on Linear layers, W + (α/r)·B·A")
    flags = [config.get(key, False) for key in ("use_rslora", "use_dora")]
    for key, flag in zip(("use_rslora", "use_dora"), flags, strict=True):
        if not isinstance(flag, bool):
            raise AdapterError(f"{PEFT_CONFIG}: {key} must be true or false, got {_shown(flag)}")
    return rank, alpha, targets, *flags


def _read_peft(config_text, weights_blob: bytes) -> Adapter:
    rank, alpha, targets, rslora, dora = _peft_config(_json(config_text, PEFT_CONFIG))
    tensors, _ = _read_safetensors(weights_blob)
    weights = {}
    for key, tensor in tensors.items():
        name = key.removeprefix(PEFT_PREFIX).replace(".default.", ".")  # adapter name is optional
        for part, index in ((".lora_A.weight", 0), (".lora_B.weight", 1), (f".{PEFT_MAGNITUDE}", 2)):
            if name.endswith(part):
                weights.setdefault(name.removesuffix(part), [None, None, None])[index] = tensor.float()
    parts = 3 if dora else 2
    missing = [t for t in targets if t not in weights or None in weights[t][:parts]]
    if missing:
        what = "lora_A/lora_B weights or DoRA magnitudes" if dora else "lora_A/lora_B weights"
        raise AdapterError(f"{PEFT_WEIGHTS} lacks {what} for {_shown(missing)}")
    magnitudes = {t: weights[t][2] for t in targets} if dora else None
    return Adapter(rank, alpha, {t: tuple(weights[t][:2]) for t in targets}, rslora, magnitudes)


def read_peft(directory) -> Adapter:
    directory = Path(directory)
    for name in (PEFT_CONFIG, PEFT_WEIGHTS):
        if not (directory / name).is_file():
            raise AdapterError(f"{directory} has no {name}")
    _checked_size((directory / PEFT_WEIGHTS).stat().st_size)
    return _read_peft((directory / PEFT_CONFIG).read_bytes(), (directory / PEFT_WEIGHTS).read_bytes())


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


def _zip_entry_count(blob: bytes) -> int:
    """Entries the zip's end record announces (0 if it has none: zipfile then says it is no zip)."""
    end = blob.rfind(b"PK\x05\x06", max(0, len(blob) - 22 - 0xFFFF))  # the record, then a comment ≤ 64 KiB
    return int.from_bytes(blob[end + 10:end + 12], "little") if end >= 0 else 0


def _zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, inflated no further than an adapter can be whatever its header claims."""
    if info.flag_bits & 0x1:
        raise AdapterError(f"{_shown(info.filename)} in the zip is password-protected; zip the adapter "
                           "without a password")
    with zf.open(info) as member:
        data = member.read(MAX_ADAPTER_BYTES + 1)  # inflates in bounded chunks, stops at the cap
    if len(data) > MAX_ADAPTER_BYTES:
        raise AdapterError("the zip unpacks to more than an adapter can be")
    return data


def _read_zip(blob: bytes) -> Adapter:
    if _zip_entry_count(blob) > MAX_ZIP_ENTRIES:
        raise AdapterError(f"the zip holds more than {MAX_ZIP_ENTRIES} files; an adapter zip holds one or two")
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            members = {Path(i.filename).name: i for i in zf.infolist() if not i.is_dir()}
            if sum(i.file_size for i in members.values()) > MAX_ADAPTER_BYTES:
                raise AdapterError("the zip unpacks to more than an adapter can be")
            if PEFT_CONFIG in members and PEFT_WEIGHTS in members:
                return _read_peft(_zip_member(zf, members[PEFT_CONFIG]), _zip_member(zf, members[PEFT_WEIGHTS]))
            if ADAPTER_FILE in members:
                return read_adapter_bytes(_zip_member(zf, members[ADAPTER_FILE]))
            if PEFT_WEIGHTS in members:
                raise AdapterError(f"the zip holds PEFT's {PEFT_WEIGHTS} but not its {PEFT_CONFIG}, which "
                                   "says the rank, alpha and target layers: zip the whole adapter folder")
    except (zipfile.BadZipFile, zlib.error, EOFError):
        raise AdapterError("not a readable zip: it is damaged, cut short, or not a zip file") from None
    except NotImplementedError:
        raise AdapterError("the zip is compressed with a method this server cannot read; use ordinary "
                           "(deflate) compression") from None
    raise AdapterError(f"the zip holds neither {ADAPTER_FILE} nor {PEFT_CONFIG} with {PEFT_WEIGHTS}")


def read_upload(filename: str, blob: bytes) -> Adapter:
    """An uploaded .safetensors or .zip (either format) as an Adapter, or AdapterError saying why not.

    Every refusal says what is wrong with the file; a failure nobody foresaw is logged on the server
    and reported in general words (its details are no business of the page).
    """
    _checked_size(len(blob))
    try:
        return _read_zip(blob) if filename.lower().endswith(".zip") else read_adapter_bytes(blob)
    except AdapterError:
        raise
    except Exception:
        log.exception("Reading the uploaded file %r failed unexpectedly", filename[:200])
        raise AdapterError("the file could not be read as an adapter: it is damaged, or not in a format "
                           "LoRA Lab knows") from None


# --- several adapters on one base ------------------------------------------------------------------

def blend(base: nn.Module, adapters: list[Adapter], strengths: list[float]) -> nn.Module:
    """A merged copy of `base` with W + Σ sᵢ·ΔWᵢ: switching and blending need no retraining.

    Each plain adapter becomes one LoRA parametrization, chained on the same weight, so ΔWᵢ = (αᵢ/rᵢ)·Bᵢ·Aᵢ
    is computed by the same `delta_weight` as everywhere else; the strength scales it. A DoRA adapter's
    ΔWᵢ = W′ᵢ − W depends on W: it is taken on the base's own weight, then scaled and added the same way.
    """
    if len(adapters) != len(strengths):
        raise ValueError(f"{len(adapters)} adapters but {len(strengths)} strengths")
    for s in strengths:
        if not 0 <= s <= MAX_STRENGTH:
            raise ValueError(f"strength must be in 0..{MAX_STRENGTH}, got {s!r}")
    model = copy_model(base)
    dora_updates = []  # (layer, sᵢ·(W′ᵢ − W)), added once the plain ones are merged
    for adapter, strength in zip(adapters, strengths, strict=True):
        check_fits(model, adapter)
        if strength == 0:
            continue
        for name in adapter.targets:
            layer = model.get_submodule(name)
            lora = _parametrization(layer, adapter, name)
            if lora.dora:
                with torch.no_grad():
                    dora_updates.append((name, strength * lora.to(layer.weight.device).update(layer.weight)))
                continue
            lora.scale *= strength
            parametrize.register_parametrization(layer, "weight", lora.to(layer.weight.device))
    merged = merge_lora(model)
    with torch.no_grad():
        for name, update in dora_updates:
            merged.get_submodule(name).weight.add_(update)
    return merged


def _parametrization(layer: nn.Linear, adapter: Adapter, name: str) -> LoRAParametrization:
    """A parametrization carrying `adapter`'s tensors for `layer` (on the CPU)."""
    lora = LoRAParametrization(layer.out_features, layer.in_features, adapter.rank, adapter.alpha,
                               rslora=adapter.rslora, dora=adapter.magnitudes is not None)
    A, B = adapter.weights[name]
    with torch.no_grad():
        lora.lora_A.copy_(A)
        lora.lora_B.copy_(B)
        if lora.dora:
            lora.lora_magnitude.copy_(adapter.magnitudes[name])
    return lora


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
    parts = {name: (original_weight(layer), lora_of(layer).update(original_weight(layer)))
             for name, layer in layers.items()}
    rows = []
    for dtype in dtypes:
        merged = remove_lora(copy_model(model))
        errors = []
        for name, (W, delta) in parts.items():
            low = W.to(dtype) + delta.to(dtype)  # the merge, done in the low precision
            merged.get_submodule(name).weight.copy_(low)
            errors.append((low.double() - (W.double() + delta.double())).abs().max())
        error = float(torch.stack(errors).max())  # torch's max keeps a NaN, where max(0, nan) would give 0
        for param in merged.parameters():
            param.copy_(param.to(dtype))  # stored in dtype, computed in float32
        flipped = int((logits_of(merged, x).argmax(dim=1) != reference_predictions).sum())
        rows.append({"dtype": str(dtype).removeprefix("torch."), "max_abs_error": error, "flipped": flipped})
    return rows
