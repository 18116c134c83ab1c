"""The settings table (lora_core.settings) is the one declaration of every setting: for every row, the
widget as the app draws it (the session's repair, then the real Streamlit widget with the table's bounds),
a link, the Experiment's validation and the server's cap accept exactly the same values; a set is the same
value in any order; and a run's identity holds exactly the settings that run depends on."""
import math
from dataclasses import asdict

import pytest
from streamlit.testing.v1 import AppTest

from lora_core import presets
from lora_core.experiment import Experiment, get, with_values
from lora_core.settings import KINDS, SETTINGS, Number, OneOf, SomeOf, Whole, as_text
from service import limits
from ui import experiment as ui_experiment

# rank up to 64 fits every one of these layers, and rank 2 every init (orthogonal needs an even rank): a
# value is not refused for another setting's sake
BASE = with_values(Experiment(), {("finetune", "targets"): ("linear1", "linear2"), ("finetune", "rank"): 2})
BASE_LINK = {"targets": "linear1,linear2", "rank": "2"}  # BASE's own values in a link
WRONG_TYPES = (None, "5", b"5", [], (), True, float("nan"), float("inf"), -math.inf, {"a": 1})


def edges(setting) -> list:
    """Values at and beyond the edges of what the setting accepts, and values of the wrong type."""
    accepts = setting.accepts
    if isinstance(accepts, Whole):
        low, high = accepts.low, accepts.high
        found = [low - 1, low, low + 1, (low + high) // 2, high - 1, high, high + 1, float(low), low + 0.5]
    elif isinstance(accepts, Number):
        low, high = accepts.low, accepts.high
        found = [low * 0.999, low, int(math.ceil(low)), (low + high) / 2, high, high * 1.001, int(high), int(high) + 1]
    elif isinstance(accepts, OneOf):
        found = [*accepts.options]
        numbers = [o for o in accepts.options if isinstance(o, (int, float)) and not isinstance(o, bool)]
        found += [max(numbers, default=0) + 1, "kaiming ", 1, 0]
        if any(isinstance(o, float) for o in numbers):  # a nearby grid: a learning rate or a strength one too many
            found += sorted({round(m * 10.0**e, 12) for m in (1, 2, 3, 5) for e in range(-6, 2)} - set(numbers))
        found += [0.05 * 3] if 0.15 in accepts.options else []  # a slider's rounding of one of its options
    else:
        options = accepts.options
        found = [[o] for o in options] + [list(options), list(reversed(options)), [options[-1], options[0]],
                                          [options[0], options[0]], [*options, "other"], [options[0], True],
                                          options[0], tuple(options[:2])]
    return found + list(WRONG_TYPES)


def validated(setting, value):
    """The value the Experiment holds once given `value`, or None when the Experiment refuses it."""
    try:
        return get(with_values(BASE, {setting.path: value}), setting.path)
    except (ValueError, TypeError):
        return None


def linked(setting, value):
    """The value a link with `value` written in it gives, or None when the link's reader refuses it."""
    query = {"v": "2", **{url: text for url, text in BASE_LINK.items() if url != setting.url}}
    experiment, problems = presets.from_query({**query, setting.url: as_text(value)})
    return None if problems else get(experiment, setting.path)


def has_own_type(setting, value) -> bool:
    """Whether a link can hold `value`: a link is text, so True and 1, or "5" and 5, read the same there."""
    accepts = setting.accepts
    if isinstance(accepts, SomeOf):
        return isinstance(value, (list, tuple)) and all(type(v) in {type(o) for o in accepts.options} for v in value)
    kinds = {int} if isinstance(accepts, Whole) else {int, float} if isinstance(accepts, Number) \
        else {type(o) for o in accepts.options}
    return type(value) in kinds and not (isinstance(value, float) and not math.isfinite(value))


def widgets_app():
    """Every setting's widget as the app draws it: the session's repair, then the widget from the table."""
    import streamlit as st

    from lora_core.settings import SETTINGS
    from ui import experiment, state

    for setting in SETTINGS:
        if setting.key in st.session_state:
            st.session_state[setting.key] = state.repaired(st.session_state[setting.key],
                                                           experiment.DEFAULTS[setting.key], state.LIMITS[setting.key])
        experiment.widget(st, setting.url)


def widget_results(values: dict) -> dict:
    """session_state key → the value its widget holds after a run that started with `values`."""
    at = AppTest.from_function(widgets_app, default_timeout=60)
    for key, value in values.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, (values, at.exception)
    return {key: at.session_state[key] for key in values}


def same(a, b) -> bool:
    a, b = (tuple(v) if isinstance(v, list) else v for v in (a, b))
    return type(a) is type(b) and a == b


def test_every_setting_is_accepted_alike_by_its_widget_its_link_and_the_experiment():
    cases = {s.key: edges(s) for s in SETTINGS}
    disagreements = []
    for i in range(max(map(len, cases.values()))):  # one app run draws every widget, each with its i-th edge
        values = {key: found[i] for key, found in cases.items() if i < len(found)}
        shown = widget_results(values)
        for key, value in values.items():
            setting = next(s for s in SETTINGS if s.key == key)
            kept = validated(setting, value)
            if isinstance(setting.accepts, SomeOf) and value in ([], ()):
                # a multiselect cleared: its widget holds nothing chosen, which the page refuses in words
                assert kept is None and linked(setting, value) is None
                continue
            # the widget keeps what the experiment keeps, in the same form, and never what it refuses
            if not (same(shown[key], kept) if kept is not None else not same(shown[key], value)):
                disagreements.append(f"{setting.url}={value!r}: experiment {kept!r}, widget {shown[key]!r}")
            if has_own_type(setting, value) and not same(linked(setting, value), kept):
                disagreements.append(f"{setting.url}={value!r}: experiment {kept!r}, link {linked(setting, value)!r}")
    assert not disagreements, "\n".join(disagreements)


def test_the_edges_include_accepted_and_refused_values_for_every_setting():
    """The test above compares something: each setting has values the experiment keeps and refuses."""
    for setting in SETTINGS:
        kept = [validated(setting, v) is not None for v in edges(setting)]
        assert any(kept) and not all(kept), setting.url


# --- caps ----------------------------------------------------------------------------------------------

def refusal(experiment, setting) -> str | None:
    """The cap's refusal of a run that `setting` affects, or None when the server starts it."""
    kind = next(k for k in KINDS if k in setting.affects)
    hidden = (experiment.baseline.hidden1, experiment.baseline.hidden2)
    try:
        limits.check_cost(experiment.total_steps(kind, train_images=5000), hidden)
    except limits.Refused as refused:
        return str(refused)
    return None


CAPPED = [s for s in SETTINGS if s.cap]


@pytest.mark.parametrize("cap", [None, "100"])  # the server's default, and an operator's own
@pytest.mark.parametrize("setting", CAPPED, ids=[s.url for s in CAPPED])
def test_a_cap_refuses_in_its_own_words_what_the_widget_the_link_and_the_experiment_accept(setting, cap,
                                                                                            monkeypatch):
    for name in (limits.MAX_HIDDEN_ENV, limits.MAX_STEPS_ENV):
        if cap is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, cap)
    limit = ui_experiment.cap(setting.cap)
    assert setting.accepts.low <= limit <= setting.accepts.high  # a value over the cap can be typed and refused
    small = with_values(BASE, {("baseline", "hidden1"): 8, ("baseline", "hidden2"): 8, ("finetune", "steps"): 1,
                               ("baseline", "max_steps"): 1})
    at_cap = with_values(small, {setting.path: limit})
    runs = at_cap.total_steps(next(k for k in KINDS if k in setting.affects), 5000) // limit if \
        setting.cap == "max_steps" else 1
    largest = limit // runs  # every run of a study counts against the cap
    for value, refused in ((largest, False), (largest + 1, True)):
        assert validated(setting, value) == value and linked(setting, value) == value
        assert same(widget_results({setting.key: value})[setting.key], value)
        message = refusal(with_values(small, {setting.path: value}), setting)
        assert (message is not None) == refused, (value, message)
        if refused:
            assert message.startswith("Not started") and f"{limit:,}" in message


