"""Process-wide settings: the CPU kernels every result is computed with (pinned once per process, when badminima is
imported), and torch's thread count, denormal flushing and environment variables changed for the duration of a block
and restored as they were on the way out, also when the block raises: a library call leaves the caller's process as
it found it."""
from __future__ import annotations

import contextlib
import os
import platform
import signal
import threading
from typing import Iterator

import torch

# The kernels every stored result is computed with: one instruction set, so one rounding and summation order, on any
# x86-64 CPU with AVX2 and FMA whatever else it has (with AVX-512, ATen's and oneDNN's kernels and numba's loops take
# 16 floats at a time and sum in another order: the same commit gave other accuracies and verdicts). Each library
# reads its variable once, at its first computation: `pin_kernels` sets them when badminima is imported, and every
# chapter's kernel, worker process and Ray task inherits them (on_ray passes them on to a cluster's workers).
KERNELS = {
    "ATEN_CPU_CAPABILITY": "avx2",        # ATen's vectorized CPU kernels (elementwise, reductions, pooling)
    "ONEDNN_MAX_CPU_ISA": "AVX2",         # oneDNN's convolutions and batch norm, which dispatch on their own
    "MKL_CBWR": "AVX2,STRICT",            # MKL's matrix products: conditional numerical reproducibility
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "NUMBA_CPU_NAME": "haswell",          # the fast path's compiled loops: x86-64-v3 code, with no host feature
    "NUMBA_CPU_FEATURES": "",             # added ("" is haswell's own set; unset, numba adds the host's)
}
BASELINE = "AVX2"   # what torch reports when the pin took: the capability ATen dispatches to
# Switches the pin off for a process and those it starts: the host's fastest kernels, results stored under keys of
# their own (see kernels_tag), so a store never mixes them with the reproducible ones.
FAST_KERNELS = "BADMINIMA_FAST_KERNELS"
# Every result is computed on this many intra-op threads, here, in a worker process or in a Ray task alike: a
# reduction split over threads sums in an order that depends on their number.
RUN_THREADS = 1


def pin_kernels() -> None:
    """Set KERNELS in this process's environment where the user has not set them (on x86-64, unless
    $BADMINIMA_FAST_KERNELS is 1). Takes effect for each library that has not computed yet: import badminima
    before running torch code. A variable the user set otherwise, or torch having computed first, shows in
    kernels_tag, so such results are stored apart."""
    if os.environ.get(FAST_KERNELS) != "1" and platform.machine().lower() in ("x86_64", "amd64"):
        for name, value in KERNELS.items():
            os.environ.setdefault(name, value)


def kernels() -> dict[str, str]:
    """The kernels this process computes with, for a result's manifest: ATen's capability as torch dispatches it,
    the other libraries' variables as set, and the CPU's architecture."""
    return {"aten": torch.backends.cpu.get_cpu_capability(), "machine": platform.machine(),
            **{name: os.environ.get(name, "unset") for name in KERNELS}}


def kernels_tag() -> str | None:
    """None where this process computes with the pinned kernels; else what it computes with, for results' keys."""
    now = kernels()
    if now["aten"] == BASELINE and all(now[name] == value for name, value in KERNELS.items()):
        return None
    return " ".join([now["machine"], now["aten"], *(f"{name}={now[name]}" for name, value in KERNELS.items()
                                                    if now[name] != value)])


def flush_denormal_enabled() -> bool:
    """Whether this thread flushes denormal floats to zero. torch can set the flag but cannot read it back, so it is
    read from its effect: a denormal float32 (1e-39) times one stays 1e-39 unless denormals are flushed."""
    return float(torch.full((1,), 1e-39) * 1.0) == 0.0


@contextlib.contextmanager
def flush_denormal(on: bool = True) -> Iterator[None]:
    """Denormal floats flushed to zero (on) or kept (off) inside the block. Where the CPU cannot flush them, torch
    ignores the request and nothing changes."""
    before = flush_denormal_enabled()
    torch.set_flush_denormal(on)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


@contextlib.contextmanager
def threads(count: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to `count` inside the block (None: left alone)."""
    before = torch.get_num_threads()
    if count is not None and count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Environment variables set (None: removed) inside the block; child processes started inside inherit them."""
    before = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            _set(name, value)
        yield
    finally:
        for name, value in before.items():
            _set(name, value)


def _set(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


# Options glibc reads once, when a process starts (mallopt(3)): keep up to 1 GB of freed memory for reuse. Training
# loops allocate and free activations of a few MB at every step; by default glibc hands them back to the system and
# the next step page-faults them in again (about 2,500 faults a step in a Paper B width sweep at p = 500 with 32
# members), which costs more than the arithmetic. No library call sets them in its own process (glibc cannot say
# what they were, so they could not be restored); the book starts each chapter's kernel with them instead.
KEEP_FREED_MEMORY = {"MALLOC_TRIM_THRESHOLD_": str(1 << 30), "MALLOC_MMAP_THRESHOLD_": str(1 << 30)}


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block ends, then take effect. Why: an interrupt between storing a packed
    group's members and removing its work folder left that folder behind for good, since a rerun asks for the
    members still missing, under another group key. Only the main thread can set handlers; elsewhere nothing
    changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _: caught.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        if caught:
            signal.raise_signal(caught[0])
