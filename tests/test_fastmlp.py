"""The fast path for one-hidden-layer nets keeps the one loop's contract: same stops, history and weights (to float
tolerance) as `train`, resumable checkpoints, finished members left out of the work."""
import pytest
import torch

from badminima.core import fastmlp
from badminima.core.data.toy import draw
from badminima.core.models import MLP
from badminima.core.train import TrainConfig, train

pytestmark = pytest.mark.equivalence

CPU = torch.device("cpu")


def toy(members: int, n: int = 60, dataset: str = "circles") -> tuple[torch.Tensor, torch.Tensor]:
    draws = [draw(dataset, n, 2, seed)[0] for seed in range(members)]
    return torch.stack([d[0] for d in draws]), torch.stack([d[1] for d in draws])


def both(sizes, seeds, data, cfg, **kwargs):
    """(generic run, its model, fast run, its model) from the same init."""
    generic, fast = MLP(sizes, seeds), MLP(sizes, seeds)
    readout = kwargs.pop("readout_only", False)
    params = generic.readout() if readout else None
    if readout:
        for model in (generic, fast):
            with torch.no_grad():
                for p in model.readout():
                    p.zero_()
    a = train(generic, data, cfg, seeds, params=params, device=CPU, amp=False, **kwargs)
    b = fastmlp.train_mlp(fast, data, cfg, seeds, readout_only=readout, device=CPU, **kwargs)
    return a, generic, b, fast


def assert_same(a, generic, b, fast, atol=1e-5):
    """Same stops and records; losses and weights to what float32 rounding (2^-24 an operation, summed in another
    order by the fast path) explains over these tests' at most 800 smooth full-batch steps: 1e-4 relative."""
    assert b.fit_epoch == a.fit_epoch and b.fit_step == a.fit_step
    assert (b.epochs, b.steps) == (a.epochs, a.steps)
    assert b.history["epoch"] == a.history["epoch"] and b.history["step"] == a.history["step"]
    assert b.history["lr"] == a.history["lr"]
    assert b.history["train_acc"] == a.history["train_acc"]
    torch.testing.assert_close(torch.tensor(b.history["loss"]), torch.tensor(a.history["loss"]), rtol=1e-4,
                               atol=1e-6)
    assert b.history["test_acc"] == a.history["test_acc"]
    for pa, pb in zip(generic.parameters(), fast.parameters()):
        torch.testing.assert_close(pb.detach(), pa.detach(), rtol=1e-4, atol=atol)


@pytest.mark.parametrize("fused", [True, False], ids=["fused step", "tensor step"])
def test_full_batch_gradient_descent_matches_the_generic_loop(monkeypatch, fused):
    if not fused:   # the tensor step serves where the fused one does not (GPU, momentum, several logits)
        monkeypatch.setattr(fastmlp, "fused_ok", lambda *args: False)
    seeds = (0, 1, 2, 3)
    x, y = toy(4)
    xt, yt = toy(4, 200)
    cfg = TrainConfig(lr=0.05, max_epochs=800, eval_every=7)
    runs = both((2, 32, 1), seeds, (x, y), cfg, test_set=(xt, yt), history_every=5)
    assert sum(runs[0].fitted) >= 2 and not all(runs[0].fitted), "some members fit, some hit the cap"
    assert len(set(e for e in runs[0].fit_epoch if e)) >= 2, "members leave the batch at different epochs"
    assert_same(*runs)


@pytest.mark.parametrize("d, width", [(2, 40), (2, 7), (3, 40)], ids=["2-D", "2-D narrow", "3-D"])
def test_fused_step_loops_match_for_any_point_count_and_dimension(d, width):
    """The fused step's two loop orders (by point for 2-D inputs, else by unit) on 61 points, which the by-point
    loops take four at a time with one left over."""
    seeds = (0, 1)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 61, d, generator=gen)
    y = (x[..., 0] * x[..., -1] > 0).long()
    records = frozenset({1, 2, 9, 40, 41, 250, 1000})   # as the width sweeps ask: given epochs, not every k-th
    assert_same(*both((d, width, 1), seeds, (x, y), TrainConfig(lr=0.1, max_epochs=300), history_every=records))


