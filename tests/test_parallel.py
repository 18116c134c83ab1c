"""Several cores, the same numbers: what lora_core.parallel promises, measured on real runs."""
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from lora_core import FinetuneConfig, adapter_checks, add_lora, compare_ranks, evaluate, finetune_lora, parallel, train
from lora_core.adapters import adapter_of, blend
from lora_core.finetuning import new_model
from lora_core.proofs import merged_copy
from lora_core.studies import init_gallery, rank_oracle, scaling_sweep, train_frontier_adapters

ROOT = Path(__file__).resolve().parent.parent
CONFIG = FinetuneConfig(steps=6, targets=("linear1", "linear2"))


def test_map_ordered_keeps_order_and_gives_each_worker_one_thread():
    seen = []

    def work(i):
        seen.append((threading.current_thread().name, torch.get_num_threads(), parallel.cores()))
        return i * i

    assert parallel.map_ordered(work, range(7), workers=3) == [i * i for i in range(7)]
    assert {threads for _, threads, _ in seen} == {1} and {cores for _, _, cores in seen} == {1}
    with parallel.using(5):
        assert parallel.cores() == 5
    assert parallel.cores() == torch.get_num_threads()


def test_evaluation_is_the_same_on_any_number_of_cores(baseline, data):
    with parallel.using(1):
        one, one_logits = evaluate(baseline.model, data.test_x, data.test_y, return_logits=True)
    with parallel.using(3):
        three, three_logits = evaluate(baseline.model, data.test_x, data.test_y, return_logits=True)
    assert torch.equal(one_logits, three_logits) and torch.equal(one.predictions, three.predictions)
    with torch.inference_mode():  # against the plain forward of the whole test set
        assert torch.equal(baseline.model(data.test_x).argmax(dim=1), one.predictions)


def test_training_numbers_do_not_depend_on_the_callers_threads(data):
    losses = {}
    for threads in (1, 2):
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            model = new_model(64, 32, 0, "cpu")
            losses[threads] = train(model, data.train_x, data.train_y, max_steps=20)
        finally:
            torch.set_num_threads(previous)
    assert losses[1] == losses[2]


