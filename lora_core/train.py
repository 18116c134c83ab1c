"""Training and evaluation on tensors already on the device."""
import math
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .factored import factored_forward
from .lora import copy_model, lora_layers, merge_lora
from .model import NUM_CLASSES
from .parallel import ThreadPicker, cores, map_ordered


def _check_positive(name: str, value, kind=int) -> None:
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        raise ValueError(f"{name} must be a positive {kind.__name__}, got {value!r}")


def make_optimizer(params, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam as in the notebook, fused into one kernel where the device has it (2.7× at batch 10 on CPU)."""
    fused = device.type in ("cpu", "cuda", "mps")
    return torch.optim.Adam(params, lr=lr, fused=fused or None)


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite: the learning rate is too high for this model."""

    def __init__(self, step: int, loss: float, lr: float):
        super().__init__(f"the loss became {loss} at step {step} with learning rate {lr:g}; "
                         f"training stopped there. Try a learning rate 10× lower.")
        self.step, self.loss, self.lr = step, loss, lr

    def __reduce__(self):  # picklable, so that it crosses from a cluster worker to the app intact
        return TrainingDiverged, (self.step, self.loss, self.lr)


def planned_steps(n: int, epochs: int, batch_size: int, max_steps: int | None = None) -> int:
    """How many steps `train` takes on n images: whole epochs of ⌈n / batch_size⌉ batches, capped."""
    total = epochs * math.ceil(n / batch_size)
    return total if max_steps is None else min(max_steps, total)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 1, batch_size: int = 10,  # noqa: PLR0913
          lr: float = 1e-3, max_steps: int | None = None, seed: int = 0, on_step=None,
          should_stop=None, optimizer_factory=None) -> list[float]:
    """Minimise cross-entropy with Adam over `epochs` shuffled passes; return the loss of every step.

    Ends early after `max_steps` steps, or when `should_stop()` turns true (checked between steps, so
    the model always holds whole steps). `on_step(step, total, loss)` follows progress. Only the
    parameters that require grad are trained, by Adam, or by `optimizer_factory(model, lr, device)` (e.g.
    LoRA+'s groups); LoRA layers train through their factored path. It uses the cores this thread may use
    (lora_core.parallel.cores), as many of them each step as help (lora_core.parallel.ThreadPicker): the same
    arguments give the same numbers on any number of cores.
    """
    _check_positive("epochs", epochs)
    _check_positive("batch_size", batch_size)
    _check_positive("lr", float(lr) if isinstance(lr, int) and not isinstance(lr, bool) else lr, float)
    if max_steps is not None:
        _check_positive("max_steps", max_steps)
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"need as many labels as images and at least one image, got {len(x)} and {len(y)}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no parameters that require grad")
    optimizer = (make_optimizer(params, lr, x.device) if optimizer_factory is None
                 else optimizer_factory(model, lr, x.device))
    total = planned_steps(len(x), epochs, batch_size, max_steps)
    generator = torch.Generator().manual_seed(seed)  # shuffles on the CPU: identical order on every device
    losses: list[float] = []
    model.train()
    on_cpu = x.device.type == "cpu"  # an accelerator's kernels have threads of their own
    picker = ThreadPicker(cores if on_cpu else 1)  # asked before every step: a server's share changes
    with factored_forward(model) if lora_layers(model) else nullcontext():
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=generator).to(x.device)
            for batch in order.split(batch_size):
                if len(losses) >= total or (should_stop is not None and should_stop()):
                    return losses
                with picker.step(len(batch)):
                    loss = F.cross_entropy(model(x[batch]), y[batch])
                    value = loss.item()
                    if not math.isfinite(value):
                        raise TrainingDiverged(len(losses) + 1, value, lr)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                losses.append(value)
                if on_step is not None:
                    on_step(len(losses), total, losses[-1])
    return losses


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    wrong_per_class: list[int]  # test images of each class that were misclassified
    confusion: np.ndarray  # (10, 10): rows true class, columns predicted
    predictions: torch.Tensor  # (N,) predicted class of every test image

    @property
    def wrong(self) -> int:
        return sum(self.wrong_per_class)


def wrong_on(evaluation: Evaluation, classes) -> int:
    """Test errors on the chosen classes."""
    return sum(evaluation.wrong_per_class[c] for c in classes)


def logits_of(model: nn.Module, x: torch.Tensor, batch_size: int = 1_000, own_forward: bool = False) -> torch.Tensor:
    """The model's outputs (N, classes) without autograd, chunks of `batch_size` spread over the cores
    this thread may use, each on one torch thread: the same numbers however many cores that is.
    A LoRA network is scored through a merged copy (the same bits, faster); with `own_forward`, through its
    parametrization as it is (W + ΔW recomputed per chunk): what the proofs compare the merge with."""
    model = model.eval() if own_forward else _weights_once(model.eval())

    @torch.inference_mode()
    def chunk_logits(chunk: torch.Tensor) -> torch.Tensor:
        return model(chunk)

    with torch.inference_mode():
        return torch.cat(map_ordered(chunk_logits, x.split(batch_size)))


def _weights_once(model: nn.Module) -> nn.Module:
    """`model`, or a merged copy when its LoRA weights W′ = W + ΔW would be recomputed for every chunk (a
    fifth of a pass): merging computes each W′ once by the same expression, so the outputs are the same bits.
    The factored path (a proof compares it) is left as it is."""
    layers = lora_layers(model).values()
    if not layers or any("forward" in vars(layer) for layer in layers):  # factored_forward shadows it
        return model
    return merge_lora(copy_model(model)).eval()


def evaluation_of(logits: torch.Tensor, y: torch.Tensor) -> Evaluation:
    """Accuracy, wrong count per class and confusion matrix of outputs already computed."""
    predictions = logits.argmax(dim=1)
    confusion = torch.bincount(y * NUM_CLASSES + predictions, minlength=NUM_CLASSES ** 2)
    confusion = confusion.reshape(NUM_CLASSES, NUM_CLASSES).cpu().numpy()
    correct = np.diag(confusion)
    wrong = (confusion.sum(axis=1) - correct).tolist()
    return Evaluation(float(correct.sum() / len(y)), wrong, confusion, predictions.cpu())


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1_000,
             return_logits: bool = False):
    """Accuracy, wrong count per class and confusion matrix, in batched passes without autograd.

    With `return_logits`, (evaluation, logits): for checks that need the outputs themselves, without a
    second pass over the test images.
    """
    logits = logits_of(model, x, batch_size)
    evaluation = evaluation_of(logits, y)
    return (evaluation, logits) if return_logits else evaluation
