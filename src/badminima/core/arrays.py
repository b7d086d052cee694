"""Checks for a researcher's own arrays (the bring-your-own-data functions of both papers): each turns what it is
given into a CPU tensor of the expected shape and kind, or raises a one-line ParameterError naming the argument,
the bad value and what is allowed; and the SHA-256 that keys the runs trained on them."""
from __future__ import annotations

import hashlib
import numbers
from typing import Any

import numpy as np
import torch

from badminima.core.config import ParameterError

Tensor = torch.Tensor


def digest(*arrays: Tensor) -> str:
    """SHA-256 of the arrays' dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.dtype} {tuple(a.shape)}".encode())
        h.update(a.contiguous().numpy().tobytes())
    return h.hexdigest()


def as_tensor(name: str, value: Any) -> Tensor:
    """`value` as a CPU tensor of real numbers, a copy: later changes to the caller's array reach no run."""
    if isinstance(value, Tensor):
        t = value.detach().cpu().clone()
    else:
        try:
            t = torch.from_numpy(np.array(value))
        except (TypeError, ValueError):
            t = None
    if t is None or t.is_complex():
        raise ParameterError(f"{name}={type(value).__name__} is not an array of numbers; allowed: a numpy array "
                             f"or torch tensor")
    return t


def labels(name: str, value: Any, n: int, rows: str) -> Tensor:
    """Labels as int64 (n,), one per row (image, point) of the array named `rows`; whole numbers stored as floats
    are taken."""
    t = as_tensor(name, value)
    if tuple(t.shape) != (n,):
        raise ParameterError(f"{name}=array of shape {tuple(t.shape)} does not fit {rows}; allowed: shape ({n},), "
                             f"one label per row of {rows}")
    if t.dtype == torch.bool or (t.is_floating_point() and not bool((torch.isfinite(t) & (t == t.round())).all())):
        raise ParameterError(f"{name}=array of dtype {str(t.dtype).removeprefix('torch.')} holds values that are "
                             f"not whole numbers; allowed: integer labels 0 .. k-1")
    return t.long()


def _listed(values: Tensor) -> str:
    shown = values.tolist()
    return f"{shown[:10]}{' ...' if len(shown) > 10 else ''}"


def classes(y: Tensor, y_test: Tensor) -> int:
    """k, the number of classes: y_train must hold every label 0 .. k-1 and nothing else, y_test no other."""
    present = y.unique()
    k = len(present)
    if k < 2:
        raise ParameterError(f"y_train=array of labels {_listed(present)} has fewer than 2 classes; allowed: labels "
                             f"0 .. k-1 with k >= 2")
    if not torch.equal(present, torch.arange(k)):
        raise ParameterError(f"y_train=array of labels {_listed(present)} is not labelled 0 .. k-1; allowed: each "
                             f"of the labels 0 .. {k - 1}")
    outside = y_test.unique()
    outside = outside[(outside < 0) | (outside >= k)]
    if len(outside):
        raise ParameterError(f"y_test=array with labels {_listed(outside)} outside y_train's classes; allowed: "
                             f"labels 0 .. {k - 1}")
    return k


def integers(value: Any) -> Any:
    """A tuple of Python ints when `value` is an int or a collection of integers (numpy's too), else `value`
    unchanged, for the check to name as it was given."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return (int(value),)
    if isinstance(value, (list, tuple, range, np.ndarray, Tensor)):
        items = list(value.tolist() if isinstance(value, (np.ndarray, Tensor)) else value)
        if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items):
            return tuple(int(v) for v in items)
    return value
