"""PEFT's adapter files: written so that `PeftModel.from_pretrained` loads them, and read back.

PEFT keeps the adapter in adapter_model.safetensors (its keys under `base_model.model.`) and rank, alpha and
target layers in adapter_config.json. A config that asks for anything but plain LoRA (or rsLoRA, DoRA) on
Linear layers is refused with a message naming the field, as PEFT refuses what it cannot do.
"""
import json
from pathlib import Path

from safetensors.torch import save as save_safetensors
from torch import nn

from .adapter_files import (
    PEFT_CONFIG,
    PEFT_WEIGHTS,
    checked_alpha,
    checked_rank,
    checked_size,
    layer_names,
    parse_json,
    read_safetensors,
)
from .adapters import Adapter, AdapterError, adapter_of, attach, shown

PEFT_PREFIX = "base_model.model."  # without it PEFT only warns and keeps its own initial weights
PEFT_MAGNITUDE = "lora_magnitude_vector"  # DoRA's m in PEFT's files


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
    refused = f"{PEFT_CONFIG}: init_lora_weights = {shown(init)} is not supported"
    if isinstance(init, str) and init.lower().startswith(PEFT_BASE_CHANGING):
        raise AdapterError(f"{refused}: PEFT starts it by changing the base weights, so the adapter fits those "
                           "changed weights and not this network. Save it from PEFT with save_pretrained(..., "
                           "path_initial_model_for_weight_conversion=...): that converts it to plain LoRA on the "
                           "original weights, which LoRA Lab reads")
    raise AdapterError(f"{refused}: LoRA Lab reads adapters started as plain LoRA (true, false, 'gaussian' or "
                       "'orthogonal')")


def _peft_config(config) -> tuple[int, float, tuple[str, ...], bool, bool]:
    """(rank, alpha, targets, rslora, dora) of a PEFT LoRA config, or AdapterError naming what is not supported."""
    if not isinstance(config, dict):
        raise AdapterError(f"{PEFT_CONFIG} must hold a JSON object, got {shown(config)}")
    if config.get("peft_type") != "LORA":
        raise AdapterError(f"{PEFT_CONFIG}: peft_type is {shown(config.get('peft_type'))}, not 'LORA'")
    for key in ("r", "lora_alpha", "target_modules"):
        if key not in config:
            raise AdapterError(f"{PEFT_CONFIG} lacks {key}")
    if isinstance(config["target_modules"], str):
        raise AdapterError(f"{PEFT_CONFIG}: target_modules as a regular expression is not supported; "
                           "list the layers")
    rank, alpha = checked_rank(config["r"], PEFT_CONFIG), checked_alpha(config["lora_alpha"], PEFT_CONFIG)
    targets = layer_names(config["target_modules"], PEFT_CONFIG)
    if config.get("bias", "none") != "none":
        raise AdapterError(f"{PEFT_CONFIG}: bias = {shown(config['bias'])} is not supported: the adapter "
                           "would also change the layers' biases; LoRA Lab reads adapters with bias 'none'")
    _check_init(config.get("init_lora_weights"), rank)
    for key, value in config.items():
        if key not in PEFT_NEUTRAL and value not in (None, False, "none", "", [], {}):
            raise AdapterError(f"{PEFT_CONFIG}: {shown(key)} = {shown(value)} is not supported: LoRA Lab reads "
                               "plain LoRA on Linear layers, W + (α/r)·B·A")
    flags = [config.get(key, False) for key in ("use_rslora", "use_dora")]
    for key, flag in zip(("use_rslora", "use_dora"), flags, strict=True):
        if not isinstance(flag, bool):
            raise AdapterError(f"{PEFT_CONFIG}: {key} must be true or false, got {shown(flag)}")
    return rank, alpha, targets, *flags


def read_peft_files(config_text, weights_blob: bytes) -> Adapter:
    """An Adapter from PEFT's two files' contents: adapter_config.json's text and the weights' bytes."""
    rank, alpha, targets, rslora, dora = _peft_config(parse_json(config_text, PEFT_CONFIG))
    tensors, _ = read_safetensors(weights_blob)
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
        raise AdapterError(f"{PEFT_WEIGHTS} lacks {what} for {shown(missing)}")
    magnitudes = {t: weights[t][2] for t in targets} if dora else None
    return Adapter(rank, alpha, {t: tuple(weights[t][:2]) for t in targets}, rslora, magnitudes)


def read_peft(directory) -> Adapter:
    directory = Path(directory)
    for name in (PEFT_CONFIG, PEFT_WEIGHTS):
        if not (directory / name).is_file():
            raise AdapterError(f"{directory} has no {name}")
    checked_size((directory / PEFT_WEIGHTS).stat().st_size)
    return read_peft_files((directory / PEFT_CONFIG).read_bytes(), (directory / PEFT_WEIGHTS).read_bytes())


def import_peft(model: nn.Module, directory) -> nn.Module:
    """Attach an adapter that PEFT saved with `save_pretrained`."""
    return attach(model, read_peft(directory))
