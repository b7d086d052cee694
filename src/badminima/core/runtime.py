"""Process-wide settings (torch's thread count, denormal flushing, environment variables) changed for the duration
of a block and restored as they were on the way out, also when the block raises: a library call leaves the caller's
process as it found it."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch


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
