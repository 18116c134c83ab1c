"""Once per server process: torch threads sized to the training limit, what a killed server left tidied,
and the thread that sweeps the sessions (service.sessions) every SWEEP_S seconds."""
import ctypes
import gc
import logging
import threading
import time

import torch

from lora_core import parallel, run_claims
from lora_core.checkpoints import tidy
from service.environment import cache_dir, cache_limit_bytes, max_trainings, runs_dir, threads_each
from service.environment import number as env_number
from service.sessions import Sessions

log = logging.getLogger("lora_lab")  # ui.server gives it Streamlit's handler
SWEEP_S = env_number("LORA_LAB_SWEEP_S", 15.0, float, low=0.1)  # short in tests that close a tab
SWEEPER_NAME = "lora-lab sweep"
_setup_lock = threading.Lock()
_sweeper: threading.Thread | None = None


def setup(sessions: Sessions) -> None:
    """Once per server process: torch threads sized to the training limit, and the sweep of `sessions`
    started."""
    global _sweeper
    with _setup_lock:
        if _sweeper is not None:
            return
        limit = max_trainings()
        torch.set_num_threads(threads_each(limit))  # for the pages' own work; jobs set theirs (service.jobs)
        _sweeper = threading.Thread(target=_sweep_forever, args=(sessions,), name=SWEEPER_NAME,
                                    daemon=True)
        _sweeper.start()
        tidied = tidy(runs_dir(), cache_limit_bytes())  # a killed server's half-written files, an overfull cache
        if lapsed_claims := run_claims.sweep_lapsed(runs_dir()):  # and the claims it never released
            log.info("LoRA Lab: %d lapsed run claim(s) deleted", lapsed_claims)
        if tidied["partial"] or tidied["evicted"]:
            log.info("LoRA Lab: checkpoint folder tidied: %(partial)d unfinished file(s) and %(evicted)d old "
                     "checkpoint(s) deleted, %(kept_bytes)d bytes kept", tidied)
        log.info("LoRA Lab: %d training(s) at once, %s; pages on %d; checkpoints in %s", limit,
                 "each on the cores free for it, the same numbers on any number of them" if parallel.STRICT_PRODUCTS
                 else "each on one torch thread (this torch has no strict MKL products)",
                 torch.get_num_threads(), cache_dir())


def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc's; other C libraries have none
    except (OSError, AttributeError):
        return None


MALLOC_TRIM = _malloc_trim()


def give_back_memory() -> None:
    """After sessions ended: free what they held, and hand the freed heap back to the system.

    A session's state and its anchor form a cycle, so garbage collection frees it now rather than some day.
    glibc keeps freed memory in its arenas (one per training thread) for reuse; malloc_trim returns it.
    """
    gc.collect()
    if MALLOC_TRIM is not None:
        MALLOC_TRIM(0)


def _sweep_forever(sessions: Sessions) -> None:
    lingered = 0
    while True:
        time.sleep(SWEEP_S)
        try:
            done = sessions.sweep()
            if any(done.values()) or lingered:
                give_back_memory()
            lingering = sessions.lingering()
            if any(done.values()) or lingering != lingered:
                log.info("LoRA Lab sweep: %(ended)d session(s) ended, %(released)d job(s) released, "
                         "%(freed)d idle session(s) freed; %(known)d session(s) known, %(lingering)d ended "
                         "but still held by Streamlit", dict(done, known=len(sessions), lingering=lingering))
            lingered = lingering
        except Exception:  # the sweep must outlive any one bad session
            log.exception("LoRA Lab sweep failed")
