"""The configuration checks of core/config.py, asserted exactly: the one line each refusal prints, the bounds
themselves, and the canonical form that keys stored results."""
import dataclasses
import hashlib
import json
import math

import numpy as np
import pytest

from badminima.core.config import (ADDED_LATER, ParameterError, as_dict, canonical, check_choice, check_range,
                                   check_seeds, config_key, scaled)


def refusal(check, *args, **kwargs) -> str:
    with pytest.raises(ParameterError) as err:
        check(*args, **kwargs)
    return str(err.value)


def test_a_parameter_error_knows_the_name_it_starts_with_and_takes_another():
    err = ParameterError("lr=5 is out of range; allowed: a number in [0, 1]")
    assert err.name == "lr"
    assert str(err.renamed("--lr")) == "--lr=5 is out of range; allowed: a number in [0, 1]"
    assert isinstance(err.renamed("--lr"), ParameterError)
    nameless = ParameterError("--lr=5 is out of range")
    assert nameless.name is None and nameless.renamed("x") is nameless
    assert ParameterError("no equals sign here").name is None


def test_check_choice_returns_the_value_or_lists_what_is_allowed():
    assert check_choice("model", "b", ["a", "b"]) == "b"
    assert check_choice("model", "b", (c for c in "ab")) == "b", "any iterable, read once"
    assert refusal(check_choice, "model", "c", (c for c in "ab")) == \
        "model='c' is not allowed; choose one of 'a', 'b'"


@pytest.mark.parametrize("bounds, allowed", [
    (dict(low=0, high=1), "a number in [0, 1]"),
    (dict(low=0, high=1, open_low=True), "a number in (0, 1]"),
    (dict(low=0, high=1, open_high=True), "a number in [0, 1)"),
    (dict(low=0.5), "a number >= 0.5"),
    (dict(low=0, open_low=True), "a number > 0"),
    (dict(high=1e-4), "a number <= 0.0001"),
    (dict(high=2, open_high=True), "a number < 2"),
])
def test_check_range_names_its_interval(bounds, allowed):
    assert refusal(check_range, "x", 7.5 if "high" in bounds else -1, **bounds).endswith(f"; allowed: {allowed}")


@pytest.mark.parametrize("bounds, inside, outside", [
    (dict(low=0, high=1), [0, 1, 0.5], [-1e-9, 1 + 1e-9]),
    (dict(low=0, high=1, open_low=True), [1e-9, 1], [0, 1.5]),
    (dict(low=0, high=1, open_high=True), [0, 1 - 1e-9], [1, -0.5]),
    (dict(low=2), [2, 1e300], [1.999]),
    (dict(low=2, open_low=True), [2.001], [2]),
    (dict(high=2), [2, -1e300], [2.001]),
    (dict(high=2, open_high=True), [1.999], [2]),
])
def test_check_range_keeps_its_bounds_exactly(bounds, inside, outside):
    for value in inside:
        assert check_range("x", value, **bounds) is value
    for value in outside:
        assert refusal(check_range, "x", value, **bounds).startswith(f"x={value!r} is out of range; allowed: ")


def test_check_range_refuses_what_is_not_a_number_or_not_finite():
    assert refusal(check_range, "lr", "0.1", low=0) == "lr='0.1' is not a number; allowed: a number >= 0"
    assert refusal(check_range, "lr", True, low=0) == "lr=True is not a number; allowed: a number >= 0"
    assert refusal(check_range, "lr", None) == "lr=None is not a number; allowed: a number"
    assert refusal(check_range, "lr", math.inf) == "lr=inf is out of range; allowed: a number"
    assert refusal(check_range, "lr", math.nan, low=0) == "lr=nan is out of range; allowed: a number >= 0"
    assert check_range("lr", 3) == 3 and check_range("lr", -2.5) == -2.5


def test_check_range_with_integer_refuses_floats_and_bools():
    assert check_range("epochs", 3, low=1, integer=True) == 3
    assert refusal(check_range, "epochs", 3.0, low=1, integer=True) == \
        "epochs=3.0 is not an integer; allowed: an integer >= 1"
    assert refusal(check_range, "epochs", False, low=0, integer=True) == \
        "epochs=False is not an integer; allowed: an integer >= 0"
    assert refusal(check_range, "epochs", 0, low=1, integer=True) == \
        "epochs=0 is out of range; allowed: an integer >= 1"


@pytest.mark.parametrize("seeds, expected", [(0, (0,)), (7, (7,)), ([3, 0, 1], (3, 0, 1)), ((2,), (2,))])
def test_check_seeds_takes_one_seed_or_a_list(seeds, expected):
    assert check_seeds(seeds) == expected and isinstance(check_seeds(seeds), tuple)


@pytest.mark.parametrize("seeds", [[], (), [-1], [0, -2], [True], True, [1.0], 1.0, [1, 1], "0", None, {0}])
def test_check_seeds_refuses_anything_else_in_one_line(seeds):
    assert refusal(check_seeds, seeds) == \
        f"seeds={seeds!r} must be a non-empty list of distinct non-negative integers"


@dataclasses.dataclass
class Inner:
    width: float
    sizes: tuple


@dataclasses.dataclass
class Outer:
    inner: Inner
    name: str = "x"
    later: int | None = dataclasses.field(default=None, metadata=ADDED_LATER)


