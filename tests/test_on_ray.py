"""The chapters' job lists on a Ray cluster of two worker processes on 127.0.0.1 fill the store as the local executor
does: the same keys, the same metrics, bitwise-equal weights (CPU)."""
import pytest
import torch

from badminima.core import grid, jobs, runtime
from badminima.core.config import ParameterError
from badminima.core.store import Store
from badminima.paper_a import experiments, protocol, sketch
from badminima.paper_b import runs as paper_b_runs
from badminima.paper_b import protocol as paper_b_protocol

try:
    import ray
    WHY_NOT = None
except ImportError as err:   # pragma: no cover - ray is pinned in requirements.txt
    WHY_NOT = f"ray does not import: {err}"


def entries(store: Store) -> dict:
    return {(e.kind, e.key): e for e in store.entries()}


def trained_locally_and_a_cluster(cells: list, tmp_path, work: list = ()) -> tuple[Store, Store]:
    """The grid and the jobs trained by the local executor at one thread (as each Ray task and each local worker
    process: the same sums), and an empty store for Ray, with a two-worker Ray cluster started on this machine."""
    local, on_ray = Store(tmp_path / "local"), Store(tmp_path / "ray")
    with runtime.threads(1):
        experiments.train_all(cells, local, workers=1)
        grid.run(list(work), local)
    # Ray is installed (a test is skipped only where it does not import), so a cluster that cannot start is a
    # broken install: its exception fails the test.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    return local, on_ray


@pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))
def test_a_ray_that_cannot_start_fails_the_tests_instead_of_skipping_them(tmp_path, monkeypatch):
    def cannot_start(**_):
        raise ConnectionError("no cluster here")

    monkeypatch.setattr(ray, "init", cannot_start)
    outcome = None
    try:   # a skip is an exception too, but not an Exception: catch all to tell them apart
        trained_locally_and_a_cluster([], tmp_path)
    except BaseException as raised:
        outcome = raised
    assert isinstance(outcome, ConnectionError), f"expected the test to fail, got {outcome!r}"


def assert_same_store(local: Store, on_ray: Store) -> None:
    """The same keys, metrics and bitwise-equal weights."""
    a, b = entries(local), entries(on_ray)
    assert set(a) == set(b)
    for (kind, key), entry in a.items():
        mine, theirs = local._checked(kind, entry.path, None), on_ray._checked(kind, b[(kind, key)].path, None)
        assert mine.metrics == theirs.metrics, (kind, key)
        assert mine.weights.keys() == theirs.weights.keys()
        assert all(torch.equal(mine.weights[k], theirs.weights[k]) for k in mine.weights), (kind, key)


@pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))
def test_a_ray_cluster_fills_the_store_as_the_local_executor_does(tmp_path):
    """Paper A's main grid (phase 2 waits on phase 1), the sketch, and Paper B's width and budget jobs (the budget
    list repeats a width job: it runs once)."""
    cfg = protocol.config_for("smoke", seeds=[0, 1], models=["resnet18"])
    cells = experiments.main_grid(cfg)
    widths = paper_b_protocol.config_for("smoke", datasets=["gaussians", "circles"])
    work = (sketch.jobs(sketch.config_for("smoke")) + paper_b_runs.width_jobs(widths)
            + paper_b_runs.budget_jobs(paper_b_protocol.budget_config_for("smoke", ["circles"], None, None)))
    local, on_ray = trained_locally_and_a_cluster(cells, tmp_path, work)
    try:
        experiments.train_all(cells, on_ray, executor="ray")
        grid.run(work, on_ray, executor="ray")
    finally:
        ray.shutdown()
    kinds = [kind for kind, _ in entries(local)]
    assert kinds.count("adversarial") == 2 and kinds.count("image") == len(cells)   # phase 1 of two seeds, runs
    assert kinds.count("sketch") == 4 and kinds.count("widths") > 3 * len(paper_b_runs.width_jobs(widths))
    assert_same_store(local, on_ray)


