"""The experiment on screen: every widget that changes a number writes one field of a lora_core Experiment,
every page reads its settings from it, and the URL is that Experiment (lora_core.presets).

On a session's first run the URL's experiment becomes the widgets' values; from then on the URL follows
the widgets, so the address bar is always a link to what is on screen.
"""
import re
from dataclasses import replace

import streamlit as st

from lora_core import presets as core
from lora_core import settings
from lora_core.experiment import Experiment
from service import limits, share_link
from ui import uploads

# URL field → the session_state key of the widget that shows it (lora_core.settings)
KEYS = {s.url: s.key for s in settings.SETTINGS}
# the server limit a setting names (lora_core.settings.Setting.cap): its value, and what it means
CAPS = {"max_hidden": limits.max_hidden, "max_steps": limits.max_steps}
CAP_NOTES = {"max_hidden": "This server trains hidden layers of at most {:,} neurons.",
             "max_steps": "This server runs at most {:,} training steps in one training, every run of a study "
                          "counted."}


def cap(name: str) -> int:
    """The value this server gives the limit `name`."""
    return CAPS[name]()


def widget(container, url: str, **extra):
    """Draw the widget of setting `url` (its link name) in `container` (st, a column): its label, bounds or
    options, help and cap from the settings table; `extra` adds what only the page knows (a step, a
    format, another label or help)."""
    setting = settings.BY_URL[url]
    if class_lock(url) == HIDDEN:
        return st.session_state[setting.key]  # the class's value, set by refresh
    text = extra.pop("help", setting.help)
    if setting.cap:
        text = " ".join(filter(None, [text, CAP_NOTES[setting.cap].format(cap(setting.cap))]))
    if class_lock(url) == LOCKED:
        extra["disabled"] = True
        text = " ".join(filter(None, [text, LOCKED_NOTE]))
    draw = getattr(container, setting.widget)
    return draw(extra.pop("label", setting.label), key=setting.key, help=text, **settings.widget_bounds(setting),
                **extra)


LOCKS_KEY = "experiment_class_locks"  # this run's ({URL field: value} locked, {URL field} hidden)
LOCKED, HIDDEN = "locked", "hidden"
LOCKED_NOTE = "Locked by your teacher for the class."


def class_lock(url: str) -> str | None:
    """LOCKED (drawn, not editable) or HIDDEN (not drawn) when this session's class fixes setting `url`."""
    locked, hidden = st.session_state.get(LOCKS_KEY, ({}, frozenset()))
    return HIDDEN if url in hidden else LOCKED if url in locked else None


def _enforce_class_settings() -> None:
    """Give the widgets of the settings this session's class locks or hides the class's values (before they
    are drawn), whatever a link, a preset or an earlier run set: a student's runs use the class's settings."""
    from ui import classroom  # here: ui.classroom imports this module

    chosen, locked = classroom.student_settings(), {}
    for url, value in chosen.get("locked", {}).items():
        if (setting := settings.BY_URL.get(url)) is None:
            continue
        try:
            value = widget_value(settings.checked(setting, tuple(value) if isinstance(value, list) else value))
        except ValueError:
            continue  # a value this code no longer accepts: the student's own stays
        st.session_state[setting.key] = locked[url] = value
    st.session_state[LOCKS_KEY] = (locked, frozenset(chosen.get("hidden", ())) & set(locked))


UPLOADS = uploads.URL_FIELD  # not part of the experiment: the uploaded adapters a reload or a link brings back
UPLOAD_NAME = re.compile(uploads.UPLOAD_PREFIX + "[0-9a-f]{32}")
PROBLEMS_KEY = "experiment_problems"
LATER_KEY = "experiment_later"


def set_later(key: str, value) -> None:
    """Give a widget a new value in the next run, before it is drawn (Streamlit refuses it after)."""
    st.session_state.setdefault(LATER_KEY, {})[key] = value


def widget_value(value):
    """A description's value as its widget holds it: lists for multiselects."""
    return list(value) if isinstance(value, tuple) else value


def widget_values(experiment: Experiment) -> dict[str, object]:
    """session_state key → value, for every widget of the description."""
    return {KEYS[name]: widget_value(core.get(experiment, path)) for name, (path, _) in core.FIELDS.items()}


DEFAULTS = widget_values(core.DEFAULT)


def apply(experiment: Experiment, fields=None) -> None:
    """Give the widgets this experiment (before they are drawn in this run): all of it, or these URL fields."""
    for name, (path, _) in core.FIELDS.items():
        if fields is None or name in fields:
            st.session_state[KEYS[name]] = widget_value(core.get(experiment, path))


