"""The CUDA path (bf16 autocast, channels_last, compile, checkpoints that move between devices). These run only
where a GPU is present (scripts/device_check.sh runs them on a lent GPU); elsewhere pytest reports them as skipped."""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from badminima.core import convnets
from badminima.core.data.toy import draw
from badminima.core.metrics import accuracy
from badminima.core.models import MLP, Single
from badminima.core.store import Store
from badminima.core.train import TrainConfig, train
from badminima.paper_a import runs as image_runs
from test_image_runs import data_dir, tiny_run  # noqa: F401  (data_dir is a fixture)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
CUDA, CPU = torch.device("cuda"), torch.device("cpu")
ROOT = Path(__file__).resolve().parents[1]


def _images(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, n, 1, 28, 28, generator=gen), torch.randint(0, 10, (1, n), generator=gen)


def _net(seed: int = 0) -> torch.nn.Module:
    return convnets.build("resnet18", 10, in_channels=1, width=0.0625, seed=seed)


def test_bf16_channels_last_fits_and_the_weights_work_in_fp32_on_cpu():
    x, y = _images()
    net = _net().to(CUDA, memory_format=torch.channels_last)
    run = train(Single(net), (x, y), TrainConfig(lr=0.05, batch_size=16, max_epochs=60), [0], device=CUDA)
    assert run.fitted == [True], "64 random-labelled images are memorised under bf16 autocast"
    cpu_net = _net()
    cpu_net.load_state_dict({k: v.float().cpu() for k, v in net.state_dict().items()})
    assert float(accuracy(Single(cpu_net).eval(), x, y)) >= 0.95, "bf16 logits and fp32 logits mostly agree"


def test_a_checkpoint_written_on_the_gpu_resumes_on_a_machine_without_one(tmp_path):
    x, y = _images()
    ckpt = tmp_path / "run.ckpt"
    cfg = TrainConfig(lr=0.05, batch_size=16, max_epochs=2, until_fit=False)
    train(Single(_net().to(CUDA, memory_format=torch.channels_last)), (x, y), cfg, [0], checkpoint=ckpt,
          device=CUDA)
    torch.save((x, y), tmp_path / "data.pt")
    script = f"""
import torch
from badminima.core import convnets
from badminima.core.models import Single
from badminima.core.train import TrainConfig, train
assert not torch.cuda.is_available()
x, y = torch.load({str(tmp_path / 'data.pt')!r})
net = convnets.build("resnet18", 10, in_channels=1, width=0.0625, seed=0)
run = train(Single(net), (x, y), TrainConfig(lr=0.05, batch_size=16, max_epochs=4, until_fit=False), [0],
            checkpoint={str(ckpt)!r}, device=torch.device("cpu"))
print(run.history["epoch"], run.steps)
"""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["[1,", "2,", "3,", "4]", "16"], "epochs 3-4 continue from the GPU's epoch 2"


def test_a_compiled_run_checkpoints_weights_an_uncompiled_run_can_resume(tmp_path):
    x, y = _images()
    ckpt = tmp_path / "run.ckpt"
    net = _net()
    net = image_runs.for_device([net], CUDA, compile_=True)
    train(net, (x, y), TrainConfig(lr=0.05, batch_size=16, max_epochs=1, until_fit=False), [0], checkpoint=ckpt,
          device=CUDA)
    plain = Single(_net().to(CUDA))
    run = train(plain, (x, y), TrainConfig(lr=0.05, batch_size=16, max_epochs=2, until_fit=False), [0],
                checkpoint=ckpt, device=CUDA)
    assert run.history["epoch"] == [1, 2]


def test_an_mlp_ensemble_follows_the_same_trajectory_on_gpu_and_cpu():
    draws = [draw("gaussians", 100, 2, seed)[0] for seed in range(4)]
    x, y = torch.stack([d[0] for d in draws]), torch.stack([d[1] for d in draws])
    cfg = TrainConfig(lr=0.1, max_epochs=3000)
    runs, weights = {}, {}
    for device in (CPU, CUDA):
        model = MLP((2, 100, 1), seeds=(0, 1, 2, 3))
        # amp=False: Paper B's nets train in float32 on every device, as the sweeps run them.
        runs[device.type] = train(model, (x, y), cfg, [0, 1, 2, 3], device=device, amp=False)
        weights[device.type] = torch.cat([p.detach().cpu().flatten() for p in model.parameters()])
    assert runs["cuda"].fit_step == runs["cpu"].fit_step
    assert torch.allclose(weights["cuda"], weights["cpu"], rtol=1e-3, atol=1e-4)


def test_an_image_run_trained_on_the_gpu_is_stored_and_loads_on_the_cpu(data_dir, tmp_path):
    store = Store(tmp_path)
    run = tiny_run()
    stored = image_runs.run_image(run, store, device=CUDA, progress=False)
    model = image_runs.load_model(run, stored.weights)
    assert all(v.device.type == "cpu" for v in stored.weights.values())
    data = image_runs.prepare(run.data, CPU)
    cpu_acc = float(accuracy(Single(model), data.x_test, data.y_test))
    assert abs(cpu_acc - stored.metrics["test_acc"]) <= 0.05, "the GPU's bf16 test accuracy and the CPU's agree"
    again = image_runs.run_image(dataclasses.replace(run), store, device=CUDA, progress=False)
    assert again.metrics == stored.metrics, "stored once, loaded after"


def test_the_fast_path_on_the_gpu_matches_the_generic_loop_there():
    from badminima.core import fastmlp

    draws = [draw("circles", 60, 2, seed)[0] for seed in range(4)]
    x, y = torch.stack([d[0] for d in draws]), torch.stack([d[1] for d in draws])
    cfg = TrainConfig(lr=0.05, max_epochs=800)
    generic, fast = MLP((2, 32, 1), seeds=(0, 1, 2, 3)), MLP((2, 32, 1), seeds=(0, 1, 2, 3))
    a = train(generic, (x, y), cfg, [0, 1, 2, 3], device=CUDA, amp=False)
    b = fastmlp.train_mlp(fast, (x, y), cfg, [0, 1, 2, 3], device=CUDA)
    assert b.fit_step == a.fit_step and any(a.fitted)
    for pa, pb in zip(generic.parameters(), fast.parameters()):
        torch.testing.assert_close(pb.detach(), pa.detach(), rtol=1e-4, atol=1e-5)
