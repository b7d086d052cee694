"""Results keyed by their whole configuration: each run is trained once, written atomically, checked on load."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from badminima.core.config import as_dict, config_key

Weights = dict[str, torch.Tensor]


@dataclass
class Stored:
    config: dict
    metrics: dict
    weights: Weights


def default_root() -> Path:
    return Path(os.environ.get("BADMINIMA_RESULTS", "results"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Store:
    """A folder of runs: <root>/<kind>/<key>/{config.json, metrics.json, weights.pt}. A run in progress lives in
    <key>.partial/ (its checkpoints too) and is renamed into place only when complete, so a failed or killed run
    never replaces a finished one, and a restarted run resumes from its checkpoints."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_root()

    def path(self, kind: str, config: Any) -> Path:
        return self.root / kind / config_key(config)

    def load(self, kind: str, config: Any) -> Stored | None:
        path = self.path(kind, config)
        if not path.exists():
            return None
        metrics = json.loads((path / "metrics.json").read_text())
        if _sha256(path / "weights.pt") != metrics["weights_sha256"]:
            raise RuntimeError(f"stored weights at {path} do not match their checksum; delete that folder to rerun")
        weights = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
        return Stored(json.loads((path / "config.json").read_text()), metrics["metrics"], weights)

    def load_or_run(self, kind: str, config: Any,
                    run: Callable[[Path], tuple[dict, Weights]]) -> Stored:
        """The stored result for `config`, or the result of `run(workdir)` (metrics, weights), stored first."""
        stored = self.load(kind, config)
        if stored is not None:
            return stored
        final = self.path(kind, config)
        work = final.with_name(final.name + ".partial")
        work.mkdir(parents=True, exist_ok=True)
        metrics, weights = run(work)
        torch.save({k: v.detach().cpu() for k, v in weights.items()}, work / "weights.pt")
        plain = as_dict(config)
        (work / "config.json").write_text(json.dumps(plain, indent=1, sort_keys=True))
        (work / "metrics.json").write_text(json.dumps(
            {"metrics": metrics, "weights_sha256": _sha256(work / "weights.pt")}))
        for leftover in work.glob("*.ckpt"):
            leftover.unlink()
        os.replace(work, final)
        return Stored(plain, metrics, self.load(kind, config).weights)


class NotStored(LookupError):
    """A result that a read-only store was asked for is not there."""


class ReadOnlyStore(Store):
    """A store that only reads: a missing result raises NotStored instead of being computed, so a page that
    gathers results from the chapters never trains."""

    def load_or_run(self, kind: str, config: Any, run: Callable[[Path], tuple[dict, Weights]]) -> Stored:
        stored = self.load(kind, config)
        if stored is None:
            raise NotStored(f"no stored {kind} result {config_key(config)} under {self.root}")
        return stored
