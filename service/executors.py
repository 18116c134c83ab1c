"""Which executor runs the server's trainings, from its environment: in this process under the training
slots (lora_core.executor.InProcess), or on the Ray cluster of LORA_LAB_RAY_ADDRESS
(lora_core.ray_executor, imported only then: the app runs without Ray installed)."""
from collections.abc import Callable

from lora_core.executor import InProcess
from lora_core.slots import TrainingSlots
from service import environment

RAY_ADDRESS_ENV = "LORA_LAB_RAY_ADDRESS"  # "auto" or "host:6379": trainings run on that Ray cluster
RAY_CPUS_ENV = "LORA_LAB_RAY_CPUS"  # CPUs each training asks of the cluster (its evaluation's cores), default 1
RAY_GPUS_ENV = "LORA_LAB_RAY_GPUS"  # GPUs (a fraction allowed) each training asks for; > 0 trains on cuda


def from_env(slots: TrainingSlots, cores_for: Callable[[int], int]):
    """InProcess(slots, cores_for); a RayExecutor when LORA_LAB_RAY_ADDRESS is set (work that cannot
    travel still runs in process under `slots`)."""
    local = InProcess(slots, cores_for)
    address = environment.text(RAY_ADDRESS_ENV)
    if not address:
        return local
    try:
        from lora_core.ray_executor import RayExecutor
    except ImportError as err:
        raise RuntimeError(f"{RAY_ADDRESS_ENV} is set but Ray is not installed ({err}): install it with "
                           f"`pip install -r requirements-cluster.txt`, or unset {RAY_ADDRESS_ENV}") from err
    return RayExecutor(address, local, cpus=environment.number(RAY_CPUS_ENV, 1, int, low=1),
                       gpus=environment.number(RAY_GPUS_ENV, 0.0, float, low=0))
