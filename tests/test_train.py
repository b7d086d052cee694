import dataclasses
import logging

import pytest
import torch

from badminima.core.config import ParameterError
from badminima.core.data.toy import draw
from badminima.core import convnets
from badminima.core.models import MLP, Single, member_params
from badminima.core.packed import Packed
from badminima.core.train import Run, TrainConfig, previous, train

CPU = torch.device("cpu")


def gaussians(seed=0, n=40):
    (x, y), (xt, yt) = draw("gaussians", n, 100, seed)
    return (x[None], y[None]), (xt[None], yt[None])


def test_reaches_100_percent_on_separable_data():
    data, test = gaussians()
    model = MLP([2, 16, 1], seeds=[0])
    run = train(model, data, TrainConfig(lr=0.1, batch_size=10, max_epochs=200), [0], test_set=test, device=CPU)
    assert run.fitted == [True] and not run.cap_hit
    assert run.history["train_acc"][-1] == [1.0]
    assert run.epochs == run.fit_epoch[0] < 200
    assert run.steps == 4 * run.epochs and run.fit_step[0] == run.steps
    assert run.history["test_acc"][-1][0] > 0.9


def test_reports_the_cap_on_an_unlearnable_set():
    x = torch.zeros(1, 10, 2)                       # identical points, both labels: no model fits them
    y = torch.tensor([[0, 1] * 5])
    run = train(MLP([2, 8, 1], seeds=[0]), (x, y), TrainConfig(max_epochs=15), [0], device=CPU)
    assert run.cap_hit and run.fit_epoch == [None] and run.epochs == 15
    assert len(run.history["epoch"]) == 15


def test_batched_members_follow_their_own_trajectories():
    """An ensemble of 3 trained together = the 3 trained one by one (minibatches, momentum, l2, early stops)."""
    seeds = [0, 1, 2]
    draws = [draw("circles", 40, 2, s)[0] for s in seeds]
    x = torch.stack([d[0] for d in draws])
    y = torch.stack([d[1] for d in draws])
    cfg = TrainConfig(lr=0.05, batch_size=8, momentum=0.9, weight_decay=1e-3, max_epochs=30)
    batched = MLP([2, 32, 32, 1], seeds)
    run = train(batched, (x, y), cfg, seeds, device=CPU)
    assert len(set(run.fit_epoch)) > 1, "members stop at different epochs, so per-member stopping is exercised"
    for m, s in enumerate(seeds):
        alone = MLP([2, 32, 32, 1], [s])
        run1 = train(alone, (x[m:m + 1], y[m:m + 1]), cfg, [s], device=CPU)
        assert run1.fit_epoch[0] == run.fit_epoch[m]
        assert torch.allclose(member_params(alone)[0], member_params(batched)[m], atol=1e-5)
        assert [h[m] for h in run.history["loss"][:run1.epochs]] == pytest.approx(
            [h[0] for h in run1.history["loss"]], rel=1e-4)


def test_full_batch_fit_check_from_the_steps_own_forward_pass_changes_nothing(tmp_path):
    """Full-batch runs read each epoch's fit from the next step's forward pass; naming the fit set explicitly takes
    the separate-pass path. Both give the same stops, history and weights, also across a resumed checkpoint."""
    seeds = [0, 1, 2, 3]
    draws = [draw("circles", 30, 2, s)[0] for s in seeds]
    data = torch.stack([d[0] for d in draws]), torch.stack([d[1] for d in draws])
    cfg = TrainConfig(lr=0.5, max_epochs=150)
    shared, separate, resumed = (MLP([2, 16, 1], seeds) for _ in range(3))
    run = train(shared, data, cfg, seeds, device=CPU)
    reference = train(separate, data, cfg, seeds, fit_set=data, device=CPU)
    assert 1 < len({e for e in run.fit_epoch if e is not None}), "members stop at different epochs"
    assert run.as_dict() == reference.as_dict()
    assert torch.equal(member_params(shared), member_params(separate))
    ckpt = tmp_path / "run.ckpt"
    train(resumed, data, dataclasses.replace(cfg, max_epochs=min(e for e in run.fit_epoch if e) + 1), seeds,
          checkpoint=ckpt, device=CPU)
    again = train(MLP([2, 16, 1], seeds), data, cfg, seeds, checkpoint=ckpt, device=CPU)
    assert again.as_dict() == run.as_dict()


