"""One line describing where the figures were measured."""
import os
import platform
import time

import torch


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    return (f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} intra-op threads, Python {platform.python_version()}")


def load() -> str:
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average n/a"


def _busy_seconds() -> float | None:
    """CPU seconds all processes have used since boot (user, nice, system, irq, softirq), or None."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:8]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = map(int, fields)
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class OtherLoad:
    """How many cores other processes kept busy, on average, between start and stop.

    The benchmark shares the machine with whatever else runs; this says how much of it did.
    """

    def __init__(self):
        self.busy, self.own, self.wall = _busy_seconds(), _own_seconds(), time.monotonic()

    def cores(self) -> float | None:
        busy = _busy_seconds()
        if busy is None or self.busy is None:
            return None
        wall = time.monotonic() - self.wall
        return max(0.0, (busy - self.busy) - (_own_seconds() - self.own)) / wall if wall > 0 else None


WAITED = [0.0]  # seconds spent in wait_quiet, all calls together


def wait_quiet(timeout_s: float, window_s: float = 2.0, cores: float = 0.1) -> bool:
    """Wait until other processes used under `cores` cores over a `window_s` window; False on timeout."""
    start = time.monotonic()
    try:
        while time.monotonic() - start < timeout_s:
            load = OtherLoad()
            time.sleep(window_s)
            if (load.cores() or 0.0) < cores:
                return True
        return False
    finally:
        WAITED[0] += time.monotonic() - start
