import copy
import functools
import io
import json
import warnings
import zipfile

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save as save_safetensors

from lora_core import MLP, add_lora, lora_layers, lora_of
from lora_core.adapters import (
    MAX_ADAPTER_BYTES,
    Adapter,
    AdapterError,
    adapter_bytes,
    adapter_of,
    adapter_zip,
    attach,
    blend,
    export_peft,
    import_peft,
    load_adapter,
    merge_precision,
    read_upload,
    save_adapter,
)

peft = pytest.importorskip("peft")


@pytest.fixture(scope="module")
def base():
    torch.manual_seed(0)
    return MLP()


@pytest.fixture(scope="module")
def x():
    return torch.randn(200, 784, generator=torch.Generator().manual_seed(5))


def trained_looking(base, rank=4, alpha=8.0, targets=("linear1", "linear2", "linear3"), seed=1):
    model = add_lora(copy.deepcopy(base), rank, alpha, targets, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            lora_of(layer).lora_B.copy_(torch.randn(lora_of(layer).lora_B.shape, generator=gen) * 0.1)
    return model


def test_save_load_round_trip(base, x, tmp_path):
    model = trained_looking(base)
    save_adapter(model, tmp_path / "a.safetensors")
    loaded = load_adapter(copy.deepcopy(base), tmp_path / "a.safetensors")
    assert torch.equal(loaded(x), model(x))
    assert [p.requires_grad for p in loaded.parameters()] == [p.requires_grad for p in model.parameters()]
    text = (tmp_path / "a.safetensors").read_bytes()
    header = json.loads(text[8:8 + int.from_bytes(text[:8], "little")])["__metadata__"]
    assert header["rank"] == "4" and json.loads(header["base_shapes"])["linear1"] == [1000, 784]


def test_export_loads_in_peft_without_warnings(base, x, tmp_path):
    model = trained_looking(base, rank=2, alpha=3.0, targets=("linear1", "linear3"))
    export_peft(model, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        theirs = peft.PeftModel.from_pretrained(copy.deepcopy(base), str(tmp_path))
    theirs.eval()
    with torch.no_grad():
        assert (theirs(x) - model(x)).abs().max() <= 1e-5
        assert (theirs(x) - base(x)).abs().max() > 1e-2  # the adapter was really loaded


def test_import_what_peft_saved(base, x, tmp_path):
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        r=3, lora_alpha=6, target_modules=["linear2", "linear3"], init_lora_weights=False))  # random B too
    theirs.save_pretrained(str(tmp_path))
    ours = import_peft(copy.deepcopy(base), tmp_path)
    theirs.eval()
    with torch.no_grad():
        assert (ours(x) - theirs(x)).abs().max() <= 1e-5
        assert (ours(x) - base(x)).abs().max() > 1e-2


@pytest.mark.parametrize("peft_format", [False, True])
def test_zip_round_trip(base, x, peft_format):
    model = trained_looking(base, rank=2)
    adapter = read_upload("adapter.zip", adapter_zip(model, peft_format))
    assert torch.equal(attach(copy.deepcopy(base), adapter)(x), model(x))