def read() -> tuple[Experiment, dict[str, str]]:
    """The experiment the widgets hold now, and {URL field: why} for every value that cannot run (that
    field then keeps its default, so that the pages that do not show it still work)."""
    ss, problems, experiment = st.session_state, {}, core.DEFAULT
    for name, (path, _) in core.FIELDS.items():
        value = ss.get(KEYS[name], DEFAULTS[KEYS[name]])
        value = tuple(value) if isinstance(value, list) else value
        if value == core.get(experiment, path):
            continue
        try:
            experiment = core.with_values(experiment, {path: value})
        except (ValueError, TypeError) as err:
            problems[name] = str(err)
    return experiment, problems


def current() -> Experiment:
    """The experiment of this run (see refresh)."""
    return st.session_state["experiment"]


def replace_current(**changes) -> Experiment:
    """This run's experiment with `changes` (the widgets get them next run: set_later), and its URL."""
    experiment = st.session_state.experiment = replace(current(), **changes)
    _write_url(_query(experiment))
    return experiment


def _query(experiment: Experiment) -> dict[str, str]:
    query = core.to_query(experiment)
    if held := st.session_state.get(uploads.UPLOADS_KEY) or st.session_state.get(uploads.PENDING_KEY):
        query[UPLOADS] = ",".join(held)
    return query


def refresh() -> Experiment:
    """Apply widget values set for this run (set_later), read the experiment and put it in the URL (the
    frame calls it through from_link, before every page)."""
    for key, value in st.session_state.pop(LATER_KEY, {}).items():
        st.session_state[key] = value
    _enforce_class_settings()
    experiment, field_problems = read()
    st.session_state.experiment = experiment
    st.session_state.experiment_field_problems = field_problems
    _write_url(_query(experiment))
    return experiment


def problem(*names: str) -> str | None:
    """Why one of these URL fields' widgets holds a value that cannot run, if one does."""
    found = st.session_state.get("experiment_field_problems", {})
    return next((found[n] for n in names if n in found), None)


def problem_for(kind: str, *sections: str) -> str | None:
    """Why a setting of these Experiment sections ("baseline", "finetune", a study's) that run `kind`
    depends on (lora_core.settings) holds a value that cannot run, if one does."""
    return problem(*(s.url for s in settings.SETTINGS if s.path[0] in sections and kind in s.affects))


def _dismiss() -> None:
    st.session_state[PROBLEMS_KEY] = []


def _choose() -> None:
    name = st.session_state.preset_name
    if name in core.PRESETS:
        apply(core.PRESETS[name])
        st.session_state[PROBLEMS_KEY] = []


def from_link() -> Experiment:
    """Read the URL once per session, then keep it in step with the widgets; warn about refused values.

    Call from the frame before any widget is drawn: what it draws lands at the top of the page."""
    if PROBLEMS_KEY not in st.session_state:
        params = st.query_params.to_dict()
        experiment, problems = core.from_query(params)
        named = [name for name in core.FIELDS if name in params]
        apply(experiment, None if "preset" in params else named)  # a preset sets every field; a link its own
        linked = [d for d in str(params.get(UPLOADS, "")).split(",") if UPLOAD_NAME.fullmatch(d)]
        st.session_state[uploads.PENDING_KEY] = linked[-uploads.PER_PERSON:]
        st.session_state[PROBLEMS_KEY] = problems
    if problems := st.session_state[PROBLEMS_KEY]:
        text, button = st.columns([6, 1])
        with text:
            st.warning("The link's settings were not all usable; these were replaced:", icon=":material/warning:")
            for line in problems:
                st.text(f"• {line}")  # a link's values are shown as typed, never as Markdown
        button.button("Dismiss", key="preset_dismiss", on_click=_dismiss)
    return refresh()


def _write_url(query: dict[str, str]) -> None:
    """The address bar as `query`, in its order (v first): written only when it differs."""
    if list(st.query_params.to_dict().items()) != list(query.items()):
        st.query_params.from_dict(query)


def sidebar(experiment: Experiment) -> None:
    """The named presets and the link to the current experiment; draw inside the sidebar."""
    st.session_state.preset_name = core.preset_of(experiment)
    st.selectbox("Preset", list(core.PRESETS), key="preset_name", index=None, on_change=_choose,
                 placeholder="your own settings",
                 help="A preset sets every setting: the dataset, the baseline, the finetune and each study.")
    if st.session_state.preset_name == "the notebook":
        st.caption("What still differs from the notebook: " + " ".join(core.NOTEBOOK_DIFFERENCES))
        st.page_link("app_pages/inits.py", label="Why A does not start at zero", icon=":material/eco:")
    with st.expander("Share this experiment"):
        st.caption("Whoever opens this link sees this experiment: every setting is in it, and runs already made "
                   "on this server are shown at once, without training again. The address bar holds it too.")
        url, local_only = share_link.link(st.context.url, core.to_query(experiment))
        st.code(url, language=None)
        if local_only:
            st.warning(share_link.local_only_warning(st.get_option("server.port")), icon=":material/wifi_off:")
        st.caption("The same link gives the same numbers on the same server: its runs are stored here. On "
                   "another machine, another CPU or thread count changes float rounding, so the last digits "
                   "may differ.")
