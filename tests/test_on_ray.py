"""Paper A's grid on a Ray cluster of two worker processes on 127.0.0.1 fills the store as the local executor does:
the same keys, the same metrics, bitwise-equal weights (CPU)."""
import pytest
import torch

from badminima.core import grid, runtime
from badminima.core.config import ParameterError
from badminima.core.store import Store
from badminima.paper_a import experiments, protocol

try:
    import ray
    WHY_NOT = None
except ImportError as err:   # pragma: no cover - ray is pinned in requirements.txt
    WHY_NOT = f"ray does not import: {err}"


def entries(store: Store) -> dict:
    return {(e.kind, e.key): e for e in store.entries()}


def trained_locally_and_a_cluster(cells: list, tmp_path) -> tuple[Store, Store]:
    """The grid trained by the local executor at one thread (as each Ray task and each local worker process: the
    same sums), and an empty store for Ray, with a two-worker Ray cluster started on this machine."""
    local, on_ray = Store(tmp_path / "local"), Store(tmp_path / "ray")
    with runtime.threads(1):
        experiments.train_all(cells, local, workers=1)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as err:   # reported as a skip, never as a pass
        pytest.skip(f"a local Ray cluster does not start here: {err}")
    return local, on_ray


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
    cfg = protocol.config_for("smoke", seeds=[0, 1], models=["resnet18"])
    cells = experiments.main_grid(cfg)
    local, on_ray = trained_locally_and_a_cluster(cells, tmp_path)
    try:
        experiments.train_all(cells, on_ray, executor="ray")
    finally:
        ray.shutdown()
    assert len(entries(local)) == 2 + len(cells)   # two phase-1 results and every run
    assert_same_store(local, on_ray)


def test_an_unknown_executor_is_one_line():
    with pytest.raises(ParameterError, match="executor='spark' is not allowed; choose 'local', 'ray'"):
        grid.check_executor("spark")
    assert grid.check_executor("ray:auto") == "auto" and grid.check_executor("ray") is None


def test_a_chapter_takes_the_executor_as_a_parameter_and_checks_it(tmp_path):
    from pathlib import Path

    from badminima.book import chapters

    root = Path(__file__).resolve().parents[1]
    for name in ("paper_a_training", "paper_a_replication", "paper_a_heuristics", "paper_a_complexity"):
        assert chapters.parameters_of(name, root)["executor"] == "local"
        chapters.check(name, root, {"scale": "smoke", "executor": "ray:auto"})
        with pytest.raises(ParameterError, match="executor='dask' is not allowed"):
            chapters.check(name, root, {"executor": "dask"})


def _kill_first_training_worker(stop, killed) -> None:
    """Kill (SIGKILL) the first Ray worker seen training a job: Ray titles a busy worker after its task."""
    import os
    import signal
    from pathlib import Path

    while not stop.is_set() and not killed:
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and b"ray::_train" in (proc / "cmdline").read_bytes():
                    os.kill(int(proc.name), signal.SIGKILL)
                    killed.append(int(proc.name))
                    return
            except OSError:
                continue
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