def test_an_unknown_executor_is_one_line():
    with pytest.raises(ParameterError, match="executor='spark' is not allowed; choose 'local', 'ray'"):
        jobs.check_executor("spark")
    assert jobs.check_executor("ray:auto") == "auto" and jobs.check_executor("ray") is None


def test_a_chapter_takes_the_executor_as_a_parameter_and_checks_it(tmp_path):
    from pathlib import Path

    from badminima.book import chapters

    root = Path(__file__).resolve().parents[1]
    for name in [name for name, chapter in chapters.CHAPTERS.items() if chapter.config is not None]:
        assert chapters.parameters_of(name, root)["executor"] == "local"
        chapters.check(name, root, {"scale": "smoke", "executor": "ray:auto"})
        assert "executor" not in repr(chapters.CHAPTERS[name].config("smoke", executor="ray"))
        with pytest.raises(ParameterError, match="executor='dask' is not allowed"):
            chapters.check(name, root, {"executor": "dask"})


def _task_pids() -> list[int]:
    from pathlib import Path

    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"ray::_train" in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _kill_first_training_worker(stop, killed) -> None:
    """Kill (SIGKILL) the first Ray worker seen training a job: Ray titles a busy worker after its task."""
    import os
    import signal

    while not stop.is_set() and not killed:
        for pid in _task_pids()[:1]:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        stop.wait(0.02)


@pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))
def test_a_worker_killed_during_a_run_does_not_lose_it(tmp_path):
    import threading

    cfg = protocol.config_for("smoke", seeds=[0], models=["resnet18"], vanilla_cap=30, epochs=30)
    cells = experiments.main_grid(cfg)
    local, on_ray = trained_locally_and_a_cluster(cells, tmp_path)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_first_training_worker, args=(stop, killed))
    killer.start()
    try:
        experiments.train_all(cells, on_ray, executor="ray")
    finally:
        stop.set()
        killer.join()
        ray.shutdown()
    assert killed, "a worker was killed mid-run"
    assert_same_store(local, on_ray)


def _kill_at_a_checkpoint(root, stop, epochs: list) -> None:
    """Once a run's checkpoint under `root` holds 3 epochs or more, kill (SIGKILL) every worker training a task and
    note those epochs; then note the epochs of the first checkpoint written after the kill."""
    import os
    import signal
    from pathlib import Path

    from badminima.core.train import Run

    written_before = None
    while not stop.is_set() and len(epochs) < 2:
        for ckpt in Path(root).rglob("*.ckpt"):
            try:
                when = ckpt.stat().st_mtime_ns
                done = Run.from_json(torch.load(ckpt, weights_only=False)["run"]).epochs
            except Exception:   # replaced or removed while read: look again
                continue
            if written_before is None and done >= 3:
                for pid in _task_pids():
                    os.kill(pid, signal.SIGKILL)
                epochs.append(done)
                written_before = when
            elif written_before is not None and when > written_before:
                epochs.append(done)
        stop.wait(0.005)


@pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))
def test_with_a_shared_store_a_retried_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    import threading

    from badminima.core import on_ray

    cfg = protocol.config_for("smoke", seeds=[0], models=["resnet18"], epochs=40)
    cells = [c for c in experiments.main_grid(cfg) if c[0]["init"] == "random" and c[0]["mode"] == "SOTA"]
    local, on_ray_store = trained_locally_and_a_cluster(cells, tmp_path)
    monkeypatch.setenv(on_ray.SHARED, "1")
    stop, epochs = threading.Event(), []
    killer = threading.Thread(target=_kill_at_a_checkpoint, args=(on_ray_store.root, stop, epochs))
    killer.start()
    try:
        experiments.train_all(cells, on_ray_store, executor="ray")
    finally:
        stop.set()
        killer.join()
        ray.shutdown()
    assert len(epochs) == 2, f"killed at a checkpoint and saw the next one: {epochs}"
    assert epochs[1] > epochs[0], f"the retried run went on from epoch {epochs[0]}, not from the start: {epochs}"
    assert_same_store(local, on_ray_store)
