"""The kinds of run the app makes: one name each, used for job names, store keys, refusals and the
operator's page, so that they can never disagree."""
from enum import StrEnum


class Kind(StrEnum):
    """A kind of run; its value is the name Experiment.identity and the run store's keys know it by."""
    BASELINE = "baseline"
    FINETUNE = "finetune"
    COMPARE = "compare"
    INSPECT = "inspect"
    ORACLE = "oracle"
    INITS = "inits"
    SCALING = "scaling"
    FRONTIER = "frontier"
    UPLOAD = "upload"

    @property
    def described(self) -> str:
        """What a run of this kind is, in the user's words ("you already have …")."""
        return _DESCRIBED[self]

    def job_name(self, number: int) -> str:
        """A job's name: its kind first, then a number that tells it from the others."""
        return f"{self.value}-{number}"


_DESCRIBED = {
    Kind.BASELINE: "a baseline training",
    Kind.FINETUNE: "an adapter training (LoRA finetuning)",
    Kind.COMPARE: "a rank comparison",
    Kind.INSPECT: "an adapter training (ΔW inspector)",
    Kind.ORACLE: "a rank oracle study",
    Kind.INITS: "an initialisation gallery study",
    Kind.SCALING: "a scaling study",
    Kind.FRONTIER: "a learn/forget frontier study",
    Kind.UPLOAD: "an uploaded adapter's evaluation",
}