def zip_of(files: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def bad_uploads(base):
    good = trained_looking(base, rank=2)
    tensors = {f"{n}.lora_{m}": t for n, (A, B) in adapter_of(good).weights.items() for m, t in (("A", A), ("B", B))}
    meta = {"format": "lora-lab-adapter/1", "rank": "2", "alpha": "1.0", "targets": json.dumps(list(lora_layers(good)))}
    nan = dict(tensors, **{"linear2.lora_B": torch.full((2000, 2), float("nan"))})
    wrong_shape = dict(tensors, **{"linear1.lora_A": torch.zeros(2, 100)})
    wrong_rank_meta = dict(meta, rank="3")
    return {
        "not safetensors": ("a.safetensors", b"this is not a safetensors file", "not a safetensors"),
        "empty": ("a.safetensors", b"", "not a safetensors"),
        "other safetensors": ("a.safetensors", save_safetensors({"w": torch.zeros(2)}), "not a LoRA Lab"),
        "nan": ("a.safetensors", save_safetensors(nan, metadata=meta), "NaN"),
        "wrong shape": ("a.safetensors", save_safetensors(wrong_shape, metadata=meta), "linear1"),
        "wrong rank": ("a.safetensors", save_safetensors(tensors, metadata=wrong_rank_meta), "rank 3"),
        "missing tensor": ("a.safetensors", save_safetensors({"linear1.lora_A": tensors["linear1.lora_A"]},
                                                             metadata=meta), "incomplete"),
        "zip without files": ("a.zip", zip_of({"readme.txt": "hi"}), "neither"),
        "broken zip": ("a.zip", b"PK\x03\x04 broken", "not a readable zip"),
        "peft config not lora": ("a.zip", zip_of({"adapter_config.json": json.dumps({"peft_type": "IA3"}),
                                                  "adapter_model.safetensors": b""}), "LORA"),
        "peft config garbage": ("a.zip", zip_of({"adapter_config.json": "{{{",
                                                 "adapter_model.safetensors": b""}), "not a PEFT"),
        "oversized": ("a.safetensors", b"\0" * (MAX_ADAPTER_BYTES + 1), "at most"),
        "wrong model": ("a.safetensors", adapter_bytes(add_lora(torch.nn.Sequential(torch.nn.Linear(784, 5)),
                                                                targets=("0",))), "not a Linear layer"),
    }


def test_bad_uploads_are_refused_and_the_model_is_untouched(base, x):
    model = copy.deepcopy(base)
    expected = model(x)
    for case, (name, blob, message) in bad_uploads(base).items():
        with pytest.raises(AdapterError, match=message):
            attach(model, read_upload(name, blob))
        assert not lora_layers(model), case
    assert torch.equal(model(x), expected)


def test_blend_is_a_weighted_sum_of_updates(base, x):
    two, seven = trained_looking(base, rank=2, seed=1), trained_looking(base, rank=4, alpha=2.0, seed=2)
    a2, a7 = adapter_of(two), adapter_of(seven)
    assert torch.equal(blend(base, [a2, a7], [0, 0])(x), base(x))
    assert (blend(base, [a2, a7], [1, 0])(x) - two(x)).abs().max() <= 1e-5
    mixed = blend(base, [a2, a7], [0.5, 1.5])
    expected_W = base.linear2.weight + 0.5 * (8 / 2) * a2.weights["linear2"][1] @ a2.weights["linear2"][0] \
        + 1.5 * (2 / 4) * a7.weights["linear2"][1] @ a7.weights["linear2"][0]
    assert (mixed.linear2.weight - expected_W).abs().max() <= 1e-6
    with pytest.raises(ValueError, match="strength"):
        blend(base, [a2], [1.6])


def test_merge_precision(base, x):
    model = trained_looking(base)
    rows = {r["dtype"]: r for r in merge_precision(model, x)}
    assert rows["float32"]["max_abs_error"] < 1e-6 and rows["float32"]["flipped"] == 0
    # bfloat16 keeps 8 significant bits: each of the three roundings (W, ΔW, their sum) errs by at
    # most half a unit in the last place, 2⁻⁹ of the value, so the total stays under 1.5·2⁻⁸ of the largest
    largest = max(float(layer.weight.detach().abs().max()) for layer in lora_layers(model).values())
    assert largest * 2**-11 < rows["bfloat16"]["max_abs_error"] <= 1.5 * largest * 2**-8
    assert rows["float16"]["max_abs_error"] < rows["bfloat16"]["max_abs_error"]


def test_adapter_repr_and_targets(base):
    adapter = adapter_of(trained_looking(base, rank=2, targets=("linear2",)))
    assert isinstance(adapter, Adapter) and adapter.targets == ("linear2",) and "rank=2" in repr(adapter)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["a.safetensors", "a.zip"]), st.binary(max_size=2000))
def test_fuzzed_uploads_only_ever_raise_adapter_error(name, blob):
    try:
        read_upload(name, blob)
    except AdapterError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.integers(0, 200))
def test_fuzzed_corruption_of_a_real_adapter(noise, at):
    blob = bytearray(_real_adapter())
    blob[at:at + len(noise)] = noise
    try:
        read_upload("a.safetensors", bytes(blob))
    except AdapterError:
        pass


@functools.cache  # once for every fuzz example
def _real_adapter() -> bytes:
    torch.manual_seed(0)
    return adapter_bytes(add_lora(MLP(32, 16), rank=2))
