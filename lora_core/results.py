"""What the runs of each kind give, typed: a rank comparison, each study, an inspection (a baseline is a
finetuning.BaselineRun, a finetune a works.CheckedFinetune). The run store writes them as they are
(lora_core.store encodes lora_core's dataclasses): a page reads fields, never keys of a dict."""
from dataclasses import dataclass, field

import torch

from .adapters import Adapter
from .anatomy import LayerView
from .finetuning import FinetuneConfig, FinetuneRun
from .rank_comparison import SweepRow
from .studies import FrontierPoint, InitCurve, Oracle, ScalingRow


@dataclass(frozen=True)
class Comparison:
    """rank_comparison.compare_ranks' rows; `stopped` when only the runs that finished are there."""
    rows: list[SweepRow]
    stopped: bool


@dataclass(frozen=True)
class OracleStudy:
    """studies.rank_oracle run with `config`, full finetuning at `full_lr`; `oracle` None when the full
    finetune itself was stopped."""
    config: FinetuneConfig
    full_lr: float
    oracle: Oracle | None
    stopped: bool

    @property
    def ranks(self) -> tuple[int, ...]:
        """The LoRA ranks that finished."""
        return () if self.oracle is None else tuple(self.oracle.ranks)


@dataclass(frozen=True)
class GalleryStudy:
    """studies.init_gallery: one curve per initialisation that finished."""
    config: FinetuneConfig
    curves: list[InitCurve]
    stopped: bool


@dataclass(frozen=True)
class ScalingStudy:
    """studies.scaling_sweep: one row per (rank, scale rule) that finished."""
    config: FinetuneConfig
    rows: list[ScalingRow]
    stopped: bool


@dataclass(frozen=True)
class FrontierStudy:
    """One adapter per rank (studies.train_frontier_adapters) and the frontier at the strengths computed so
    far, strength → points (studies.frontier), which the server fills in after the run (ui.inside)."""
    config: FinetuneConfig
    adapters: dict[int, Adapter]
    points: dict[float, list[FrontierPoint]]
    stopped: bool
    # the strength a page asked for last, where the fill starts: this server's moment, never stored
    focus: list[float] = field(default_factory=lambda: [1.0], init=False, compare=False, repr=False)


@dataclass(frozen=True)
class Inspection:
    """A LoRA finetune looked into while it trained: each layer's ‖ΔW‖_F after each step (step 0 first),
    (step, layer → ΔW's singular values) every few steps, the layers' views (anatomy.inspect_layers) and,
    for linear1, A's rows as images. `run` is the trained run (in memory only: it holds a model); the store
    keeps `finetune`, its record (works.finetune_record), from which a page revives the run."""
    config: FinetuneConfig
    norms: dict[str, list[float]]
    snapshots: list[tuple[int, dict[str, list[float]]]]
    views: list[LayerView]
    patterns: torch.Tensor | None
    stopped: bool
    run: FinetuneRun | None = None
    finetune: dict | None = None


def expecting(kind: type):
    """A run store's `revive` that accepts only a `kind` (a record stored by an older version is made again)."""
    def revive(stored):
        if not isinstance(stored, kind):
            raise ValueError(f"not a stored {kind.__name__}")
        return stored
    return revive
