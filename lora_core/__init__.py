"""lora_core: everything LoRA Lab computes — device, data, model, LoRA, SVD, training, evaluation."""

from . import parallel as parallel  # first: MKL takes its reproducible mode only before torch's first product
from .adapter_files import MAX_ADAPTER_BYTES, load_adapter, save_adapter
from .adapter_zips import adapter_zip, read_upload
from .adapters import (
    MAX_STRENGTH,
    Adapter,
    AdapterError,
    adapter_of,
    attach,
    blend,
    check_outputs,
)
from .combine import Combination, CombineConfig, combine
from .data import DATASETS, Dataset, DatasetUnavailable, load_dataset
from .device import available_devices, pick_device
from .experiment import Experiment
from .factored import factored_forward
from .finetuning import (
    FULL_FINETUNE_LR,
    NOTEBOOK_BASELINE,
    BaselineConfig,
    BaselineRun,
    FinetuneConfig,
    FinetuneRun,
    finetune_full,
    finetune_lora,
    new_model,
    train_baseline,
)
from .lora import (
    DEFAULT_TARGETS,
    LoRAParametrization,
    add_lora,
    copy_model,
    count_parameters,
    lora_enabled,
    lora_layers,
    lora_of,
    lora_state_dict,
    merge_lora,
    original_weight,
    remove_lora,
    set_lora_enabled,
)
from .model import MLP, layer_table
from .peft_files import export_peft, import_peft
from .precision import merge_precision
from .proofs import FACTORED_TOLERANCE, START_TOLERANCE, adapter_checks, merged_copy, same_network
from .rank_comparison import SweepRow, compare_ranks
from .results import Comparison, FrontierStudy, GalleryStudy, Inspection, OracleStudy, ScalingStudy
from .svd import (
    Playground,
    numerical_rank,
    parameter_counts,
    playground,
    random_low_rank,
    rank_factorize,
    reconstruction_error,
    singular_values,
)
from .train import Evaluation, TrainingDiverged, evaluate, train, wrong_on

__all__ = [
    "Comparison",
    "FrontierStudy",
    "GalleryStudy",
    "Inspection",
    "OracleStudy",
    "ScalingStudy",
    "MAX_ADAPTER_BYTES",
    "MAX_STRENGTH",
    "Adapter",
    "AdapterError",
    "adapter_of",
    "adapter_zip",
    "attach",
    "check_outputs",
    "blend",
    "export_peft",
    "import_peft",
    "load_adapter",
    "merge_precision",
    "read_upload",
    "save_adapter",
    "Combination",
    "CombineConfig",
    "combine",
    "DATASETS",
    "Dataset",
    "DatasetUnavailable",
    "load_dataset",
    "available_devices",
    "pick_device",
    "Experiment",
    "DEFAULT_TARGETS",
    "LoRAParametrization",
    "add_lora",
    "copy_model",
    "count_parameters",
    "factored_forward",
    "lora_enabled",
    "lora_layers",
    "lora_of",
    "lora_state_dict",
    "merge_lora",
    "original_weight",
    "remove_lora",
    "set_lora_enabled",
    "MLP",
    "layer_table",
    "NOTEBOOK_BASELINE",
    "FACTORED_TOLERANCE",
    "FULL_FINETUNE_LR",
    "START_TOLERANCE",
    "BaselineConfig",
    "BaselineRun",
    "FinetuneConfig",
    "FinetuneRun",
    "SweepRow",
    "adapter_checks",
    "merged_copy",
    "same_network",
    "compare_ranks",
    "finetune_full",
    "finetune_lora",
    "new_model",
    "train_baseline",
    "Playground",
    "numerical_rank",
    "parameter_counts",
    "playground",
    "random_low_rank",
    "rank_factorize",
    "reconstruction_error",
    "singular_values",
    "Evaluation",
    "TrainingDiverged",
    "evaluate",
    "train",
    "wrong_on",
]
