"""The run store: results of every kind survive the trip to disk exactly, keys name runs, damage is never read."""
import numpy as np
import pytest
import torch

import lora_core as lc
from lora_core import studies, works
from lora_core.experiment import Experiment
from lora_core.presets import with_values
from lora_core.store import RunStore, decode, encode, environment, run_key

SMALL = Experiment(baseline=lc.BaselineConfig(hidden1=32, hidden2=32, epochs=1, batch_size=64, max_steps=30))


@pytest.fixture(scope="module")
def data():
    return lc.load_dataset("mnist-sample")


@pytest.fixture(scope="module")
def base(data):
    return lc.train_baseline(SMALL.baseline, data)


def same(a, b) -> bool:
    """Deep equality over what runs hold: tensors and arrays compared exactly, dataclasses field by field."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if hasattr(a, "__dataclass_fields__"):
        return type(a) is type(b) and all(same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    return type(a) is type(b) and (a == b or (a != a and b != b))  # nan equals nan here


def round_trip(value):
    tensors, structure = encode(value)
    return decode(tensors, structure)


def test_every_kind_of_result_comes_back_exactly(base, data):
    config = SMALL.study("frontier")
    finetune = lc.finetune_lora(base.model, data, lc.FinetuneConfig(steps=3, rank=2, seed=0))
    values = {
        "baseline": {"state": base.model.state_dict(), "losses": base.losses, "evaluation": base.evaluation,
                     "config": base.config},
        "adapter": lc.adapter_of(finetune.model),
        "sweep": [lc.SweepRow("LoRA r=1", 1, 10, 3, 4, 0.5), lc.SweepRow("baseline", None, 0, 1, 2, float("nan"))],
        "gallery": studies.init_gallery(base.model, data, lc.FinetuneConfig(steps=2, rank=1)),
        "keys": {("linear1", 2): {"angles": [1.5, 2.0]}, 0.25: "x", 1: (1, 2)},
        "frontier": studies.frontier(base.model, data, {2: lc.adapter_of(finetune.model)}, config.digits, 0.5),
    }
    assert same(round_trip(values), values)
    assert round_trip(values)["adapter"].weights["linear1"][0].shape == (2, 784)


def test_only_lora_cores_dataclasses_and_plain_data_can_be_stored_or_read():
    with pytest.raises(TypeError, match="cannot hold a Linear"):
        encode({"model": torch.nn.Linear(2, 2)})
    tensors, structure = encode({"a": 1})
    with pytest.raises(ValueError, match="unknown stored class"):
        decode(tensors, {"dataclass": "Popen", "fields": {}})
    with pytest.raises(ValueError):
        decode({}, {"tensor": "0"})  # refers to a tensor the file does not hold


def test_keys_name_runs_and_change_with_anything_that_changes_numbers():
    env = environment("cpu", 1)
    key = run_key("finetune", SMALL.identity("finetune"), env)
    assert key == run_key("finetune", Experiment(baseline=SMALL.baseline).identity("finetune"), env)  # stable
    changed = [
        run_key("finetune", with_values(SMALL, {("finetune", "rank"): 2}).identity("finetune"), env),
        run_key("finetune", with_values(SMALL, {("seed",): 1}).identity("finetune"), env),
        run_key("finetune", with_values(SMALL, {("baseline", "epochs"): 2}).identity("finetune"), env),
        run_key("finetune", SMALL.identity("finetune"), environment("cpu", 2)),  # threads change rounding
        run_key("baseline", SMALL.identity("finetune"), env),
    ]
    assert len({key, *changed}) == len(changed) + 1
    # a study's knob that only moves a view is not part of the run: one stored run serves every strength
    stronger = with_values(SMALL, {("frontier", "strength"): 0.5})
    assert stronger.identity("frontier") == SMALL.identity("frontier")
    assert SMALL.identity("baseline") == with_values(SMALL, {("finetune", "rank"): 4}).identity("baseline")


def test_a_stored_run_is_read_back_from_disk_by_a_new_store(tmp_path, base):
    record = {"state": base.model.state_dict(), "losses": base.losses, "evaluation": base.evaluation}
    store = RunStore(tmp_path)
    assert store.put("k1", record) is None and store.writes == 1
    restarted = RunStore(tmp_path)  # a server restart: nothing in memory
    assert same(restarted.get("k1"), record)
    assert restarted.get("k2") is None


@pytest.mark.parametrize("damage", ["truncate", "flip", "foreign key", "directory"])
def test_a_damaged_file_is_never_read(tmp_path, damage):
    store = RunStore(tmp_path)
    store.put("k", {"losses": [1.0, 2.0], "w": torch.arange(100.0)})
    path = store.path("k")
    blob = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        path.write_bytes(blob[:-8] + bytes([blob[-8] ^ 1]) + blob[-7:])
    elif damage == "foreign key":
        path.rename(store.path("other"))
        path = store.path("other")
    else:
        path.unlink()
        path.mkdir()
    fresh = RunStore(tmp_path)
    assert fresh.get("other" if damage == "foreign key" else "k") is None
    assert fresh.damaged


def test_memory_is_bounded_and_least_recently_used_goes_first(tmp_path):
    store = RunStore(None, max_bytes=3 * 400)
    for name in "abcd":
        store.put(name, torch.zeros(100))  # 400 bytes each
        store.get("a")  # a is used after every put: it stays
    assert store.get("a") is not None and store.get("b") is None and store.get("d") is not None


def test_a_stopped_baseline_is_exactly_the_run_with_that_step_limit(data):
    """What ui.baseline relies on: a baseline stopped after n steps is stored as 'step limit n'."""
    config = lc.BaselineConfig(hidden1=32, hidden2=32, epochs=2, batch_size=64, seed=3)
    seen: list[float] = []
    stopped = lc.train_baseline(config, data, should_stop=lambda: len(seen) >= 17,
                                on_step=lambda step, total, loss: seen.append(loss))
    assert len(stopped.losses) == 17 and not stopped.complete
    limited = lc.train_baseline(with_values(Experiment(baseline=config, seed=3),
                                            {("baseline", "max_steps"): 17}).baseline, data)
    assert limited.complete and limited.losses == stopped.losses
    for (name, a), b in zip(stopped.model.state_dict().items(), limited.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert limited.evaluation.accuracy == stopped.evaluation.accuracy



def test_tensors_held_twice_or_sharing_memory_are_stored_and_read_back(tmp_path):
    logits = torch.randn(5, 10)
    record = {"before": logits, "off": logits.detach(), "first_rows": logits[:2], "other": torch.ones(3)}
    store = RunStore(tmp_path, 2**20)
    store.put("k", record)
    back = RunStore(tmp_path, 2**20).get("k")  # from disk: safetensors refuses tensors that share memory
    assert back.keys() == record.keys()
    assert all(torch.equal(back[name], value) for name, value in record.items())
    tensors, _ = encode(record)
    assert len(tensors) == 3  # the tensor held twice is written once


# --- what is stored under a key is the whole run of that key ---------------------------------------------

def stopped_baseline(data, steps: int) -> lc.BaselineRun:
    config = lc.BaselineConfig(hidden1=16, hidden2=16, epochs=1, batch_size=64, seed=5)
    return lc.train_baseline(config, data, should_stop=lambda taken=[]: taken.append(1) or len(taken) > steps)


def test_the_store_refuses_a_record_that_contradicts_its_description(tmp_path, base, data):
    store = RunStore(tmp_path, problem=works.record_problem)
    zero = stopped_baseline(data, 0)
    assert zero.losses == [] and zero.total_steps > 0
    stopped = lc.finetune_lora(base.model, data, lc.FinetuneConfig(steps=5), should_stop=lambda: True)
    finetune = works.finetune_record(works.CheckedFinetune(stopped, None))
    refused = {
        "no step": works.baseline_record(zero),
        "stopped at 3": works.baseline_record(stopped_baseline(data, 3)),  # its config names the whole run
        "no step, as its own run": works.baseline_record(
            lc.BaselineRun(zero.config, zero.model, [], zero.evaluation, 0)),
        "finetune": finetune,
        "inspection": lc.Inspection(stopped.config, {}, [], [], None, stopped=False, finetune=finetune),
        "comparison": lc.Comparison([], stopped=True),
        "study": lc.GalleryStudy(stopped.config, [], stopped=True),
    }
    for name, record in refused.items():
        with pytest.raises(ValueError, match="not stored"):
            store.put(name, record)
        assert store.get(name) is None and not store.path(name).exists(), name
    assert store.writes == 0
    assert store.put("whole", works.baseline_record(base)) is None and store.get("whole") is not None


def test_a_contradicting_file_already_on_disk_is_never_served(tmp_path, data):
    """A run an older server stored after 0 steps under the whole run's key is read as damaged: made again."""
    RunStore(tmp_path).put("poisoned", works.baseline_record(stopped_baseline(data, 0)))
    checked = RunStore(tmp_path, problem=works.record_problem)
    assert checked.get("poisoned") is None and checked.damaged == {"poisoned"}


