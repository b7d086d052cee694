"""Library calls leave the process as they found it: thread count, denormal flushing, environment variables."""
import os
from contextlib import nullcontext
from pathlib import Path

import nbformat
import pytest
import torch

from badminima.book import chapters
from badminima.core import fastmlp, runtime
from badminima.core.store import Store
from badminima.paper_b import protocol, runs

ROOT = Path(__file__).resolve().parents[1]
WATCHED = ("BADMINIMA_RESULTS", *runtime.KEEP_FREED_MEMORY)


def process_state() -> dict:
    return {"threads": torch.get_num_threads(), "flush denormal": runtime.flush_denormal_enabled(),
            "environment": {name: os.environ.get(name) for name in WATCHED}}


@pytest.fixture
def can_flush():
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    torch.set_flush_denormal(False)
    yield
    torch.set_flush_denormal(False)


def test_the_denormal_probe_reads_what_torch_set(can_flush):
    assert not runtime.flush_denormal_enabled()
    torch.set_flush_denormal(True)
    assert runtime.flush_denormal_enabled()
    torch.set_flush_denormal(False)
    assert not runtime.flush_denormal_enabled()


@pytest.mark.parametrize("start", [False, True])
@pytest.mark.parametrize("raises", [False, True])
def test_flush_denormal_is_restored_to_what_it_was(can_flush, start, raises):
    torch.set_flush_denormal(start)
    with pytest.raises(RuntimeError) if raises else nullcontext():
        with runtime.flush_denormal(not start):
            assert runtime.flush_denormal_enabled() is (not start)
            if raises:
                raise RuntimeError("inside")
    assert runtime.flush_denormal_enabled() is start


@pytest.mark.parametrize("raises", [False, True])
def test_threads_are_restored(raises):
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError) if raises else nullcontext():
        with runtime.threads(before + 1):
            assert torch.get_num_threads() == before + 1
            if raises:
                raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with runtime.threads(None):
        assert torch.get_num_threads() == before


@pytest.mark.parametrize("raises", [False, True])
def test_environment_is_restored_set_and_unset(monkeypatch, raises):
    monkeypatch.setenv("BADMINIMA_TEST_KEPT", "old")
    monkeypatch.delenv("BADMINIMA_TEST_NEW", raising=False)
    with pytest.raises(RuntimeError) if raises else nullcontext():
        with runtime.environment(BADMINIMA_TEST_KEPT=None, BADMINIMA_TEST_NEW="new"):
            assert "BADMINIMA_TEST_KEPT" not in os.environ and os.environ["BADMINIMA_TEST_NEW"] == "new"
            if raises:
                raise RuntimeError("inside")
    assert os.environ["BADMINIMA_TEST_KEPT"] == "old" and "BADMINIMA_TEST_NEW" not in os.environ


@pytest.mark.parametrize("start", [False, True])
@pytest.mark.parametrize("raises", [False, True])
def test_a_width_sweep_run_leaves_the_process_as_it_found_it(tmp_path, monkeypatch, can_flush, start, raises):
    cfg = protocol.config_for("smoke", datasets=("gaussians",), widths=(4,), max_steps=20, n_test=20)
    real_train = fastmlp.train_mlp
    inside = []

    def train(*args, **kwargs):
        inside.append(runtime.flush_denormal_enabled())
        if raises:
            raise RuntimeError("training failed")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(fastmlp, "train_mlp", train)
    torch.set_flush_denormal(start)
    before = process_state()
    with pytest.raises(RuntimeError) if raises else nullcontext():
        runs.run_width(cfg, "gaussians", 4, Store(tmp_path))
    assert inside and all(inside), "the runs trained with denormals flushed"
    assert process_state() == before


@pytest.mark.parametrize("raises", [False, True])
def test_a_chapter_gives_its_kernel_the_environment_and_leaves_ours_alone(tmp_path, monkeypatch, raises):
    monkeypatch.delenv("BADMINIMA_RESULTS", raising=False)
    for name in runtime.KEEP_FREED_MEMORY:
        monkeypatch.delenv(name, raising=False)
    kernel = {}

    def execute_notebook(source, output, **kwargs):
        kernel.update(os.environ)   # what a kernel started now would inherit
        nbformat.write(nbformat.v4.new_notebook(), output)
        if raises:
            raise RuntimeError("a cell failed")

    monkeypatch.setattr(chapters.papermill, "execute_notebook", execute_notebook)
    before = process_state()
    with pytest.raises(RuntimeError) if raises else nullcontext():
        chapters.execute("reproduce", ROOT, out_dir=tmp_path)
    assert kernel["BADMINIMA_RESULTS"] == str(ROOT / "results")
    assert all(kernel[name] == value for name, value in runtime.KEEP_FREED_MEMORY.items())
    assert process_state() == before


def test_the_kernels_are_pinned_where_the_user_has_not_chosen(monkeypatch):
    for name in runtime.KERNELS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    monkeypatch.setattr(runtime.platform, "machine", lambda: "x86_64")
    runtime.pin_kernels()
    assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX512_CORE", "a variable the user set is theirs"
    assert all(os.environ[name] == value for name, value in runtime.KERNELS.items() if name != "ONEDNN_MAX_CPU_ISA")
    assert "ONEDNN_MAX_CPU_ISA=AVX512_CORE" in runtime.kernels_tag(), "and its results are keyed apart"
    for name in runtime.KERNELS:
        monkeypatch.delenv(name)
    monkeypatch.setenv(runtime.FAST_KERNELS, "1")
    runtime.pin_kernels()
    assert not any(name in os.environ for name in runtime.KERNELS), "fast kernels: the host's, nothing set"


def test_a_result_records_its_kernels_and_is_computed_on_one_thread(tmp_path):
    seen = []
    with runtime.threads(2):
        stored = Store(tmp_path).load_or_run("demo", {"a": 1}, lambda _: (seen.append(torch.get_num_threads()),
                                                                          ({}, {}))[1])
        assert torch.get_num_threads() == 2, "the caller's threads are left as they were"
    assert seen == [runtime.RUN_THREADS] and stored.metrics == {}
    manifest = (Store(tmp_path).path("demo", {"a": 1}) / "manifest.json").read_text()
    assert all(f'"{name}"' in manifest for name in runtime.KERNELS)
