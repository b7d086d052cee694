"""Paper A's effect at full width, where only a GPU makes it affordable: ResNet18 (width 1.0) on Fashion-MNIST with
a few images a class; phase 1 fits R noisy randomly labelled copies (Algorithm 1) to 99.99%, then vanilla SGD
trains on the true labels to 100% training accuracy from the random and from the adversarial init. Prints one row
per run and the drop in test accuracy per seed. Every run goes through the library's image runs and store.

    python scripts/gpu_pilot.py [--seeds 0 1 2] [--per-class 50] [--R 10] [--lr 0.01] [--results DIR]
"""
from __future__ import annotations

import argparse
import time

from badminima.core.store import Store
from badminima.core.train import TrainConfig, default_device
from badminima.paper_a.runs import Adversarial, DataSpec, ImageRun, run_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--R", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.01, help="phase 2's learning rate")
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--results", default="results-gpu-pilot")
    args = parser.parse_args()
    store, device = Store(args.results), default_device()
    phase1 = Adversarial(replication=args.R, train=TrainConfig(lr=0.1, batch_size=128, max_epochs=150,
                                                                fit_target=0.9999, eval_every=150))
    phase2 = TrainConfig(lr=args.lr, batch_size=128, max_epochs=300, until_fit=True, eval_every=300)
    print(f"{args.model} width {args.width} on {device}; Fashion-MNIST, {args.per_class} a class, full test set; "
          f"R = {args.R}; phase 2 vanilla SGD lr {args.lr} to 100% (cap 300 epochs)")
    print(f"{'seed':>4} {'init':<12} {'epochs':>6} {'train %':>8} {'test %':>7} {'seconds':>8}")
    tests = {}
    for seed in args.seeds:
        for init in ("random", "adversarial"):
            run = ImageRun(DataSpec("fashion_mnist", args.per_class), args.model, args.width, seed,
                           phase1 if init == "adversarial" else None, train=phase2)
            start = time.time()
            m = run_image(run, store, device=device, progress=False).metrics
            tests[seed, init] = 100 * m["test_acc"]
            print(f"{seed:>4} {init:<12} {m['epochs']:>6} {100 * m['train_acc']:>8.2f} {tests[seed, init]:>7.2f} "
                  f"{time.time() - start:>8.1f}", flush=True)
    drops = [tests[s, "random"] - tests[s, "adversarial"] for s in args.seeds]
    print("test-accuracy drop (random - adversarial init), per seed: " + ", ".join(f"{d:.2f}" for d in drops)
          + f"; mean {sum(drops) / len(drops):.2f} points")


if __name__ == "__main__":
    main()
