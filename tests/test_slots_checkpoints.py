import threading

import pytest
import torch

from lora_core import MLP
from lora_core.checkpoints import load_tensors, save_tensors
from lora_core.slots import Cancelled, TrainingSlots, threads_per_run


def test_at_most_limit_run_at_once_and_queue_places_are_seen():
    slots = TrainingSlots(limit=2)
    running, peak, places = [0], [0], {}
    lock = threading.Lock()
    gate = threading.Event()
    arrived = [threading.Event() for _ in range(5)]  # holds a slot, or waits in the queue

    def seen_waiting(i, place):
        places.setdefault(i, set()).add(place)
        arrived[i].set()

    def work(i):
        with slots.slot(i, on_wait=lambda place: seen_waiting(i, place)):
            arrived[i].set()
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            gate.wait(30)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(5)]
    for i, t in enumerate(threads):  # arrival order 0..4: each starts once the one before has its place
        t.start()
        assert arrived[i].wait(30), f"thread {i} neither ran nor queued"
    assert [slots.position(i) for i in range(5)] == [0, 0, 1, 2, 3]
    gate.set()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    assert peak[0] == 2 and running[0] == 0
    assert places[4] >= {3} and 0 not in places and slots.position(0) == -1



def test_a_wait_given_up_just_as_its_slot_frees_runs_nothing():
    """Stop and the slot's release arrive together, while the queued one sleeps: it must wake stopped, not run."""
    slots = TrainingSlots(limit=1)
    holder = slots.slot("holder")
    holder.__enter__()
    stop, ran, outcome = threading.Event(), [], []

    def stop_and_free_the_slot() -> None:
        stop.set()
        slots.leave("holder")  # waits for the queued one's lock to be free: it is asleep in the queue then

    def seen_waiting(place: int) -> None:
        if not stop.is_set() and place == 1:
            threading.Thread(target=stop_and_free_the_slot).start()

    def queued() -> None:
        try:
            with slots.slot("queued", on_wait=seen_waiting, cancelled=stop.is_set):
                ran.append(True)
        except Cancelled as err:
            outcome.append(err)

    thread = threading.Thread(target=queued)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert ran == [] and len(outcome) == 1
    assert slots.running() == 0 and slots.tickets() == []


def test_a_cancelled_wait_gives_its_place_up():
    slots = TrainingSlots(limit=1)
    with slots.slot("a"):
        with pytest.raises(Cancelled):
            with slots.slot("b", cancelled=lambda: True):
                pytest.fail("must not run")
        assert slots.position("b") == -1
    with slots.slot("c"):  # the slot is free again
        assert slots.position("c") == 0


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_bad_limits(limit):
    with pytest.raises(ValueError, match="limit"):
        TrainingSlots(limit)


def test_threads_per_run():
    assert threads_per_run(1, cores=8) == 8 and threads_per_run(8, cores=8) == 1
    assert threads_per_run(3, cores=8) == 2 and threads_per_run(30, cores=2) == 1


def mlp(seed):
    torch.manual_seed(seed)
    return MLP(32, 16)


def test_checkpoint_round_trip(tmp_path):
    model = mlp(0)
    save_tensors(model.state_dict(), tmp_path / "m.safetensors", {"steps": 12})
    tensors, info = load_tensors(tmp_path / "m.safetensors", 2**20)
    assert info == {"steps": 12} and tensors.keys() == model.state_dict().keys()
    assert all(torch.equal(tensors[k], v) for k, v in model.state_dict().items())
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "missing"])
def test_corrupt_or_partial_checkpoints_read_as_none(tmp_path, damage):
    path = tmp_path / "m.safetensors"
    save_tensors(mlp(0).state_dict(), path)
    blob = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        path.write_bytes(blob[:-100] + bytes([blob[-100] ^ 0xFF]) + blob[-99:])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage" * 10)
    else:
        path.unlink()
    assert load_tensors(path, 2**20) is None


def test_a_failed_write_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_tensors(mlp(0).state_dict(), path, {"v": 1})
    monkeypatch.setattr("os.fsync", lambda fd: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        save_tensors(mlp(1).state_dict(), path, {"v": 2})
    assert load_tensors(path, 2**20)[1] == {"v": 1} and not list(tmp_path.glob("*.partial"))
