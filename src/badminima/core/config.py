"""Parameter checking shared by notebooks and the command line, and the stable key of a configuration."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Iterable

SCALES = ("smoke", "cpu", "paper")


class ParameterError(ValueError):
    """A bad parameter: the message is one line naming the parameter and what is allowed."""


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ParameterError(f"{name}={value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}")
    return value


def check_range(name: str, value: Any, low: float | None = None, high: float | None = None,
                integer: bool = False) -> Any:
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise ParameterError(f"{name}={value!r} must be {kind}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ParameterError(f"{name}={value!r} is out of range; allowed: {kind} in {bounds}")
    return value


def check_seeds(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not isinstance(seeds, (list, tuple)) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ParameterError(f"seeds={seeds!r} must be a non-empty list of non-negative integers")
    if len(set(seeds)) != len(seeds):
        raise ParameterError(f"seeds={seeds!r} must not repeat a seed")
    return tuple(seeds)


def as_dict(obj: Any) -> Any:
    """Plain JSON-able form of a configuration (dataclasses, tuples and nested dicts)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: as_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): as_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [as_dict(v) for v in obj]
    return obj


def config_key(config: Any) -> str:
    """A short hash of the whole configuration: equal configurations share stored results."""
    text = json.dumps(as_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def scaled(cls: type, scales: dict[str, dict], scale: str, overrides: dict, what: str,
           base: dict | None = None) -> Any:
    """A configuration `cls` from a scale's defaults (`base` replaces them where given) and the overrides that
    are not None; lists become tuples, since notebook parameters arrive as lists."""
    check_choice("scale", scale, scales)
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items() if v is not None}
    values = {**(scales[scale] if base is None else base), **given}
    unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ParameterError(f"unknown parameter(s) {sorted(unknown)} for {what}")
    return cls(**values)