def test_the_cap_shown_under_an_input_is_the_servers(monkeypatch):
    monkeypatch.setenv(limits.MAX_HIDDEN_ENV, "321")
    at = AppTest.from_function(widgets_app, default_timeout=60).run()
    assert "at most 321 neurons" in at.number_input(key="base_hidden1").help


# --- one form for a set, whatever order it was picked in ---------------------------------------------

SETS = [s for s in SETTINGS if isinstance(s.accepts, SomeOf)]


@pytest.mark.parametrize("setting", SETS, ids=[s.url for s in SETS])
def test_a_set_in_any_order_is_the_same_experiment_link_identity_and_widget_value(setting):
    options = setting.accepts.options
    picked = [options[-1], options[0]] if len(options) > 1 else [options[0]]
    forward = with_values(BASE, {setting.path: tuple(sorted(picked, key=options.index))})
    backward = with_values(BASE, {setting.path: tuple(picked)})
    assert forward == backward and get(backward, setting.path) == (options[0], options[-1])
    assert presets.to_query(forward) == presets.to_query(backward)
    assert presets.from_query({"v": "2", **BASE_LINK, setting.url: as_text(picked)}) == (forward, [])
    assert all(forward.identity(kind) == backward.identity(kind) for kind in KINDS)
    assert widget_results({setting.key: picked})[setting.key] == [options[0], options[-1]]


