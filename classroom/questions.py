"""The questions a teacher can ask, tied to the current experiment: their text, what kind of answer they
take, and the check of a student's answer. The right answer is computed by the app (classroom.computed).
"""
import math
from dataclasses import dataclass, field

from .names import ClassroomError

NUMBER, CHOICE = "number", "choice"
MAX_NUMBER = 10**9  # no question here has an answer above a billion
FULL = "full finetuning"
YES, NO = "yes", "no"
DEFAULT_RANKS = (1, 4, 16)


def _check_int(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number in {low}..{high}, got {value!r}")


def _still_wrong(p):
    _check_int("digit", p["digit"], 0, 9)
    _check_int("rank", p["rank"], 1, 4096)
    _check_int("steps", p["steps"], 1, 100_000)
    d = p["digit"]
    return f"With rank {p['rank']} on digit {d} for {p['steps']} steps, how many {d}s will still be wrong?", ()


def _least_forgetting(p):
    ranks = p["ranks"]
    if not isinstance(ranks, list) or not ranks or len(set(ranks)) != len(ranks):
        raise ValueError(f"ranks must be different ranks, got {ranks!r}")
    for rank in ranks:
        _check_int("rank", rank, 1, 4096)
    choices = (*(f"rank {r}" for r in ranks), FULL)
    listed = ", ".join(str(r) for r in ranks)
    return f"Which rank forgets the other digits least: {listed} or full finetuning?", choices


def _strength_zero(p):
    return "Will the adapter at strength 0 give back the original network exactly?", (YES, NO)


def _rank_parameters(p):
    for name in ("rank", "hidden1", "hidden2"):
        _check_int(name, p[name], 1, 4096)
    return f"How many trainable parameters does rank {p['rank']} add?", ()


# kind → (answer type, the parameters it takes, what builds its prompt and choices from them)
KINDS = {
    "still_wrong": (NUMBER, ("digit", "rank", "steps"), _still_wrong),
    "least_forgetting": (CHOICE, ("ranks",), _least_forgetting),
    "strength_zero": (CHOICE, (), _strength_zero),
    "rank_parameters": (NUMBER, ("rank", "hidden1", "hidden2"), _rank_parameters),
}


@dataclass(frozen=True)
class Question:
    kind: str
    params: dict = field(default_factory=dict)
    prompt: str = field(init=False)
    answer_type: str = field(init=False)
    choices: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown question {self.kind!r}; known: {', '.join(KINDS)}")
        answer_type, names, build = KINDS[self.kind]
        if not isinstance(self.params, dict) or set(self.params) != set(names):
            raise ValueError(f"question {self.kind} takes {', '.join(names) or 'nothing'}, got {self.params!r}")
        params = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in self.params.items()}
        prompt, choices = build(params)
        object.__setattr__(self, "params", params)  # as JSON stores them: lists, not tuples
        object.__setattr__(self, "prompt", prompt)
        object.__setattr__(self, "answer_type", answer_type)
        object.__setattr__(self, "choices", tuple(choices))

    def check_value(self, value):
        """A student's answer as stored, or ClassroomError saying what is expected."""
        if self.answer_type == CHOICE:
            if value not in self.choices:
                raise ClassroomError(f"choose one of: {', '.join(self.choices)}")
            return value
        number = _as_number(value)
        if number is None or not 0 <= number <= MAX_NUMBER:
            raise ClassroomError(f"answer with a number from 0 to {MAX_NUMBER:,}")
        return number

    def check_answer(self, answer):
        """The computed answer as stored: a number, or the list of right choices (several when tied)."""
        if self.answer_type == NUMBER:
            number = _as_number(answer)
            if number is None:
                raise ValueError(f"the answer to {self.kind} must be a finite number, got {answer!r}")
            return number
        right = list(answer) if isinstance(answer, (list, tuple)) else [answer]
        if not right or any(choice not in self.choices for choice in right):
            raise ValueError(f"the answer to {self.kind} must be among {self.choices}, got {answer!r}")
        return right


def _as_number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().replace(",", ""))
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value) if float(value).is_integer() else float(value)


def offered(exp) -> list[Question]:
    """The questions a lora_core Experiment poses: its finetune, its rank comparison, its adapter."""
    f, b = exp.finetune, exp.baseline
    asked = [Question("still_wrong", {"digit": f.digits[0], "rank": f.rank, "steps": f.steps})] \
        if len(f.digits) == 1 else []
    if len(exp.compare.ranks) <= 4:
        asked.append(Question("least_forgetting", {"ranks": sorted(exp.compare.ranks)}))
    return [*asked, Question("strength_zero"),
            Question("rank_parameters", {"rank": f.rank, "hidden1": b.hidden1, "hidden2": b.hidden2})]
