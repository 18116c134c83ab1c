"""The rank comparison: the same finetune at several ranks beside full finetuning, one row each."""
from dataclasses import dataclass, replace

from torch import nn

from .data import Dataset
from .finetuning import FULL_FINETUNE_LR, FinetuneConfig, finetune_full, finetune_lora, run_together, shared_progress
from .train import Evaluation, evaluate


@dataclass(frozen=True)
class SweepRow:
    method: str  # "LoRA r=4" or "full finetune"
    rank: int | None
    trainable: int
    target_wrong: int  # test errors on the finetuned classes
    other_wrong: int  # test errors on every other class
    accuracy: float
    lr: float | None = None  # the run's learning rate (None for the baseline)


def _row(method, rank, trainable, evaluation: Evaluation, digits, lr=None) -> SweepRow:
    target = sum(evaluation.wrong_per_class[d] for d in digits)
    return SweepRow(method, rank, trainable, target, evaluation.wrong - target, evaluation.accuracy, lr)


def compare_ranks(base: nn.Module, data: Dataset, ranks, config: FinetuneConfig, on_progress=None,  # noqa: PLR0913
                  should_stop=None, full_lr: float = FULL_FINETUNE_LR, before: Evaluation | None = None,
                  workers: int = 1) -> list[SweepRow]:
    """The same finetune at each rank, then full finetuning of the same steps as a reference: at its own
    learning rate `full_lr`, and also at LoRA's `config.lr` when that differs (rows "full finetune (lr …)").

    `on_progress(done_steps, total_steps, label)` follows the whole sweep. A stop ends the sweep: the
    rows returned are the baseline and the runs that finished all their steps. `before` is the base's
    evaluation when it is known; `workers` runs that many of the runs at once (same numbers).
    """
    configs = [replace(config, rank=rank) for rank in sorted(set(ranks))]  # validated before any run
    if not configs:
        raise ValueError("choose at least one rank")
    full_configs = [replace(config, lr=lr) for lr in dict.fromkeys([full_lr, config.lr])]  # validated now too
    before = before or evaluate(base, data.test_x, data.test_y)
    progress = shared_progress(on_progress, config.steps * (len(configs) + len(full_configs)))

    def run(plan: tuple[str, FinetuneConfig]) -> SweepRow | None:
        kind, cfg = plan
        if kind == "full":
            method = f"full finetune (lr {cfg.lr:g})"
            model, losses, evaluation = finetune_full(base, data, cfg, progress(method), should_stop)
            trainable, rank = sum(p.numel() for p in model.parameters()), None
        else:
            tuned = finetune_lora(base, data, cfg, before, progress(f"LoRA rank {cfg.rank}"), should_stop)
            losses, evaluation = tuned.losses, tuned.after
            trainable, method, rank = tuned.parameters["trainable"], f"LoRA r={cfg.rank}", cfg.rank
        return _row(method, rank, trainable, evaluation, config.digits, cfg.lr) if len(losses) == cfg.steps else None

    lora = [("lora", cfg) for cfg in configs]
    full = [("full", cfg) for cfg in full_configs]
    # one at a time in the table's order; several at once, the longest (the full finetunes) first
    if workers <= 1:
        rows = run_together([*lora, *full], run, should_stop)
    else:
        found = run_together([*full, *lora], run, should_stop, workers)
        rows = found[len(full):] + found[:len(full)]
    return [_row("baseline", None, 0, before, config.digits), *(row for row in rows if row is not None)]