# --- a run's identity: exactly what it depends on ----------------------------------------------------

def inputs(experiment, kind: str):
    """What run `kind` is made from, as the pages pass it to lora_core (service.runs, ui.inside): the dataset and
    the baseline's config, then the finetune config that the run trains and the study's own knobs."""
    made_from = [experiment.dataset, experiment.baseline]
    if kind == "baseline":
        return made_from
    made_from.append(experiment.study("finetune" if kind == "inspect" else kind))
    own = {"inspect": experiment.inspect_every, "finetune": None}
    if kind in own:
        return made_from + [own[kind]]
    knobs = asdict(getattr(experiment, kind))
    knobs.pop("strength", None)  # the frontier's view: it moves the points of the one stored run
    return made_from + [knobs]


def another(setting):
    """A valid value of `setting` other than its default."""
    accepts, now = setting.accepts, get(BASE, setting.path)
    if isinstance(accepts, Whole):
        return now + 1
    if isinstance(accepts, Number):
        return now * 2
    if isinstance(accepts, OneOf):
        return next(o for o in accepts.options if o != now)
    return next((o,) for o in accepts.options if (o,) != now)


@pytest.mark.parametrize("kind", KINDS)
def test_a_runs_identity_moves_with_its_own_settings_and_no_other(kind):
    for setting in SETTINGS:
        changed = with_values(BASE, {setting.path: another(setting)})
        depends = kind in setting.affects
        assert (changed.identity(kind) != BASE.identity(kind)) == depends, (kind, setting.url)
        # and the table says what the run is really made from: no needless retraining, no wrong reuse
        assert (inputs(changed, kind) != inputs(BASE, kind)) == depends, (kind, setting.url)


def test_the_comparison_and_the_frontier_do_not_depend_on_the_lora_pages_rank():
    ranked = with_values(BASE, {("finetune", "rank"): 4})
    for kind in ("compare", "frontier", "oracle", "scaling", "inits"):
        assert ranked.identity(kind) == BASE.identity(kind)
    assert ranked.identity("finetune") != BASE.identity("finetune")
