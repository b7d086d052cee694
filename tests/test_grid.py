"""The job runner's contract, on jobs that store a number: stored work is not redone, work listed twice runs once,
a failed job stops only the jobs that need it, and the error names it; a signal stops the pool at once."""
import functools
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from badminima.core import grid, jobs
from badminima.core.config import ParameterError
from badminima.core.store import NotStored, ReadOnlyStore, Store

CALLS: list[str] = []


def _store_value(name: str, value: float, store: Store) -> None:
    CALLS.append(name)
    store.load_or_run("numbers", {"name": name}, lambda _: ({"value": value}, {}))


def _fail(name: str, store: Store) -> None:
    CALLS.append(name)
    raise ValueError(f"{name} broke")


def _job(name: str, after=(), run=_store_value) -> jobs.Job:
    target = functools.partial(run, name, 1.0) if run is _store_value else functools.partial(run, name)
    return jobs.Job(target, (("numbers", {"name": name}),), frozenset(after), label=name)


@pytest.fixture(autouse=True)
def fresh_calls():
    CALLS.clear()


def test_stored_work_is_not_redone_and_work_listed_twice_runs_once(tmp_path):
    store = Store(tmp_path)
    grid.run([_job("a")], store)
    grid.run([_job("a"), _job("b"), _job("b"), _job("c", after=[1])], store)
    assert CALLS == ["a", "b", "b", "c"]   # the second b only loads: it waits for the first
    assert {e.config["name"] for e in store.entries()} == {"a", "b", "c"}
    assert len(store.entries()) == 3


def test_a_failed_job_stops_only_the_jobs_that_need_it(tmp_path):
    store = Store(tmp_path)
    todo = [_job("a", run=_fail), _job("b"), _job("c", after=[0]), _job("d", after=[1])]
    with pytest.raises(jobs.GridFailed, match=r"2 of 4 jobs failed; the first, a: ValueError: a broke"):
        grid.run(todo, store)
    assert CALLS == ["a", "b", "d"]
    assert {e.config["name"] for e in store.entries()} == {"b", "d"}


def test_a_read_only_store_says_what_is_missing_and_trains_nothing(tmp_path):
    grid.run([_job("a")], Store(tmp_path))
    with pytest.raises(NotStored, match="1 of 2 jobs have results missing"):
        grid.run([_job("a"), _job("b")], ReadOnlyStore(tmp_path))
    assert CALLS == ["a"]


def test_the_progress_bar_counts_each_state():
    todo = [_job("a"), _job("b"), _job("c")]
    bar = jobs.Progress(todo, enabled=False, desc="jobs")
    bar.start(0)
    bar.finish(0)
    bar.start(1)
    bar.finish(1, ok=False)
    bar.start(2)
    assert (bar.done, bar.failed, bar.running) == ({0}, {1}, {2})
    assert bar.bar.postfix == "done=1, failed=1, running=1, waiting=0"


def test_a_store_adopts_a_result_byte_for_byte_once(tmp_path):
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    _store_value("x", 2.5, a)
    entry = a.entries()[0]
    files = a.files(entry.kind, entry.key)
    assert b.adopt(entry.kind, entry.key, files) and not b.adopt(entry.kind, entry.key, files)
    assert b.load("numbers", {"name": "x"}).metrics == {"value": 2.5}
    assert b.files(entry.kind, entry.key) == files
    damaged = {**files, "metrics.json": b'{"metrics": {"value": 3}}'}
    with pytest.raises(NotStored, match="arrived damaged"):
        Store(tmp_path / "c").adopt(entry.kind, entry.key, damaged)


def _checkpoint_then_wait(name: str, store: Store) -> None:
    """A job that writes a checkpoint, then computes until it is stopped."""
    def run(work):
        (work / "x.ckpt").write_text("epoch 1")
        time.sleep(600)
        return {"value": 1.0}, {}
    store.load_or_run("numbers", {"name": name}, run)


def _pool_workers() -> list[int]:
    return [pid for pid in jobs.descendants(os.getpid())
            if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_pool_at_once_releasing_locks_and_keeping_checkpoints(tmp_path, signum):
    store = Store(tmp_path)
    todo = [_job(name, run=_checkpoint_then_wait) for name in ("a", "b", "c")]
    seen = []

    def signal_once_both_run():
        while len(list(tmp_path.glob("numbers/*.partial/x.ckpt"))) < 2:
            time.sleep(0.05)
        seen.extend(_pool_workers())
        os.kill(os.getpid(), signum)

    threading.Thread(target=signal_once_both_run, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(jobs.Interrupted) as stop:
        grid.run(todo, store, workers=2)
    assert stop.value.status == 128 + signum and time.monotonic() - started < 60
    assert len(seen) == 2 and jobs.alive(seen) == []
    assert list(tmp_path.rglob("*.lock")) == []
    kept = sorted(p.parent.name for p in tmp_path.glob("numbers/*.partial/x.ckpt"))
    assert len(kept) == 2 and [e.status for e in store.entries()] == ["partial", "partial"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the handler is the caller's again"


def test_executor_addresses_are_checked_before_any_work():
    assert jobs.check_executor("ray:10.0.0.1:6379") == "10.0.0.1:6379"
    assert jobs.check_executor("ray:ray://head:10001") == "ray://head:10001"
    for bad in ("ray:nonsense", "ray:", "ray:host:0", "ray:host:65536", "ray:-x:1", "Ray", None):
        with pytest.raises(ParameterError, match=r"^executor="):
            jobs.check_executor(bad)
