"""What pinning the kernels costs (core/runtime.py: every result computed with the same AVX2 kernels on any x86-64
CPU): the image benchmark (training and evaluation images/s per model) and Paper B's benchmark (microseconds per
member-step) each run twice, one after the other, with the pinned kernels and with the host's own
(BADMINIMA_FAST_KERNELS=1), printed side by side with the host's speed-up. Run it on a quiet machine.

    .venv/bin/python scripts/bench_kernels.py [--models resnet18 ...] [--width 0.125] [--batch 32]
                                              [--widths 10 100 500] [--members 32]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from badminima.core import convnets, runtime
from badminima.core.metrics import EVAL_CHUNK
from badminima.core.reference import instruction_sets

HERE = Path(__file__).resolve().parent
SETTINGS = {"pinned": {}, "host": {runtime.FAST_KERNELS: "1"}}


def rows(script: str, arguments: list[str], setting: str) -> pd.DataFrame:
    """The benchmark's rows, run in a process of its own with the setting's kernels."""
    env = {k: v for k, v in os.environ.items() if k not in runtime.KERNELS} | SETTINGS[setting]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        subprocess.run([sys.executable, str(HERE / script), *arguments, "--json", str(out)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        return pd.DataFrame(json.loads(out.read_text()))


def side_by_side(script: str, arguments: list[str], keys: list[str], values: dict[str, str]) -> pd.DataFrame:
    """Each of `values` (column -> "higher" or "lower": which is faster) with the pinned and with the host's
    kernels, and the host's speed-up."""
    runs = {setting: rows(script, arguments, setting).set_index(keys) for setting in SETTINGS}
    table = pd.DataFrame(index=runs["pinned"].index)
    for value, faster in values.items():
        pinned, host = runs["pinned"][value], runs["host"][value]
        table[f"{value}, pinned"], table[f"{value}, host"] = pinned, host
        table[f"{value}: host's speed-up"] = host / pinned if faster == "higher" else pinned / host
    return table.round(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(convnets.NAMES))
    parser.add_argument("--width", default="0.125", help="the cpu scale's (DenseNet-40 runs at 0.5 there)")
    parser.add_argument("--batch", default="32")
    parser.add_argument("--widths", nargs="+", default=["10", "100", "500"], help="Paper B's hidden widths")
    parser.add_argument("--members", nargs="+", default=["32"])
    args = parser.parse_args()
    print(f"CPU: {instruction_sets()}; {os.cpu_count()} cores; pinned: {runtime.KERNELS}")
    print(side_by_side("bench_images.py", ["--models", *args.models, "--widths", args.width, "--batch", args.batch,
                                           "--eval-chunks", str(EVAL_CHUNK)],
                       ["model", "variant"], {"train img/s": "higher", f"eval img/s at chunk {EVAL_CHUNK}": "higher"}
                       ).to_string())
    print(side_by_side("bench_ensemble.py", ["--widths", *args.widths, "--members", *args.members, "--alone", "1"],
                       ["p", "members"], {"fast us": "lower", "batched us": "lower"}).to_string())


if __name__ == "__main__":
    main()
