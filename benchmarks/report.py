"""The markdown the benchmark prints and writes to RESULTS.md."""
import time
from dataclasses import dataclass, field

from .cases import TimeToAccuracy
from .timing import QUIET_CORES, Pair

TARGETS = {"train": 2.5, "tta": 10.0, "evaluation": 10.0, "lora": 1.0}
MEMORY_LABELS = {
    "notebook": "notebook: torchvision + DataLoader, train at batch 10, per-sample test",
    "lora_core": "lora_core: preloaded tensors, train at batch 10, evaluate",
    "lora_core-r8": "lora_core LoRA r=8 finetune (batch 10) + evaluate",
    "peft-r8": "PEFT LoRA r=8 finetune (batch 10) + evaluate",
}


def _verdict(ratio: float, target: float | None) -> str:
    if target is None:
        return "no slower in total than the code before (note 1)"
    return f"≥ {target:g}×: {'met' if ratio >= target else '**missed**'}"


def _pair_row(label: str, pair: Pair, unit: str, target: float | None, digits: int = 1) -> str:
    lo, hi = pair.spread
    return (f"| {label} | {pair.reference_median:,.{digits}f} {unit} | {pair.contender_median:,.{digits}f} {unit} "
            f"| **{pair.ratio:.2f}×** | {lo:.2f}–{hi:.2f}× ({pair.summary()}) | {_verdict(pair.ratio, target)} |")