@pytest.mark.parametrize("every", [7, frozenset({1, 4, 30, 31, 90, 10_000})], ids=["every 7th", "given epochs"])
def test_a_sparse_history_records_the_epochs_asked_for_and_the_last_and_changes_nothing_else(every):
    seeds = [0, 1, 2, 3]
    draws = [draw("circles", 30, 2, s)[0] for s in seeds]
    data = torch.stack([d[0] for d in draws]), torch.stack([d[1] for d in draws])
    cfg = TrainConfig(lr=0.5, max_epochs=150)
    dense, sparse = MLP([2, 16, 1], seeds), MLP([2, 16, 1], seeds)
    full = train(dense, data, cfg, seeds, device=CPU)
    run = train(sparse, data, cfg, seeds, history_every=every, device=CPU)
    kept = (lambda e: e in every) if isinstance(every, frozenset) else (lambda e: e % every == 0)
    assert run.history["epoch"] == [e for e in full.history["epoch"] if kept(e) or e == full.epochs]
    assert len(run.history["epoch"]) < len(full.history["epoch"])
    assert run.history["train_acc"] == [a for e, a in zip(full.history["epoch"], full.history["train_acc"])
                                        if e in run.history["epoch"]]
    assert (run.fit_step, run.steps) == (full.fit_step, full.steps)
    assert torch.equal(member_params(dense), member_params(sparse))
    with pytest.raises(ValueError, match="patience"):
        train(MLP([2, 4, 1], [0]), data, TrainConfig(patience=3), seeds[:1], history_every=2, device=CPU)


def test_only_the_given_parameters_move():
    data, _ = gaussians()
    model = MLP([2, 16, 1], seeds=[0])
    first = model.weights[0].detach().clone()
    readout = [p.detach().clone() for p in model.readout()]
    train(model, data, TrainConfig(lr=0.1, max_epochs=5, until_fit=False), [0], params=model.readout(), device=CPU)
    assert torch.equal(model.weights[0], first)
    assert all(not torch.equal(p, q) for p, q in zip(model.readout(), readout)), "the given parameters trained"


@pytest.mark.equivalence
def test_resume_from_checkpoint_matches_an_uninterrupted_run(tmp_path):
    data, test = gaussians()
    cfg = TrainConfig(lr=0.02, batch_size=10, momentum=0.5, max_epochs=12, until_fit=False)
    whole = MLP([2, 16, 1], seeds=[0])
    run_whole = train(whole, data, cfg, [0], test_set=test, device=CPU)
    ckpt = tmp_path / "run.ckpt"
    part = MLP([2, 16, 1], seeds=[0])
    train(part, data, dataclasses.replace(cfg, max_epochs=5), [0], test_set=test, checkpoint=ckpt, device=CPU)
    resumed = MLP([2, 16, 1], seeds=[0])                 # a fresh process would start from a fresh model
    run_resumed = train(resumed, data, cfg, [0], test_set=test, checkpoint=ckpt, device=CPU)
    assert torch.equal(member_params(resumed), member_params(whole))
    assert run_resumed.history == run_whole.history


def test_learning_rate_schedule():
    cfg = TrainConfig(lr=0.1, lr_drops=(150, 250))
    assert [cfg.lr_at(e) for e in (1, 150, 151, 250, 251)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])


def test_bad_config_is_a_one_line_error():
    with pytest.raises(ParameterError, match="momentum=1.5 is out of range"):
        TrainConfig(momentum=1.5)


@pytest.mark.parametrize("batch_size", [None, 10], ids=["full batch", "minibatch"])
def test_a_run_whose_loss_becomes_non_finite_stops_at_once_as_diverged(batch_size):
    data, _ = gaussians()
    run = train(MLP([2, 16, 1], seeds=[0]), data, TrainConfig(lr=1e30, batch_size=batch_size, max_epochs=50), [0],
                device=CPU)
    assert run.diverged == [True] and run.diverge_epoch == [1] and run.epochs == 1
    assert run.fitted == [False] and not run.cap_hit, "diverged: neither fitted nor stopped by the cap"
    assert run.steps == 1, "the step whose loss was not finite is not taken"
    assert Run.from_dict(run.as_dict()).diverge_epoch == [1]


def test_a_run_that_did_not_diverge_keeps_the_dict_it_had_before_divergence_was_recorded():
    data, _ = gaussians()
    run = train(MLP([2, 16, 1], seeds=[0]), data, TrainConfig(lr=0.1, max_epochs=3), [0], device=CPU)
    assert "diverge_epoch" not in run.as_dict()
    old = Run.from_dict({k: v for k, v in run.as_dict().items()})
    assert old.diverged == [False] and old.fitted == run.fitted


