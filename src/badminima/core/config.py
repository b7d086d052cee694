"""Parameter checking shared by notebooks and the command line, and the stable key of a configuration."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from typing import Any, Iterable

# The largest integer a parameter may hold: torch and numpy keep integers (seeds, sizes, counts) in 64 bits.
MACHINE_INTEGER = 2**63 - 1


class ParameterError(ValueError):
    """A bad parameter. The message is one line that starts with `name=value` and says what is allowed; `renamed`
    gives the same line under the name its user typed (a command-line option, say)."""

    @property
    def name(self) -> str | None:
        head = str(self).split("=", 1)[0]
        return head if head.isidentifier() else None

    def renamed(self, name: str) -> ParameterError:
        return ParameterError(name + str(self)[len(self.name):]) if self.name else self


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ParameterError(f"{name}={value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}")
    return value


def _interval(low: float | None, high: float | None, open_low: bool, open_high: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
    if low is not None:
        return f" {'>' if open_low else '>='} {low:g}"
    if high is not None:
        return f" {'<' if open_high else '<='} {high:g}"
    return ""


def check_range(name: str, value: Any, low: float | None = None, high: float | None = None,
                integer: bool = False, open_low: bool = False, open_high: bool = False) -> Any:
    """`value` if it is a number (an integer if `integer`) within [low, high]; `open_low`/`open_high` exclude
    the bound itself."""
    kind = "an integer" if integer else "a number"
    allowed = f"allowed: {kind}{_interval(low, high, open_low, open_high)}"
    ok_type = isinstance(value, numbers.Integral if integer else numbers.Real)   # numpy's scalars too
    if isinstance(value, bool) or not ok_type:
        raise ParameterError(f"{name}={value!r} is not {kind}; {allowed}")
    shown = str(value)   # 0.01 for numpy scalars too (their repr is np.float32(0.01))
    if integer and not -MACHINE_INTEGER <= value <= MACHINE_INTEGER:
        bound = f"at most {MACHINE_INTEGER}" if value > 0 else f"at least {-MACHINE_INTEGER}"
        raise ParameterError(f"{name}={shown} is too large for this machine's 64-bit integers; {allowed}, {bound}")
    below = low is not None and (value <= low if open_low else value < low)
    above = high is not None and (value >= high if open_high else value > high)
    if below or above or not math.isfinite(value):
        raise ParameterError(f"{name}={shown} is out of range; {allowed}")
    return value


def check_seeds(seeds: Any) -> tuple[int, ...]:
    """Seeds as Python integers; numpy's integers are taken too."""
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = [seeds]
    if (not isinstance(seeds, (list, tuple)) or not seeds
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 0 for s in seeds)
            or len(set(seeds)) != len(seeds)):
        raise ParameterError(f"seeds={seeds!r} must be a non-empty list of distinct non-negative integers")
    if max(seeds) > MACHINE_INTEGER:   # torch takes a seed modulo 2**63: a larger one would rerun a smaller one
        raise ParameterError(f"seeds={seeds!r} holds a seed too large for this machine's 64-bit integers; allowed: "
                             f"seeds in [0, {MACHINE_INTEGER}]")
    return tuple(int(s) for s in seeds)


# The metadata of a dataclass field added after results were stored: left out of the configuration's form (and so
# of its key) while it holds its default, so the results stored before it keep their keys.
ADDED_LATER = {"omit_default": True}


def as_dict(obj: Any) -> Any:
    """Plain JSON-able form of a configuration (dataclasses, tuples and nested dicts); a field marked ADDED_LATER
    is left out while it holds its default."""
    if dataclasses.is_dataclass(obj):
        return {f.name: as_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (f.metadata.get("omit_default") and getattr(obj, f.name) == f.default)}
    if isinstance(obj, dict):
        return {str(k): as_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [as_dict(v) for v in obj]
    if isinstance(obj, numbers.Integral) and not isinstance(obj, bool):   # numpy's scalars, which JSON refuses
        return int(obj)
    if isinstance(obj, numbers.Real) and not isinstance(obj, bool):
        return float(obj)
    return obj


def _number(value: numbers.Real) -> int | float:
    """One form per value: an integral float is its int, so 1 and 1.0 key alike (bools are left to the caller)."""
    if isinstance(value, numbers.Integral):
        return int(value)
    value = float(value)
    return int(value) if value.is_integer() else value


def canonical(obj: Any) -> Any:
    """The form of a configuration that its key hashes: `as_dict`'s, with every number in one form (1 and 1.0,
    numpy scalars and Python ones alike); bools stay bools, so True never keys like 1."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return canonical(as_dict(obj))
    if isinstance(obj, dict):
        return {str(_number(k) if isinstance(k, numbers.Real) and not isinstance(k, bool) else k): canonical(v)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    if isinstance(obj, numbers.Real) and not isinstance(obj, bool):
        return _number(obj)
    return obj


def config_key(config: Any) -> str:
    """A short hash of the whole configuration in canonical form: equal configurations share stored results."""
    text = json.dumps(canonical(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def scaled(cls: type, scales: dict[str, dict], scale: str, overrides: dict, what: str,
           base: dict | None = None) -> Any:
    """A configuration `cls` from a scale's defaults (`base` replaces them where given) and the overrides that
    are not None; lists become tuples, since notebook parameters arrive as lists."""
    check_choice("scale", scale, scales)
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items() if v is not None}
    for name, value in given.items():   # a repeat would run, tabulate and test the same thing twice
        repeated = [v for i, v in enumerate(value) if v in value[:i]] if isinstance(value, tuple) else []
        if repeated:
            raise ParameterError(f"{name}={list(value)!r} lists {repeated[0]!r} more than once; allowed: a list "
                                 "without repeats")
    values = {**(scales[scale] if base is None else base), **given}
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ParameterError(f"{unknown[0]}={values[unknown[0]]!r} is an unknown parameter of {what}; allowed: "
                             f"{', '.join(names)}")
    return cls(**values)