def test_a_typed_run_is_read_back_whole_and_the_operator_reads_its_kind_from_its_header(tmp_path, base, data):
    store = RunStore(tmp_path, problem=works.record_problem)
    config = lc.FinetuneConfig(steps=5, rank=2)
    adapters = studies.train_frontier_adapters(base.model, data, config, (1, 2))
    points = {0.5: studies.frontier(base.model, data, adapters, config.digits, 0.5)}
    store.put("frontier", lc.FrontierStudy(config, adapters, points, stopped=False))
    store.put("comparison", lc.Comparison([], stopped=False))
    assert store.summary("comparison") == "Comparison: rows, stopped"
    assert store.summary("frontier").startswith("FrontierStudy: FinetuneConfig(rank=2, alpha=1.0, ")
    back = RunStore(tmp_path).get("frontier")  # read from disk: the same type, the same numbers
    assert isinstance(back, lc.FrontierStudy) and back.points == points and back.config == config
    assert all(torch.equal(a, b) for rank in adapters for name in adapters[rank].weights
               for a, b in zip(back.adapters[rank].weights[name], adapters[rank].weights[name], strict=True))


def test_a_stored_run_can_be_deleted_from_memory_and_disk(tmp_path):
    store = RunStore(tmp_path)
    store.put("a", {"w": torch.ones(3)})
    store.put("b", {"w": torch.ones(300)})
    assert sorted((key, size > 0) for key, size, _ in store.files()) == [("a", True), ("b", True)]
    assert store.delete("a") and not store.delete("a")
    assert store.get("a") is None and [key for key, *_ in store.files()] == ["b"]
    assert not RunStore(None).delete("b")
