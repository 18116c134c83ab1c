"""Fair sharing of one server by a class: what one training may cost, and how many one person may run.

Each limit is read from the environment, so that the server's operator can change it:
- LORA_LAB_MAX_STEPS: training steps in one training, every run of a sweep or study counted (default
  10,000: the notebook's baseline, 1 epoch at batch 10 on 60,000 images, is 6,000);
- LORA_LAB_MAX_HIDDEN: neurons in a hidden layer of a baseline (default 2,048; the notebook's are 1,000
  and 2,000);
- LORA_LAB_MAX_TRAINING_S: what one training may cost, as the seconds it is estimated to take here (default
  300): its images × weights (lora_core.Experiment.total_work) at IMAGE_WEIGHTS_PER_S, so that a wide network
  at a large batch is bounded however few its steps, and however many browsers one person opens;
- LORA_LAB_TRAININGS_PER_PERSON: trainings one person runs or queues at once (default 1), a person being
  a session and, where it can be told, a browser (service.sessions, Sessions.owners_of): two tabs are one person.
A training over a limit is refused when it is asked for, with the reason; nothing is cut short later.
Reusing a baseline someone trained already, or following one that trains, costs nothing and is never
refused.
"""
from service import environment

MAX_STEPS_ENV, DEFAULT_MAX_STEPS = "LORA_LAB_MAX_STEPS", 10_000
MAX_HIDDEN_ENV, DEFAULT_MAX_HIDDEN = "LORA_LAB_MAX_HIDDEN", 2048
PER_PERSON_ENV, DEFAULT_PER_PERSON = "LORA_LAB_TRAININGS_PER_PERSON", 1
MAX_SECONDS_ENV, DEFAULT_MAX_SECONDS = "LORA_LAB_MAX_TRAINING_S", 300
# lora_core.train's pace at the notebook's batch of 10 on one core of the 2-core reference machine: about 140
# steps/s × 10 images × 2.8 M weights. Larger batches run faster per image, so estimates err long, never short.
IMAGE_WEIGHTS_PER_S = 3.9e9


class Refused(RuntimeError):
    """A training this server does not start, with the reason in the user's words."""


def max_steps() -> int:
    return environment.number(MAX_STEPS_ENV, DEFAULT_MAX_STEPS)


def max_hidden() -> int:
    return environment.number(MAX_HIDDEN_ENV, DEFAULT_MAX_HIDDEN)


def max_seconds() -> int:
    return environment.number(MAX_SECONDS_ENV, DEFAULT_MAX_SECONDS)


def estimated_seconds(work: int) -> float:
    """The seconds a training of `work` images × weights is estimated to take on one core here."""
    return work / IMAGE_WEIGHTS_PER_S


def per_person() -> int:
    return environment.number(PER_PERSON_ENV, DEFAULT_PER_PERSON)


def check_cost(steps: int, hidden: tuple[int, ...] = (), work: int = 0) -> None:
    """Raise Refused when a training of `steps` steps (hidden layers of these sizes, `work` images × weights)
    is over a limit."""
    if estimated_seconds(work) > max_seconds():
        raise Refused(f"Not started: this training passes {work:.2g} images × weights, about "
                      f"{estimated_seconds(work) / 60:,.0f} minutes of this server's time, and one training may take "
                      f"at most {max_seconds() / 60:g} minutes here, so that everyone gets a turn. Use fewer steps, "
                      "a smaller batch or narrower hidden layers.")
    if steps > max_steps():
        raise Refused(f"Not started: this would take {steps:,} training steps, and this server runs at most "
                      f"{max_steps():,} in one training, so that everyone gets a turn. Use fewer steps or "
                      "epochs, a larger batch, or a step limit.")
    if hidden and max(hidden) > max_hidden():
        raise Refused(f"Not started: a hidden layer of {max(hidden):,} neurons is larger than this server "
                      f"allows ({max_hidden():,}).")


def busy(held: list) -> Refused:
    """The refusal of a second training while `held` (jobs of the same person) run or wait; its `blocking`
    is the first of them, so that a page can wait for it to end and take the refusal back."""
    job = held[0]
    refused = Refused(f"Not started: you already have {job.kind.described} running or waiting, maybe in another "
                      f"tab. Each person runs {per_person()} training(s) at a time on this server, so that everyone "
                      "gets a turn: stop it, or wait; this message goes away when it ends.")
    refused.blocking = job
    return refused


def caps_note(work: int = 0) -> str:
    """The limits, for a caption next to the inputs they limit; with `work`, this run's estimate first."""
    estimate = (f"This run: {_duration(estimated_seconds(work))} of training on one core here (an estimate "
                f"from its {work:.2g} images × weights). ") if work else ""
    return (f"{estimate}On this server a training takes at most {max_steps():,} steps and about "
            f"{max_seconds() / 60:g} minutes (every run of a comparison "
            f"counted), hidden layers have at most {max_hidden():,} neurons, and each person runs "
            f"{per_person()} training(s) at a time.")


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} minutes"