def test_as_dict_is_plain_json_and_leaves_out_a_later_field_at_its_default():
    assert as_dict(Outer(Inner(1.5, (1, (2, 3))))) == {"inner": {"width": 1.5, "sizes": [1, [2, 3]]}, "name": "x"}
    assert as_dict(Outer(Inner(1, ()), later=0)) == {"inner": {"width": 1, "sizes": []}, "name": "x", "later": 0}
    assert as_dict({1: (Inner(2, ()),)}) == {"1": [{"width": 2, "sizes": []}]}


def test_canonical_gives_every_number_one_form_and_keeps_bools_apart():
    form = canonical({"a": 1.0, "b": np.float32(0.5), "c": np.int64(3), "d": True, "e": [2.0, (1.5, False)],
                      2.0: "two", True: None})
    assert form == {"a": 1, "b": 0.5, "c": 3, "d": True, "e": [2, [1.5, False]], "2": "two", "True": None}
    assert type(form["a"]) is int and type(form["b"]) is float and type(form["c"]) is int
    assert form["d"] is True and form["e"][1][1] is False
    assert canonical(Outer(Inner(2.0, (1.0,)))) == {"inner": {"width": 2, "sizes": [1]}, "name": "x"}
    assert canonical(Outer) is Outer, "a class is not a configuration"
    assert canonical("text") == "text"


def test_config_key_hashes_the_sorted_compact_json_of_the_canonical_form():
    text = json.dumps({"a": 2, "b": [1, 0.5]}, sort_keys=True, separators=(",", ":"))
    assert text == '{"a":2,"b":[1,0.5]}'
    assert config_key({"b": (1.0, 0.5), "a": 2.0}) == hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclasses.dataclass
class Recipe:
    lr: float
    epochs: int
    models: tuple = ("a",)


SCALES = {"smoke": {"lr": 0.1, "epochs": 2}, "cpu": {"lr": 0.01, "epochs": 30}}


def test_scaled_takes_a_scales_defaults_and_the_given_overrides():
    assert scaled(Recipe, SCALES, "cpu", {}, "the recipe") == Recipe(0.01, 30)
    assert scaled(Recipe, SCALES, "smoke", {"lr": None, "epochs": 5}, "the recipe") == Recipe(0.1, 5)
    assert scaled(Recipe, SCALES, "smoke", {"models": ["b", "c"]}, "the recipe").models == ("b", "c")
    assert scaled(Recipe, SCALES, "smoke", {}, "the recipe", base={"lr": 1.0, "epochs": 9}) == Recipe(1.0, 9)


def test_scaled_refuses_an_unknown_scale_a_repeat_and_an_unknown_parameter():
    assert refusal(scaled, Recipe, SCALES, "gpu", {}, "the recipe") == \
        "scale='gpu' is not allowed; choose one of 'smoke', 'cpu'"
    assert refusal(scaled, Recipe, SCALES, "cpu", {"models": ["a", "b", "b", "a"]}, "the recipe") == \
        "models=['a', 'b', 'b', 'a'] lists 'b' more than once; allowed: a list without repeats"
    assert refusal(scaled, Recipe, SCALES, "cpu", {"width": 3, "depth": 2}, "the recipe") == \
        "depth=2 is an unknown parameter of the recipe; allowed: lr, epochs, models"


def test_as_dict_turns_numpy_scalars_into_python_numbers_and_keeps_bools():
    out = as_dict({"a": np.int64(3), "b": np.float32(0.5), "c": True, "d": (np.int32(1), False)})
    assert out == {"a": 3, "b": 0.5, "c": True, "d": [1, False]}
    assert type(out["a"]) is int and type(out["b"]) is float and out["c"] is True and out["d"][1] is False


@pytest.mark.parametrize("value, shown", [(np.float32(0.5), "0.5"), (np.float64(0.25), "0.25"), (np.int64(7), "7"),
                                          (2.5, "2.5")])
def test_check_range_shows_a_value_as_the_user_wrote_it(value, shown):
    with pytest.raises(ParameterError) as err:
        check_range("lr", value, 10)
    assert str(err.value) == f"lr={shown} is out of range; allowed: a number >= 10"


def test_check_range_takes_every_64_bit_integer_and_names_the_machine_bound_beyond():
    biggest = 2**63 - 1
    assert check_range("seed", biggest, integer=True) == biggest
    assert check_range("seed", -biggest, integer=True) == -biggest
    for value, bound in ((biggest + 1, f"at most {biggest}"), (-biggest - 1, f"at least {-biggest}")):
        with pytest.raises(ParameterError) as err:
            check_range("seed", value, integer=True)
        assert str(err.value) == (f"seed={value} is too large for this machine's 64-bit integers; allowed: an "
                                  f"integer, {bound}")


def test_check_seeds_takes_the_largest_64_bit_seed_and_refuses_one_beyond():
    biggest = 2**63 - 1
    assert check_seeds([biggest]) == (biggest,)
    with pytest.raises(ParameterError) as err:
        check_seeds([0, biggest + 1])
    assert str(err.value) == (f"seeds={[0, biggest + 1]!r} holds a seed too large for this machine's 64-bit "
                              f"integers; allowed: seeds in [0, {biggest}]")
