"""The fast path for one-hidden-layer nets keeps the one loop's contract: same stops, history and weights (to float
tolerance) as `train`, resumable checkpoints, finished members left out of the work."""
import warnings

import numba
import numpy as np
import pytest
import torch

from badminima.core import fastmlp, fused, runtime
from badminima.core.data.toy import draw
from badminima.core.models import MLP
from badminima.core.metrics import predict
from badminima.core.train import TrainConfig, loss_per_member, train

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


@pytest.mark.parametrize("fused_step", [True, False], ids=["fused step", "tensor step"])
def test_full_batch_gradient_descent_matches_the_generic_loop(monkeypatch, fused_step):
    if not fused_step:   # the tensor step serves where the fused one does not (GPU, momentum, several logits)
        monkeypatch.setattr(fused, "applies", lambda *args: False)
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
    real = fused.steps
    monkeypatch.setattr(fused, "steps", counting)
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
from badminima.core import fused
print(fused._pool_flushes())
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
@pytest.mark.parametrize("batch_size,fused_step", [(None, True), (None, False), (8, False)],
                         ids=["fused step", "tensor step", "minibatch"])
def test_a_member_that_diverges_is_booked_as_train_books_it(monkeypatch, batch_size, fused_step, until_fit):
    """Member 1's inputs make its steps blow up: it stops as diverged at the epoch `train` books, the others
    train on and fit as there."""
    if not fused_step:
        monkeypatch.setattr(fused, "applies", lambda *args: False)
    seeds = (0, 1, 2)
    x, y = toy(3, 40, "gaussians")
    x = x * torch.tensor([1.0, 30.0, 1.0])[:, None, None]
    cfg = TrainConfig(lr=2.0, batch_size=batch_size, max_epochs=30, until_fit=until_fit)
    a, _, b, _ = both((2, 16, 1), seeds, (x, y), cfg)
    assert a.diverged == [False, True, False] and b.diverge_epoch == a.diverge_epoch
    assert b.fit_epoch == a.fit_epoch and (b.epochs, b.steps) == (a.epochs, a.steps)
    assert b.fitted == [True, False, True]


@pytest.mark.parametrize("fused_step", [True, False], ids=["fused step", "tensor step"])
def test_a_run_whose_every_member_diverges_stops_at_once(monkeypatch, fused_step):
    if not fused_step:
        monkeypatch.setattr(fused, "applies", lambda *args: False)
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


# The step engines on their own, against autograd and torch.optim.SGD: exact to float32 rounding for one step

def engine_case(classes: int, width: int = 5, members: int = 3, n: int = 11, d: int = 3, seed: int = 0):
    """An MLP (d, width, classes) and its parameters as the engines take them, with data and labels."""
    gen = torch.Generator().manual_seed(seed)
    model = MLP((d, width, classes), seeds=range(members))
    params = [p.detach().clone() for p in (model.weights[0], model.biases[0], model.weights[1], model.biases[1])]
    x = torch.randn(members, n, d, generator=gen)
    y = torch.randint(0, max(classes, 2), (members, n), generator=gen)
    return model, params, x, y


def autograd_step(params, x, y, lr: float, readout_only: bool = False):
    """One step of gradient descent on the sum over members of each member's mean loss, by autograd."""
    ps = [p.clone().requires_grad_() for p in params]
    w1, b1, w2, b2 = ps
    out = torch.baddbmm(b2, torch.baddbmm(b1, x, w1).relu(), w2)
    loss_per_member(out, y).sum().backward()
    trained = [i >= 2 or not readout_only for i in range(4)]
    grads = [p.grad if t else None for p, t in zip(ps, trained)]
    with torch.no_grad():
        return out.detach(), grads, [p - lr * p.grad if t else p.detach() for p, t in zip(ps, trained)]