def test_random_labels_momentum_weight_decay_and_fixed_epochs_match():
    seeds = (5, 6, 7)
    x, y = toy(3, 40)
    y = torch.stack([torch.randint(0, 2, (40,), generator=torch.Generator().manual_seed(s)) for s in seeds])
    # 150 steps: memorizing random labels turns chaotic later on (a ReLU flipping on a point by rounding sends the
    # two paths apart; at step 400 their losses were 1e-4 apart on one CPU, 5e-3 on another). Until then momentum
    # carries each step's rounding (2^-24) into about 1/(1 - 0.9) = 10 later steps: 150 steps explain 1e-4.
    cfg = TrainConfig(lr=0.02, momentum=0.9, weight_decay=1e-3, max_epochs=150, until_fit=False)
    assert_same(*both((2, 64, 1), seeds, (x, y), cfg), atol=1e-4)


def test_readout_only_matches_training_the_readout_parameters():
    seeds = (0, 1)
    x, y = toy(2)
    cfg = TrainConfig(lr=0.1, max_epochs=500)
    a, generic, b, fast = both((2, 16, 1), seeds, (x, y), cfg, readout_only=True)
    assert_same(a, generic, b, fast)
    assert torch.equal(fast.weights[0], MLP((2, 16, 1), seeds).weights[0]), "the first layer never moves"


def test_minibatch_sgd_with_several_classes_matches():
    seeds = (0, 1, 2)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 48, 12, generator=gen)
    y = torch.randint(0, 4, (1, 48), generator=gen)
    cfg = TrainConfig(lr=0.2, batch_size=10, max_epochs=80)
    runs = both((12, 24, 4), seeds, (x, y), cfg, test_set=(x[:, :20], y[:, :20]))
    assert any(runs[0].fitted)
    assert_same(*runs)


def test_a_killed_run_resumes_to_the_same_end(tmp_path):
    seeds = (0, 1, 2, 3)
    x, y = toy(4)
    cfg = TrainConfig(lr=0.05, max_epochs=1500)
    whole = MLP((2, 32, 1), seeds)
    full = fastmlp.train_mlp(whole, (x, y), cfg, seeds, device=CPU, history_every=10)
    ckpt = tmp_path / "run.ckpt"
    part = MLP((2, 32, 1), seeds)
    fastmlp.train_mlp(part, (x, y), TrainConfig(lr=0.05, max_epochs=700), seeds, device=CPU, checkpoint=ckpt,
                      checkpoint_every=50, history_every=10)
    resumed_model = MLP((2, 32, 1), seeds)
    resumed = fastmlp.train_mlp(resumed_model, (x, y), cfg, seeds, device=CPU, checkpoint=ckpt,
                                checkpoint_every=50, history_every=10)
    assert resumed.fit_step == full.fit_step and resumed.history == full.history
    for pa, pb in zip(whole.parameters(), resumed_model.parameters()):
        assert torch.equal(pa, pb)


