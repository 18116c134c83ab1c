"""Interleaved repeats, A, B, B, A, A, B, ..., so that a slow spell of the machine hits both sides alike.

The machine may be shared: each pair also records how many cores other processes kept busy while it
ran. Two threads of one process fighting a third for two cores is not a small error (an OpenMP barrier
waits for a descheduled thread), so pairs measured while others used more than QUIET_CORES are set
aside, more pairs are run in their place within a time budget, and the report says how many there were.
"""
import statistics
import time
from dataclasses import dataclass, field

from .machine import OtherLoad, wait_quiet

QUIET_CORES = 0.25  # a pair during which other processes averaged more than this is "contended"


@dataclass
class Pair:
    """Per-repeat rates (units per second) of a reference and a contender, with the load of others."""
    reference: list[float] = field(default_factory=list)
    contender: list[float] = field(default_factory=list)
    others: list[float] = field(default_factory=list)  # cores used by other processes during each pair

    def _keep(self) -> list[int]:
        quiet = [i for i, load in enumerate(self.others) if load <= QUIET_CORES]
        return quiet if len(quiet) >= 3 else list(range(len(self.others)))

    @property
    def quiet(self) -> bool:
        """Whether the figures come from uncontended pairs only."""
        return all(self.others[i] <= QUIET_CORES for i in self._keep())

    @property
    def used(self) -> int:
        return len(self._keep())

    @property
    def ratios(self) -> list[float]:
        return [self.contender[i] / self.reference[i] for i in self._keep()]

    @property
    def all_ratio(self) -> float:
        return statistics.median(c / r for r, c in zip(self.reference, self.contender, strict=True))

    @property
    def ratio(self) -> float:
        """Median over the pairs used of contender rate / reference rate, each pair run back to back."""
        return statistics.median(self.ratios)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.ratios), max(self.ratios)

    @property
    def reference_median(self) -> float:
        return statistics.median(self.reference[i] for i in self._keep())

    @property
    def contender_median(self) -> float:
        return statistics.median(self.contender[i] for i in self._keep())

    def summary(self) -> str:
        n, total = self.used, len(self.others)
        note = "" if self.quiet else " (too few quiet pairs: all pairs used, contended)"
        return (f"{n} of {total} pairs used{note}; median over all {total} pairs "
                f"{self.all_ratio:.2f}×")


def rate(fn) -> float:
    """Calls fn(), which returns how many units of work it did; returns units per second."""
    start = time.perf_counter()
    units = fn()
    return units / (time.perf_counter() - start)


def interleaved(reference, contender, repeats: int, budget_s: float | None = None, wait_s: float = 0) -> Pair:
    """Rates of reference() and contender(), alternating which goes first.

    Runs until `repeats` pairs ran while the machine was otherwise quiet, or, past `repeats` pairs in
    all, until the extra pairs have taken `budget_s` seconds (default: no extra pairs). With `wait_s`, each
    pair first waits up to that long for the machine to be quiet (not counted in the budget).
    """
    pair = Pair()
    extra = 0.0  # seconds the pairs beyond the first `repeats` took
    while True:
        quiet = sum(load <= QUIET_CORES for load in pair.others)
        if quiet >= repeats:
            break
        if len(pair.others) >= repeats and (budget_s is None or extra >= budget_s):
            break
        if wait_s > 0:
            wait_quiet(wait_s)
        start = time.perf_counter()
        load = OtherLoad()
        if len(pair.others) % 2 == 0:
            pair.reference.append(rate(reference))
            pair.contender.append(rate(contender))
        else:
            pair.contender.append(rate(contender))
            pair.reference.append(rate(reference))
        pair.others.append(load.cores() or 0.0)
        if len(pair.others) > repeats:
            extra += time.perf_counter() - start
    return pair