@pytest.mark.parametrize("classes", [1, 4], ids=["one logit", "four classes"])
@pytest.mark.parametrize("readout_only", [False, True], ids=["all layers", "readout only"])
def test_the_tensor_steps_forward_and_gradients_are_autograds(classes, readout_only):
    model, params, x, y = engine_case(classes)
    ws = fastmlp._Workspace(params, x.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # an output tensor of the wrong shape is resized with a warning
        h, out = fastmlp._forward(params, x, ws)
        grads = fastmlp._gradients(params, x, y, h, out, ws, readout_only)
    assert h.data_ptr() == ws.hidden.data_ptr(), "the hidden layer is written into the workspace"
    for got, buffer in zip(grads, ws.grads):   # so are the gradients: no step allocates a tensor of its size
        assert got is None or got.data_ptr() == buffer.data_ptr()
    expected_out, expected_grads, _ = autograd_step(params, x, y, 0.1, readout_only)
    torch.testing.assert_close(out, expected_out, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out, model(x), rtol=1e-6, atol=1e-6)
    assert torch.equal(fastmlp._correct(out, y), (predict(out) == y).float().mean(1))
    for got, want in zip(grads, expected_grads):
        if want is None:
            assert got is None
        else:
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.0, 0.01), (0.5, 0.1)])
def test_the_update_is_torch_sgds(momentum, weight_decay):
    """Three steps (momentum's buffer starts at the first step's gradient) on a subset of the members."""
    model, params, x, y = engine_case(1, members=4)
    cfg = TrainConfig(lr=0.3, momentum=momentum, weight_decay=weight_decay)
    active = torch.tensor([0, 2, 3])
    buffers = [torch.zeros_like(p) for p in params] if momentum else None
    group = fastmlp._Members(model, active, buffers)
    reference = [p[active].clone().requires_grad_() for p in params]
    sgd = torch.optim.SGD(reference, lr=0.3, momentum=momentum, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(5)
    for step in range(3):
        grads = [torch.randn(p.shape, generator=gen) for p in reference]
        for p, g in zip(reference, grads):
            p.grad = g.clone()
        sgd.step()
        fastmlp._update(group, [g.clone() for g in grads], cfg, 0.3, step == 0)
    for got, want in zip(group.params, reference):
        torch.testing.assert_close(got, want.detach(), rtol=1e-6, atol=1e-7)
    group.scatter()
    assert torch.equal(model.weights[0][1], params[0][1]), "a member outside the group is left as it was"
    torch.testing.assert_close(model.weights[0][2], reference[0][1].detach(), rtol=1e-6, atol=1e-7)


def test_a_frozen_layer_is_not_updated():
    model, params, x, y = engine_case(1)
    group = fastmlp._Members(model, torch.arange(3), None)
    before = [p.clone() for p in group.params]
    fastmlp._update(group, [None, None, torch.ones_like(before[2]), torch.ones_like(before[3])],
                    TrainConfig(lr=0.5), 0.5, True)
    assert torch.equal(group.params[0], before[0]) and torch.equal(group.params[1], before[1])
    assert torch.equal(group.params[2], before[2] - 0.5) and torch.equal(group.params[3], before[3] - 0.5)


@pytest.mark.parametrize("width", [5, 8], ids=["padded width", "width of 8"])
@pytest.mark.parametrize("readout_only", [False, True], ids=["all layers", "readout only"])
def test_the_fused_kernel_takes_the_steps_autograd_takes(width, readout_only):
    """Three steps at their own rates, no fit reached: every pass's logits, the accuracy and the weights, to float
    rounding of the kernel's other order of sums."""
    _, params, x, y = engine_case(1, width=width, d=2, n=13)
    lrs = [0.5, 0.2, 0.4]
    expected, passes_logits = [p.clone() for p in params], []
    for lr in lrs:
        out, _, expected = autograd_step(expected, x, y, lr, readout_only)
        passes_logits.append(out[..., 0])
    final = torch.baddbmm(expected[3], torch.baddbmm(expected[1], x, expected[0]).relu(), expected[2])
    passes, fit, bad, acc, logits = fused.steps(params, x.transpose(1, 2).contiguous(), y.float(), lrs, 1.0,
                                                   True, readout_only)
    assert passes.tolist() == [4, 4, 4] and fit.tolist() == [-1, -1, -1] and bad.tolist() == [-1, -1, -1]
    for got, want in zip(params, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits[1], final[..., 0], rtol=1e-5, atol=1e-6)    # pass 3, after the last step
    torch.testing.assert_close(logits[0], passes_logits[2], rtol=1e-5, atol=1e-6)  # pass 2, before it
    assert torch.equal(acc, ((final[..., 0] > 0).long() == y).float().mean(1))


def test_the_fused_kernel_stops_a_member_at_its_fit_and_books_the_pass():
    """fit_target 0 is met at the first pass that counts (pass 1, after one step): frozen there, a member took one
    step; not frozen, it takes them all and still books pass 1."""
    _, params, x, y = engine_case(1, d=2)
    frozen, free = [p.clone() for p in params], [p.clone() for p in params]
    _, _, one_step = autograd_step(params, x, y, 0.5)
    passes, fit, _, _, _ = fused.steps(frozen, x.transpose(1, 2).contiguous(), y.float(), [0.5, 0.5, 0.5], 0.0,
                                          True, False)
    assert passes.tolist() == [2, 2, 2] and fit.tolist() == [1, 1, 1]
    for got, want in zip(frozen, one_step):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    passes, fit, _, _, _ = fused.steps(free, x.transpose(1, 2).contiguous(), y.float(), [0.5, 0.5, 0.5], 0.0,
                                          False, False)
    assert passes.tolist() == [4, 4, 4] and fit.tolist() == [1, 1, 1]


def test_the_fused_step_applies_only_where_it_computes_the_same():
    x = torch.zeros(2, 10, 2)
    plain = TrainConfig(lr=0.1)
    assert fused.applies(plain, x, 1, 10) and fused.applies(plain, x, 1, 11)
    assert not fused.applies(plain, x, 1, 9), "a minibatch"
    assert not fused.applies(plain, x, 2, 10), "several logits"
    assert not fused.applies(TrainConfig(lr=0.1, momentum=0.5), x, 1, 10)
    assert not fused.applies(TrainConfig(lr=0.1, weight_decay=0.01), x, 1, 10)
    assert not fused.applies(plain, x.to("meta"), 1, 10), "not on the CPU"


def test_a_batch_without_the_last_class_and_the_spare_workspace():
    """Minibatches may miss a class: the targets still have one column per logit. With several classes the hidden
    layer's gradient goes to the workspace's spare buffer."""
    _, params, x, y = engine_case(4)
    y = y % 2   # classes 0 and 1 only
    ws = fastmlp._Workspace(params, x.shape[1])
    ws.spare.fill_(float("nan"))
    h, out = fastmlp._forward(params, x, ws)
    grads = fastmlp._gradients(params, x, y, h, out, ws, False)
    _, expected, _ = autograd_step(params, x, y, 0.1)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    assert not ws.spare[:x.shape[0] * x.shape[1] * params[0].shape[2]].isnan().any()


@pytest.mark.parametrize("width", [5, 8], ids=["padded width", "width of 8"])
def test_the_fused_kernel_gets_float32_rows_padded_to_eight_units_on_flushing_threads(monkeypatch, width):
    """What the compiled kernel is promised: float32 arrays (its one compiled signature), the hidden rows padded
    with zero units to a multiple of 8 (vector loops with no remainder), denormals flushed, and numba's threads
    as they were where they flush too (else the calling thread alone); the weights come back at their width."""
    _, params, x, y = engine_case(1, width=width, d=2, n=13)
    seen = {}
    real = fused._fused_steps

    def spy(*args):
        seen["arrays"] = [a for a in args if isinstance(a, np.ndarray)]
        seen["flushing"], seen["threads"] = runtime.flush_denormal_enabled(), numba.get_num_threads()
        return real(*args)

    monkeypatch.setattr(fused, "_fused_steps", spy)
    threads = numba.get_num_threads()
    members = params[0].shape[0]
    passes, fit, bad, acc, logits = fused.steps(params, x.transpose(1, 2).contiguous(), y.float(), [0.1] * members,
                                                   1.0, True, False)
    xt, labels, w1, b1, w2, b2, lrs = seen["arrays"][:7]
    assert {a.dtype for a in (xt, labels, w1, b1, w2, b2, lrs)} == {np.dtype(np.float32)}
    padded = -(-width // 8) * 8
    assert (w1.shape[2], b1.shape[1], w2.shape[1]) == (padded, padded, padded) and b2.shape == (members,)
    assert not w1[..., width:].any() and not b1[:, width:].any() and not w2[:, width:].any()
    assert seen["flushing"] and seen["threads"] == (threads if fused._pool_flushes() else 1)
    assert numba.get_num_threads() == threads, "the thread count is restored"
    assert params[0].shape[2] == params[1].shape[2] == width and logits.shape == (2, members, 13)