def test_finished_members_are_not_computed(monkeypatch):
    """A member that fitted early costs nothing afterwards: it stops within the call that found it fitted, and the
    later calls leave it out."""
    seeds = (0, 1)
    x, y = toy(2)
    y = y.clone()
    y[1] = torch.randint(0, 2, (60,), generator=torch.Generator().manual_seed(9))   # member 1: random labels
    steps = [0, 0]   # steps each member was computed for
    calls = []

    def counting(params, xt, *rest):
        passes, fit, bad, acc, logits = real(params, xt, *rest)
        calls.append(xt.shape[0])
        for m, count in zip(group_members(xt), passes.tolist()):
            steps[m] += count - 1   # the last pass reads the fit, takes no step
        return passes, fit, bad, acc, logits

    group_members = lambda xt: [0, 1] if xt.shape[0] == 2 else [1]
    real = fastmlp._fused
    monkeypatch.setattr(fastmlp, "_fused", counting)
    run = fastmlp.train_mlp(MLP((2, 32, 1), seeds), (x, y), TrainConfig(lr=0.05, max_epochs=2000), seeds, device=CPU,
                            history_every=500)
    assert run.fitted[0] and not run.fitted[1] and run.fit_epoch[0] % 500 != 0
    assert steps == [run.fit_epoch[0], 2000]
    assert calls == [2] * (run.fit_epoch[0] // 500 + 1) + [1] * (4 - run.fit_epoch[0] // 500 - 1)


def test_what_it_does_not_take_is_refused():
    model = MLP((2, 8, 8, 1), (0,))
    assert not fastmlp.supports(model, TrainConfig())
    assert not fastmlp.supports(MLP((2, 8, 1), (0,)), TrainConfig(patience=5))
    with pytest.raises(ValueError, match="one-hidden-layer"):
        fastmlp.train_mlp(model, toy(1), TrainConfig(), (0,), device=CPU)



POOL_CHECK = """
import sys, numpy as np, numba
if sys.argv[1] == "pool-first":   # numba's threads created by another parallel call, without flushing
    @numba.njit(parallel=True)
    def other(out):
        for m in numba.prange(out.shape[0]):
            out[m] = m
    other(np.zeros(64))
from badminima.core import fastmlp
print(fastmlp._pool_flushes())
"""


@pytest.mark.parametrize("mode, flushes", [("fresh", True), ("pool-first", False)])
def test_the_fused_kernel_sees_whether_numbas_threads_flush_denormals(mode, flushes):
    """numba's worker threads keep the flush-to-zero flag they were created with, so a member's weights would
    depend on which thread ran it: where they do not flush (another parallel call created them), the fused kernel
    runs on the calling thread alone."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", POOL_CHECK, mode], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(flushes)


@pytest.mark.parametrize("until_fit", [True, False])
@pytest.mark.parametrize("batch_size,fused", [(None, True), (None, False), (8, False)],
                         ids=["fused step", "tensor step", "minibatch"])
def test_a_member_that_diverges_is_booked_as_train_books_it(monkeypatch, batch_size, fused, until_fit):
    """Member 1's inputs make its steps blow up: it stops as diverged at the epoch `train` books, the others
    train on and fit as there."""
    if not fused:
        monkeypatch.setattr(fastmlp, "fused_ok", lambda *args: False)
    seeds = (0, 1, 2)
    x, y = toy(3, 40, "gaussians")
    x = x * torch.tensor([1.0, 30.0, 1.0])[:, None, None]
    cfg = TrainConfig(lr=2.0, batch_size=batch_size, max_epochs=30, until_fit=until_fit)
    a, _, b, _ = both((2, 16, 1), seeds, (x, y), cfg)
    assert a.diverged == [False, True, False] and b.diverge_epoch == a.diverge_epoch
    assert b.fit_epoch == a.fit_epoch and (b.epochs, b.steps) == (a.epochs, a.steps)
    assert b.fitted == [True, False, True]


@pytest.mark.parametrize("fused", [True, False], ids=["fused step", "tensor step"])
def test_a_run_whose_every_member_diverges_stops_at_once(monkeypatch, fused):
    if not fused:
        monkeypatch.setattr(fastmlp, "fused_ok", lambda *args: False)
    seeds = (0, 1)
    x, y = toy(2)
    a, _, b, _ = both((2, 16, 1), seeds, (x, y), TrainConfig(lr=1e30, max_epochs=1000), history_every=100)
    assert b.diverged == a.diverged == [True, True]
    assert b.diverge_epoch == a.diverge_epoch and (b.epochs, b.steps) == (a.epochs, a.steps)
    assert b.epochs < 5 and b.history["epoch"][-1] == b.epochs, "stopped at once, its last epoch recorded"


def test_a_truncated_checkpoint_is_set_aside_and_the_run_resumes_from_the_previous_one(tmp_path, caplog):
    seeds = (0, 1)
    x, y = toy(2)
    cfg = TrainConfig(lr=0.05, max_epochs=300, until_fit=False)
    whole = MLP((2, 32, 1), seeds)
    full = fastmlp.train_mlp(whole, (x, y), cfg, seeds, device=CPU, history_every=10)
    ckpt = tmp_path / "run.ckpt"
    fastmlp.train_mlp(MLP((2, 32, 1), seeds), (x, y), TrainConfig(lr=0.05, max_epochs=200, until_fit=False), seeds,
                      device=CPU, checkpoint=ckpt, checkpoint_every=50, history_every=10)
    ckpt.write_bytes(ckpt.read_bytes()[:64])
    resumed_model = MLP((2, 32, 1), seeds)
    with caplog.at_level("WARNING"):
        resumed = fastmlp.train_mlp(resumed_model, (x, y), cfg, seeds, device=CPU, checkpoint=ckpt,
                                    checkpoint_every=50, history_every=10)
    assert [r.levelname for r in caplog.records] == ["WARNING"] and "trying the previous one" in caplog.text
    assert resumed.history == full.history
    for pa, pb in zip(whole.parameters(), resumed_model.parameters()):
        assert torch.equal(pa, pb)