@contextmanager
def _threads(threads: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _with_threads(threads: int, fn, *args):
    """fn(*args) on `threads` torch threads."""
    with _threads(threads):
        return fn(*args)


def _products(shape: tuple[int, int, int], seed: int = 0) -> dict[str, torch.Tensor]:
    """A Linear's three products at batch m (in k, out n): forward (addmm), input and weight gradients (mm),
    the adapter's in-place addmm_, each as the training's autograd passes them (transposed views)."""
    m, k, n = shape
    generator = torch.Generator().manual_seed(seed)
    x, weight, bias, grad = (torch.randn(size, generator=generator) for size in ((m, k), (n, k), (n,), (m, n)))
    return {"forward": torch.addmm(bias, x, weight.t()), "input grad": grad @ weight,
            "weight grad": grad.t() @ x, "in place": torch.zeros(m, n).addmm_(x, weight.t(), alpha=0.5)}


SHAPES = [(10, 784, 1000), (10, 1000, 2000), (128, 784, 1000), (1000, 2000, 10), (32, 1000, 2000)]


_WITHOUT_STRICT = """
import torch, lora_core
from test_parallel import SHAPES, _products, _with_threads
assert not lora_core.parallel.STRICT_PRODUCTS
one, two = ([_with_threads(threads, _products, shape) for shape in SHAPES] for threads in (1, 2))
print(sum(any(not torch.equal(a[n], b[n]) for n in a) for a, b in zip(one, two)))
"""


def _run_without_strict_products(code: str) -> str:
    """`code`'s output in a fresh interpreter where MKL keeps its default mode (MKL_CBWR=AUTO, not strict)."""
    env = {**os.environ, "MKL_CBWR": "AUTO", "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          check=True)
    return done.stdout.strip()


def test_plain_products_change_with_the_thread_count_unless_mkl_is_strict():
    """Why lora_core turns MKL's strict mode on: by default MKL cuts a product's sum among its threads."""
    if not torch.backends.mkl.is_available():
        pytest.skip("measured on MKL's products; another BLAS may split differently")
    assert parallel.STRICT_PRODUCTS  # turned on when lora_core was imported, before torch's first product
    assert int(_run_without_strict_products(_WITHOUT_STRICT)) > 0  # batch 10 on the notebook's layers among them


@pytest.mark.parametrize("shape", SHAPES)
def test_products_are_the_same_on_any_number_of_threads_and_right(shape):
    results = {threads: _with_threads(threads, _products, shape) for threads in (1, 2, 3)}
    for name, value in results[1].items():
        assert torch.equal(value, results[2][name]) and torch.equal(value, results[3][name]), name
    x = {name: value.double() for name, value in results[1].items()}
    m, k, n = shape
    generator = torch.Generator().manual_seed(0)
    sizes = ((m, k), (n, k), (n,), (m, n))  # as _products draws them
    xs, weight, bias, grad = (torch.randn(size, generator=generator).double() for size in sizes)
    exact = {"forward": bias + xs @ weight.t(), "input grad": grad @ weight, "weight grad": grad.t() @ xs,
             "in place": 0.5 * xs @ weight.t()}
    for name, value in x.items():
        torch.testing.assert_close(value, exact[name], rtol=1e-4, atol=1e-4)


def test_the_updates_run_on_every_core_are_the_same_on_any_number_of_them():
    """Adam (fused, foreach or per tensor) on 1, 2 and 3 torch threads: its update is elementwise."""
    def adam(fused, foreach):
        generator = torch.Generator().manual_seed(1)
        params = [torch.randn(shape, generator=generator, requires_grad=True)
                  for shape in ((1000, 784), (1000,), (2000, 1000), (10, 2000))]
        optimizer = torch.optim.Adam(params, lr=1e-3, fused=fused, foreach=foreach)
        for _ in range(3):
            for param in params:
                param.grad = torch.randn(param.shape, generator=generator)
            optimizer.step()
        return [param.detach() for param in params]

    for fused, foreach in ((True, None), (None, True), (None, False)):
        one, two, three = (_with_threads(threads, adam, fused, foreach) for threads in (1, 2, 3))
        assert all(torch.equal(a, b) and torch.equal(a, c) for a, b, c in zip(one, two, three, strict=True))


def _trained(data, cores: int, lora: str = "", steps: int = 12) -> tuple[list[float], list[torch.Tensor]]:
    """The notebook's network (or a rank-4 adapter on it, LoRA or DoRA) trained `steps` steps at batch 10 on
    `cores`."""
    model = new_model(1000, 2000, 0, "cpu")
    if lora:
        add_lora(model, rank=4, dora=lora == "dora")
    with parallel.using(cores):
        losses = train(model, data.train_x, data.train_y, batch_size=10, max_steps=steps, seed=3)
    return losses, [p.detach().clone() for p in model.parameters()]


def _same(a, b) -> bool:
    return a[0] == b[0] and all(torch.equal(p, q) for p, q in zip(a[1], b[1], strict=True))


def _beside_another_training(data, cores: int, lora: str):
    """`_trained` while a second training runs in another thread of the process, on the same cores."""
    started, other = threading.Event(), []

    def another():
        model = new_model(1000, 2000, 1, "cpu")
        with parallel.using(cores):
            other.append(train(model, data.train_x, data.train_y, batch_size=10, max_steps=30, seed=5,
                               on_step=lambda *_: started.set()))

    thread = threading.Thread(target=another)
    thread.start()
    assert started.wait(60)
    result = _trained(data, cores, lora)
    thread.join(timeout=120)
    assert len(other) == 1 and len(other[0]) == 30
    return result


@pytest.mark.parametrize("lora", ["", "lora", "dora"], ids=["full", "lora", "dora"])
def test_a_training_is_the_same_on_one_core_two_and_beside_another_training(data, lora):
    alone = _trained(data, 1, lora)
    assert _same(alone, _trained(data, 2, lora))
    assert _same(alone, _beside_another_training(data, 2, lora))
    assert _same(alone, _beside_another_training(data, 1, lora))


_TRAINING_WITHOUT_STRICT = """
import torch, lora_core
from lora_core import parallel, train
from lora_core.finetuning import new_model
parallel.STRICT_PRODUCTS = True  # as if the products were strict: the picker gives a training all its cores
generator = torch.Generator().manual_seed(0)
x, y = torch.rand(200, 784, generator=generator), torch.randint(0, 10, (200,), generator=generator)
params = []
for cores in (1, 2):
    model = new_model(1000, 2000, 0, "cpu")
    with parallel.using(cores):
        train(model, x, y, batch_size=10, max_steps=12, seed=3)
    params.append([p.detach().clone() for p in model.parameters()])
print(all(torch.equal(p, q) for p, q in zip(*params)))
"""


def test_the_same_training_without_strict_products_would_fail_that_test():
    """The test above can fail: with MKL in its default mode, one core and two round differently."""
    if not torch.backends.mkl.is_available():
        pytest.skip("measured on MKL's products; another BLAS may split differently")
    assert _run_without_strict_products(_TRAINING_WITHOUT_STRICT) == "False"


def test_steps_slower_than_their_pace_send_the_next_ones_to_one_thread():
    picker = parallel.ThreadPicker(2)
    assert picker.threads() == 2
    for seconds in (0.004, 0.003, 0.003, 0.003):
        picker.took(2, 10, seconds)
    picker.took(2, 7, 0.001)  # a shorter last batch: its own pace, not the others'
    picker.took(2, 10, 0.030)  # one slow step (a page fault, a timer): not a taken core
    assert picker.threads() == 2
    for _ in range(3):  # then steady slowness: another process holds a core
        picker.took(2, 10, 0.030)
    assert [picker.threads() for _ in range(picker.BACK_OFF_STEPS)] == [1] * picker.BACK_OFF_STEPS
    assert picker.threads() == 2  # then all the cores again
    assert parallel.ThreadPicker(1).threads() == 1


def test_a_pickers_cores_are_asked_before_every_step():
    allowed = [2]
    picker = parallel.ThreadPicker(lambda: allowed[0])
    assert picker.threads() == (2 if parallel.STRICT_PRODUCTS else 1)
    allowed[0] = 1  # another training took its share
    assert picker.threads() == 1
    allowed[0] = 2  # and ended
    assert picker.threads() == (2 if parallel.STRICT_PRODUCTS else 1)


def test_a_server_training_gets_every_core_while_alone_and_its_share_once_another_starts():
    """What a training's steps are allowed in a server's slots (executor.InProcess, two slots on two cores):
    both cores while it runs alone, one from the moment a second training holds the other slot, both again
    once that one has ended. The cores change the speed, never the numbers (the tests above)."""
    from lora_core import executor
    from lora_core.slots import TrainingSlots

    slots = TrainingSlots(2)
    runner = executor.InProcess(slots, lambda running: 2 // running)
    second_started, second_may_end, seen = threading.Event(), threading.Event(), []

    def second(progress):
        second_started.set()
        assert second_may_end.wait(30)

    def first(progress):
        seen.append(parallel.cores())
        other = threading.Thread(target=runner.run, args=(executor.Progress(), second))
        other.start()
        assert second_started.wait(30)
        seen.append(parallel.cores())
        second_may_end.set()
        other.join(30)
        seen.append(parallel.cores())

    runner.run(executor.Progress(), first)
    assert seen == [2, 1, 2]


def test_a_training_steps_on_all_its_cores(data, monkeypatch):
    seen = []
    took = parallel.ThreadPicker.took
    monkeypatch.setattr(parallel.ThreadPicker, "took", lambda self, threads, *a: (seen.append(threads),
                                                                                   took(self, threads, *a)))
    with parallel.using(2):
        train(new_model(64, 32, 0, "cpu"), data.train_x, data.train_y, max_steps=5)
    assert seen[0] == (2 if parallel.STRICT_PRODUCTS else 1) and len(seen) == 5


def test_studies_on_two_workers_equal_the_serial_ones(narrow_baseline, data):
    # whole runs go side by side, not their products (the tests above split those): any width shows it
    baseline = narrow_baseline
    serial = compare_ranks(baseline.model, data, [1, 2], CONFIG)
    assert compare_ranks(baseline.model, data, [1, 2], CONFIG, before=baseline.evaluation, workers=2) == serial
    one = train_frontier_adapters(baseline.model, data, CONFIG, [1, 2])
    two = train_frontier_adapters(baseline.model, data, CONFIG, [1, 2], workers=2)
    assert list(one) == list(two) == [1, 2]
    for rank in one:
        for name, (A, B) in one[rank].weights.items():
            assert torch.equal(A, two[rank].weights[name][0]) and torch.equal(B, two[rank].weights[name][1])
    assert init_gallery(baseline.model, data, CONFIG, inits=("kaiming", "random")) == \
        init_gallery(baseline.model, data, CONFIG, inits=("kaiming", "random"), workers=2)
    assert scaling_sweep(baseline.model, data, CONFIG, [1, 2]) == scaling_sweep(baseline.model, data, CONFIG, [1, 2],
                                                                                 workers=2)
    a, b = rank_oracle(baseline.model, data, CONFIG, [1, 2]), rank_oracle(baseline.model, data, CONFIG, [1, 2],
                                                                          workers=2)
    assert a.full_losses == b.full_losses and a.ranks == b.ranks
    assert torch.equal(a.layers["linear2"].singular_values, b.layers["linear2"].singular_values)
    assert a.layers["linear2"].similarity[2]["similarity"] == b.layers["linear2"].similarity[2]["similarity"]


def test_a_stop_keeps_the_runs_that_finished_on_two_workers(narrow_baseline, data):
    baseline = narrow_baseline  # which runs finish depends on the order, not on the width
    steps = []
    stop = lambda: len(steps) >= 2 * CONFIG.steps + 2  # two runs at once finish; the next two never start
    rows = compare_ranks(baseline.model, data, [1, 2, 4], CONFIG, on_progress=lambda *p: steps.append(p),
                         should_stop=stop, workers=2)
    # the two full finetunes (at their own learning rate and at LoRA's), the longest, ran first
    assert rows[0].method == "baseline" and 1 <= len(rows) - 1 <= 2
    assert all(r.method.startswith("full finetune") for r in rows[1:])


def test_checks_from_precomputed_outputs_equal_the_checks_computed_alone(baseline, data):
    run = finetune_lora(baseline.model, data, FinetuneConfig(steps=5), before=baseline.evaluation)
    x = data.test_x[:500]
    alone = adapter_checks(baseline.model, run.model, x)
    _, merged_logits = evaluate(merged_copy(run.model), x, data.test_y[:500], return_logits=True)
    given = adapter_checks(baseline.model, run.model, x, base_logits=baseline.test_logits[:500],
                           merged_logits=merged_logits)
    assert given == alone
    assert torch.equal(baseline.evaluation.predictions, baseline.test_logits.argmax(dim=1))


def test_an_adapter_alone_at_strength_one_is_its_merged_copy(baseline, data):
    """Why the page can score that blend from the merged copy's evaluation: the weights are the same bits."""
    run = finetune_lora(baseline.model, data, FinetuneConfig(steps=5, targets=("linear2", "linear3")))
    blended, merged = blend(baseline.model, [adapter_of(run.model)], [1.0]), merged_copy(run.model)
    assert all(torch.equal(p, q) for p, q in zip(blended.parameters(), merged.parameters(), strict=True))


def test_a_run_left_unevaluated_trains_the_same(baseline, data):
    config = FinetuneConfig(steps=4, targets=("linear2",))
    evaluated = finetune_lora(baseline.model, data, config, before=baseline.evaluation)
    bare = finetune_lora(baseline.model, data, config, evaluated=False)
    assert bare.before is None and bare.after is None
    assert bare.losses == evaluated.losses and bare.update_norms == evaluated.update_norms


def test_threads_that_set_no_cores_get_the_process_default_asked_each_time():
    saved = list(parallel._default)
    asked = []
    try:
        parallel.set_default(lambda: asked.append(1) or 3)
        seen = []
        thread = threading.Thread(target=lambda: seen.append(parallel.cores()))  # a new thread: torch says 1
        thread.start()
        thread.join(timeout=10)
        assert seen == [3] and parallel.cores() == 3 and len(asked) == 2
        with parallel.using(1):
            assert parallel.cores() == 1  # a job's own setting wins
    finally:
        parallel._default[:] = saved


def test_a_pages_own_passes_are_foreground_work_and_a_jobs_are_not():
    seen = []
    parallel.map_ordered(lambda item: seen.append(parallel.waiting()), [1, 2])  # no cores set: a page's
    with parallel.using(2):
        parallel.map_ordered(lambda item: seen.append(parallel.waiting()), [3, 4])  # a job's, or background
    assert seen == [True, True, True, True]  # the job's came right after: within the grace
    time.sleep(parallel.FOREGROUND_GRACE_S)
    with parallel.using(2):
        parallel.map_ordered(lambda item: seen.append(parallel.waiting()), [5])
    assert seen[-1] is False and not parallel.waiting()


def test_background_passes_wait_before_each_chunk_while_someone_is_busy():
    asked, free, done = threading.Event(), threading.Event(), []

    def busy() -> bool:
        asked.set()
        return not free.is_set()

    def background():
        with parallel.using(2), parallel.background(busy):
            parallel.map_ordered(done.append, [1, 2, 3, 4])

    thread = threading.Thread(target=background)
    thread.start()
    assert asked.wait(10)  # a chunk asked before it ran...
    assert done == []  # ...and none ran while busy
    free.set()
    thread.join(timeout=10)
    assert sorted(done) == [1, 2, 3, 4]
    with parallel.using(2):
        parallel.map_ordered(done.append, [5])  # outside `background`: nothing to wait for
    assert done[-1] == 5


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux's idle scheduling policy")
def test_idle_priority_is_this_threads_and_its_childrens_not_the_processes():
    seen = {}

    def ahead_of_a_request():
        seen["allowed"] = parallel.idle_priority()
        seen["own"] = os.sched_getscheduler(0)
        parallel.map_ordered(lambda _: seen.setdefault("worker", os.sched_getscheduler(0)), range(2), workers=2)
    thread = threading.Thread(target=ahead_of_a_request)
    thread.start()
    thread.join(30)
    assert seen == {"allowed": True, "own": os.SCHED_IDLE, "worker": os.SCHED_IDLE}  # its pool's threads too
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller's threads are untouched


SUBNORMAL = 1e-40  # below float32's smallest normal number, 1.2e-38


def _subnormals_kept(threads: int = 2) -> int:
    """How many of a million subnormal products torch kept (not flushed to zero), on `threads` torch threads."""
    with _threads(threads):
        return int(torch.count_nonzero(torch.full((1_000_000,), SUBNORMAL) * 1.0))


def _in_new_thread(work):
    found = []
    thread = threading.Thread(target=lambda: found.append(work()))
    thread.start()
    thread.join(60)
    return found[0]


def test_subnormals_are_zero_on_every_thread_lora_core_and_a_script_run_compute_on():
    """Flushed in the thread that imported lora_core and in threads it starts (their torch workers included),
    and in a Streamlit script run's thread, which ui.server.setup sets first."""
    from ui import server

    assert _subnormals_kept() == 0
    assert _in_new_thread(_subnormals_kept) == 0

    def like_a_script_run():  # a thread started where nothing flushes (Streamlit's event loop), then set up
        torch.set_flush_denormal(False)
        kept_before = _subnormals_kept(1)
        server.setup()
        return kept_before, _in_new_thread(_subnormals_kept)

    assert _in_new_thread(like_a_script_run) == (1_000_000, 0)


def test_without_lora_core_torch_keeps_subnormals():
    """The test above can fail: torch alone computes them (so it is lora_core's import that flushes)."""
    code = f"import torch; print(int(torch.count_nonzero(torch.full((1_000_000,), {SUBNORMAL}) * 1.0)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "1000000"
