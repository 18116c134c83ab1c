from hypothesis import given, settings
from hypothesis import strategies as st

from lora_core import FinetuneConfig
from lora_core.presets import MAX_RANK, PRESETS, RunSettings, from_query, to_query


def test_round_trip_of_every_preset():
    for preset in PRESETS.values():
        assert from_query(to_query(preset)) == (preset, [])
    custom = RunSettings(seed=7, dataset="fashion-mnist", rank=4, alpha=0.5, digits=(2, 7), steps=300,
                         targets=("linear2",))
    assert to_query(custom) == {"seed": "7", "dataset": "fashion-mnist", "rank": "4", "alpha": "0.5",
                                "digits": "2,7", "steps": "300", "targets": "linear2"}
    assert from_query(to_query(custom)) == (custom, [])


def test_named_preset_then_overrides():
    got, problems = from_query({"preset": "forgetting", "rank": "2"})
    assert got.steps == PRESETS["forgetting"].steps and got.rank == 2 and not problems


def test_bad_values_are_reported_and_defaults_kept():
    got, problems = from_query({"rank": "0", "alpha": "nan", "digits": "2,11", "steps": "1e9", "seed": "-1",
                                "dataset": "cifar", "targets": "linear9", "preset": "nope", "other": "x"})
    assert got == RunSettings()
    assert len(problems) == 8
    assert any(p.startswith("rank='0'") and "1..64" in p for p in problems)


def test_lists_take_the_last_value_and_digits_are_sorted_unique():
    got, problems = from_query({"rank": ["3", "5"], "digits": " 7, 2,7 "})
    assert got.rank == 5 and got.digits == (2, 7) and not problems


query_values = st.one_of(st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3), st.none(),
                         st.integers(), st.floats())
keys = st.sampled_from(["seed", "dataset", "rank", "alpha", "digits", "steps", "targets", "preset", "zzz"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, query_values, max_size=8))
def test_fuzzed_query_never_raises_and_always_gives_a_valid_run(params):
    got, problems = from_query(params)
    assert isinstance(problems, list)
    assert 1 <= got.rank <= MAX_RANK and got.digits and got.targets
    FinetuneConfig(rank=got.rank, alpha=got.alpha, targets=got.targets, digits=got.digits, steps=got.steps,
                   seed=got.seed)  # accepted by the core