@dataclass
class Report:
    machine: str
    quick: bool
    command: str
    load_before: str = ""
    load_after: str = ""
    others: float | None = None
    total_s: float = 0.0
    waited_s: float = 0.0
    train: Pair | None = None
    two_at_once: Pair | None = None
    tta: TimeToAccuracy | None = None
    evaluation: tuple[Pair, float, float] | None = None
    lora: dict = field(default_factory=dict)
    memory: list[dict] = field(default_factory=list)

    def _tta_row(self) -> str:
        t = self.tta
        ratio = t.notebook_s / t.median_s
        used = t.used
        epoch = "one full epoch" if not self.quick else f"its first {t.notebook_steps} steps (--quick)"
        steps = "/".join(str(r["steps"]) for r in used)
        evals = "/".join(str(r["evaluations"]) for r in used)
        seconds = [r["seconds"] for r in used]
        return (f"| 2. wall time to the notebook's test accuracy after {epoch}, {t.target:.4f} "
                f"| {t.notebook_s:.1f} s ({t.notebook_steps} steps at batch 10) "
                f"| {t.median_s:.1f} s (batch {t.batch_size}, lr {t.lr:g}, evaluated every {t.eval_every} "
                f"steps: {steps} steps, {evals} evaluations) "
                f"| **{ratio:.1f}×** | {t.notebook_s / max(seconds):.1f}–{t.notebook_s / min(seconds):.1f}× "
                f"({len(used)} of {len(t.runs)} lora_core runs used{'' if t.quiet else ', contended'}; notebook "
                f"{'contended' if t.notebook_others > QUIET_CORES else 'quiet'}) | {_verdict(ratio, TARGETS['tta'])} |")

    def markdown(self) -> str:
        t, (ev, acc_nb, acc_ours) = self.tta, self.evaluation
        others = "n/a" if self.others is None else f"{self.others:.2f}"
        run_lines = "; ".join(
            f"seed {i}: {r['seconds']:.1f} s, {r['steps']} steps, accuracy {r['accuracy']:.4f}, "
            f"others {r['others']:.2f} cores" for i, r in enumerate(t.runs))
        lines = [
            "# Benchmarks: the notebook's pipeline vs lora_core, lora_core's LoRA vs PEFT",
            "",
            f"- Machine: {self.machine}",
            f"- Measured {time.strftime('%Y-%m-%d')}, {self.total_s / 60:.1f} min in all"
            + (f" ({self.waited_s / 60:.1f} of them waiting for the machine to be quiet)" if self.waited_s else "")
            + f"; {self.load_before} "
            f"at the start, {self.load_after} at the end; other processes kept {others} cores busy on "
            "average meanwhile",
            f"- Rerun: `{self.command}` from the repository root"
            + (" (a smoke run: fewer, shorter repeats)" if self.quick else ""),
            "- Data: Fashion-MNIST (60,000 train / 10,000 test) from Debian's dataset-fashion-mnist, the same "
            "files for both pipelines",
            "",
            "Each ratio is the median, over interleaved repeats (the two sides back to back, alternating which "
            "goes first), of the per-repeat ratio lora_core rate / reference rate; the range is the lowest and "
            "highest of those ratios. The absolute figures are each side's median over the same repeats. "
            f"Repeats during which other processes kept more than {QUIET_CORES} cores busy are set aside "
            "when at least 3 quiet ones remain (two busy threads of ours fighting a third process for two "
            "cores are several times slower, which says nothing about the code), and extra repeats replace "
            "them within a time budget; the median over all repeats is shown too.",
            "",
            "| comparison | notebook / PEFT | lora_core | ratio | range | target |",
            "|---|---|---|---|---|---|",
            _pair_row("1. training steps/s at batch 10, alone on every core", self.train, "steps/s",
                      TARGETS["train"]),
            _pair_row("1b. two trainings at once, total steps/s (each on half the cores)", self.two_at_once,
                      "steps/s", None),
            self._tta_row(),
            _pair_row("3. evaluation of the 10,000 test images, images/s", ev, "img/s",
                      TARGETS["evaluation"], 0),
        ]
        for rank, (pair, ours_n, peft_n) in self.lora.items():
            lines.append(_pair_row(f"4. LoRA finetune steps/s at batch 10, rank {rank} "
                                   f"({ours_n:,} / {peft_n:,} trainable)", pair, "steps/s", TARGETS["lora"]))
        lines += [
            "",
            "1. The notebook: DataLoader over torchvision's dataset (ToTensor + Normalize per image), default "
            "Adam; lora_core: lora_core.train(batch_size=10, max_steps=N) on preloaded tensors (fused Adam); "
            "the same MLP. Row 1b runs two such trainings at once in two threads, each on half the cores as a "
            "server's two slots get them, and counts the steps of both; `python -m benchmarks.training` "
            "measures rows 1 and 1b alone, and copied with cases.py and report.py into an older checkout "
            "measures that code the same way.",
            f"2. The notebook ran once, {t.notebook_s:.1f} s of training while other processes kept "
            f"{t.notebook_others:.2f} cores busy (its evaluation is not counted). lora_core trained a fresh "
            f"model per seed until its test accuracy reached the notebook's, timing model creation, training "
            f"and every evaluation of the 10,000 test images; the median of the quiet runs is shown "
            f"(all runs: {run_lines}). Reached in every run used: {'yes' if t.reached else 'NO'}.",
            f"3. Same weights on both sides: accuracy {acc_nb:.4f} (notebook's loop) and {acc_ours:.4f} "
            "(lora_core.evaluate).",
            "4. Both adapters on the MLP trained in row 2, on linear1-3 with alpha 1, trained by the same loop "
            "(lora_core.train: fused Adam, lr 1e-3, batch 10); the reference column is PEFT.",
            "",
            "## Peak memory",
            "",
            "Each variant alone in a fresh process: its peak resident set size (VmHWM in /proc/self/status) "
            "after loading its data, building its model, training at batch 10 and evaluating the test set, "
            "and how much that peak grew over the same process right after importing torch, torchvision, "
            "peft and lora_core. It is the whole process's high-water mark, so it counts the dataset as "
            "each pipeline holds it (uint8 images, decoded per batch, for the notebook; float32 tensors for "
            "lora_core, 219 MB for Fashion-MNIST) and lora_core.evaluate's activations (chunks of 1,000 images).",
            "",
            "| variant | peak RSS | growth over post-import |",
            "|---|---|---|",
        ]
        for m in self.memory:
            lines.append(f"| {MEMORY_LABELS.get(m['variant'], m['variant'])} | {m['peak_mib']:,.0f} MiB "
                         f"| {m['growth_mib']:,.0f} MiB |")
        return "\n".join(lines) + "\n"