@pytest.mark.parametrize("until_fit", [True, False])
def test_a_member_that_diverges_stops_alone_and_the_others_train_as_if_alone(until_fit):
    seeds = [0, 1, 2]
    draws = [draw("gaussians", 40, 2, s)[0] for s in seeds]
    x = torch.stack([d[0] for d in draws]) * torch.tensor([1.0, 30.0, 1.0])[:, None, None]   # member 1 blows up
    y = torch.stack([d[1] for d in draws])
    cfg = TrainConfig(lr=2.0, batch_size=8, max_epochs=6, until_fit=until_fit)
    packed = MLP([2, 16, 1], seeds)
    run = train(packed, (x, y), cfg, seeds, device=CPU)
    assert run.diverged == [False, True, False] and run.fitted[1] is False
    assert run.fitted[0] and run.fitted[2]
    for m in (0, 2):
        alone = MLP([2, 16, 1], [seeds[m]])
        run1 = train(alone, (x[m:m + 1], y[m:m + 1]), cfg, [seeds[m]], device=CPU)
        assert run1.fit_epoch[0] == run.fit_epoch[m] and run1.diverged == [False]
        assert torch.allclose(member_params(alone)[0], member_params(packed)[m], atol=1e-5)


def _truncate(path):
    path.write_bytes(path.read_bytes()[:100])


@pytest.mark.parametrize("damaged", ["newest", "both"])
def test_an_unreadable_checkpoint_gets_one_warning_and_the_run_resumes_or_starts_over(tmp_path, caplog, damaged):
    data, _ = gaussians()
    cfg = TrainConfig(lr=0.02, batch_size=10, max_epochs=8, until_fit=False)
    whole = MLP([2, 16, 1], seeds=[0])
    run_whole = train(whole, data, cfg, [0], device=CPU)
    ckpt = tmp_path / "run.ckpt"
    train(MLP([2, 16, 1], seeds=[0]), data, dataclasses.replace(cfg, max_epochs=5), [0], checkpoint=ckpt,
          device=CPU)
    assert previous(ckpt).exists(), "the checkpoint before the newest is kept"
    for path in [ckpt, previous(ckpt)][:1 if damaged == "newest" else 2]:
        _truncate(path)
    resumed = MLP([2, 16, 1], seeds=[0])
    with caplog.at_level(logging.WARNING):
        run = train(resumed, data, cfg, [0], checkpoint=ckpt, device=CPU)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == (1 if damaged == "newest" else 2)
    assert all("\n" not in w and "is unreadable" in w for w in warnings)
    assert warnings[0].endswith("trying the previous one")
    assert warnings[-1].endswith("starting over") == (damaged == "both")
    assert torch.equal(member_params(resumed), member_params(whole))
    assert run.history == run_whole.history
    again = train(MLP([2, 16, 1], seeds=[0]), data, cfg, [0], checkpoint=ckpt, device=CPU)
    assert again.epochs == 8, "the rerun reads the checkpoint the resumed run wrote"


def test_a_packed_member_that_diverges_stops_alone_and_the_others_train_as_if_alone():
    """Member 1's classifier scaled far up: its logits overflow at once. It stops as diverged; member 0 trains as
    it does alone (to float tolerance: a grouped convolution sums in another order)."""
    def nets():
        out = [convnets.build("resnet18", 10, 1, 0.0625, seed=s) for s in (0, 1, 2)]
        with torch.no_grad():
            out[1].classifier.weight.mul_(1e38)
        return out

    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(1, 16, 1, 8, 8, generator=gen), torch.randint(0, 10, (1, 16), generator=gen)
    # One epoch of two steps: member 1 diverges at the first, the others take both.
    cfg = TrainConfig(lr=0.01, batch_size=8, max_epochs=1, until_fit=False)
    packed = Packed(nets())
    run = train(packed, (x, y), cfg, [0, 1, 2], device=CPU)
    assert run.diverged == [False, True, False] and run.diverge_epoch[1] == 1 and run.steps == 2
    alone = Single(nets()[0])
    run0 = train(alone, (x, y), cfg, [0], device=CPU)
    assert run0.diverged == [False]
    assert run.history["loss"][0][0] == pytest.approx(run0.history["loss"][0][0], rel=1e-4)
    state = packed.member_state(0)
    worst = max(float((state[k].float() - v.float()).abs().max() / v.float().abs().max().clamp(min=1e-12))
                for k, v in alone.net.state_dict().items() if v.is_floating_point())
    assert worst < 1e-3, "each tensor as alone, relative to its largest entry"
