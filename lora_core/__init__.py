"""lora_core: everything LoRA Lab computes — device, data, model, LoRA, SVD, training, evaluation."""
from .data import DATASETS, Dataset, DatasetUnavailable, load_dataset
from .device import available_devices, pick_device
from .lora import (DEFAULT_TARGETS, LoRAParametrization, add_lora, count_parameters, factored_forward,
                   lora_enabled, lora_layers, lora_of, lora_state_dict, merge_lora, original_weight,
                   remove_lora, set_lora_enabled)
from .model import MLP, layer_table
from .runs import (NOTEBOOK_BASELINE, BaselineConfig, BaselineRun, FinetuneConfig, FinetuneRun, SweepRow,
                   adapter_checks, compare_ranks, finetune_full, finetune_lora, new_model, train_baseline)
from .svd import (Playground, numerical_rank, parameter_counts, playground, random_low_rank, rank_factorize,
                  reconstruction_error, singular_values)
from .train import Evaluation, evaluate, train

__all__ = [
    "DATASETS", "Dataset", "DatasetUnavailable", "load_dataset",
    "available_devices", "pick_device",
    "DEFAULT_TARGETS", "LoRAParametrization", "add_lora", "count_parameters", "factored_forward",
    "lora_enabled", "lora_layers", "lora_of", "lora_state_dict", "merge_lora", "original_weight",
    "remove_lora", "set_lora_enabled",
    "MLP", "layer_table",
    "NOTEBOOK_BASELINE", "BaselineConfig", "BaselineRun", "FinetuneConfig", "FinetuneRun", "SweepRow",
    "adapter_checks", "compare_ranks", "finetune_full", "finetune_lora", "new_model", "train_baseline",
    "Playground", "numerical_rank", "parameter_counts", "playground", "random_low_rank", "rank_factorize",
    "reconstruction_error", "singular_values",
    "Evaluation", "evaluate", "train",
]
