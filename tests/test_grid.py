"""The job runner's contract, on jobs that store a number: stored work is not redone, work listed twice runs once,
a failed job stops only the jobs that need it, and the error names it."""
import functools

import pytest

from badminima.core import grid, jobs
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
