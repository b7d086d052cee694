"""The command line over the library: `python -m badminima --help`."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from badminima.book import chapters, store_commands
from badminima.core.config import SCALES, ParameterError
from badminima.core.data.images import MalformedDataError

PRESETS = {"vanilla": (False, 0.0, 0.0), "sota": (True, 5e-4, 0.9)}


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train one image run (Paper A) into the result store",
                       description="Train one configuration of Paper A's image experiments into the result "
                                   "store; a stored run is loaded, not retrained, and a killed run resumes.")
    p.add_argument("--dataset", default="fashion_mnist",
                   help="fashion_mnist (default), mnist, cifar10, cifar100, cinic10, restricted_imagenet")
    p.add_argument("--data-dir", help="folder holding the data sets (default: $BADMINIMA_DATA or ./data)")
    p.add_argument("--results", help="result store folder (default: $BADMINIMA_RESULTS or ./results)")
    p.add_argument("--per-class", type=int, help="training images per class (default: the whole training set)")
    p.add_argument("--test-size", type=int, help="evaluate on the first N test images (default: all)")
    p.add_argument("--model", default="resnet18", help="vgg16, resnet18 (default), resnet50, densenet40")
    p.add_argument("--width", type=float, default=1.0, help="channel width multiplier (default 1.0)")
    p.add_argument("--seed", type=int, default=0, help="fixes init, Algorithm 1's set C, batch order (default 0)")
    p.add_argument("--init", choices=("random", "adversarial"), default="random")
    p.add_argument("--R", type=int, default=1, help="Algorithm 1 replication factor (default 1)")
    p.add_argument("--N", type=float, default=10.0, help="Algorithm 1: %% of values zeroed per copy (default 10)")
    p.add_argument("--whole-pixels", action="store_true", help="Algorithm 1 zeroes whole pixels, not values")
    p.add_argument("--phase1-epochs", type=int, default=350,
                   help="cap on Algorithm 1's training (default 350; stops at 99.99%% or when stalled)")
    p.add_argument("--preset", choices=PRESETS, default="vanilla",
                   help="vanilla: plain SGD; sota: crop+flip, l2 5e-4, momentum 0.9 (switches below override)")
    p.add_argument("--augment", choices=("on", "off"), help="random crop (padding 4) and horizontal flip")
    p.add_argument("--l2", type=float, help="weight decay")
    p.add_argument("--momentum", type=float, help="SGD momentum")
    p.add_argument("--lr", type=float, default=0.1, help="initial learning rate (default 0.1)")
    p.add_argument("--epochs", type=int, default=350,
                   help="epochs (default 350); the lr is divided by 10 at 150/350 and 250/350 of them")
    p.add_argument("--until-fit", action="store_true", help="stop at 100%% training accuracy")
    p.add_argument("--compile", action="store_true", help="on CUDA, torch.compile the network")


def _image_run(args):
    from badminima.paper_a.runs import Adversarial, DataSpec, ImageRun, schedule
    from badminima.core.train import TrainConfig

    augment, l2, momentum = PRESETS[args.preset]
    augment = augment if args.augment is None else args.augment == "on"
    phase1 = None
    if args.init == "adversarial":
        base = Adversarial().train
        phase1 = Adversarial(replication=args.R, noise_percent=args.N, whole_pixels=args.whole_pixels,
                             train=dataclasses.replace(base, max_epochs=args.phase1_epochs,
                                                       lr_drops=schedule(args.phase1_epochs)))
    train = TrainConfig(lr=args.lr, batch_size=128, max_epochs=args.epochs, lr_drops=schedule(args.epochs),
                        until_fit=args.until_fit, momentum=momentum if args.momentum is None else args.momentum,
                        weight_decay=l2 if args.l2 is None else args.l2)
    return ImageRun(DataSpec(args.dataset, args.per_class, args.test_size), args.model, args.width, args.seed,
                    phase1, augment, train)


def _train(args) -> None:
    from badminima.paper_a.runs import run_image
    from badminima.core.store import Store

    if args.data_dir:
        os.environ["BADMINIMA_DATA"] = args.data_dir
    run = _image_run(args)
    stored = run_image(run, Store(args.results), compile_=args.compile)
    m = stored.metrics
    print(f"{args.init} init, {args.preset}: train acc {100 * m['train_acc']:.2f}%, "
          f"test acc {100 * m['test_acc']:.2f}%, {m['epochs']} epochs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="badminima", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("book", "execute every chapter at a scale, then build the HTML book"),
                       ("chapter", "execute chapters with papermill into book/chapters/ (no book build)")):
        p = sub.add_parser(name, help=text)
        if name == "chapter":
            p.add_argument("names", nargs="*", help=f"chapters (default: all): {', '.join(chapters.CHAPTERS)}")
        p.add_argument("--scale", default="cpu", choices=SCALES)
        p.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: here)")
    _train_parser(sub)
    store_commands.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "store":
        return store_commands.run(args)
    try:
        if args.command == "train":
            _train(args)
            return 0
        chapters.execute_all(args.root, args.scale, getattr(args, "names", None) or None)
    except (ParameterError, FileNotFoundError, MalformedDataError) as err:
        print(f"badminima: {err}", file=sys.stderr)
        return 2
    if args.command == "book":
        print(f"book built: {chapters.build(args.root)}")
    return 0
