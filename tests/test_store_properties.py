"""The store's guarantees as properties: any interleaving of writes, failed and interrupted computations, damage
and removals leaves every complete result loadable with its exact bytes, calls nothing else complete, and never
touches a file the store did not write."""
import json
import shutil
import tempfile
from pathlib import Path
from unittest import mock

import torch
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from badminima.core import layout
from badminima.core.layout import FILES, MANIFEST
from badminima.core.store import Store

CONFIGS = [{"seed": s} for s in range(3)]
KIND = "demo"
# Files a user left in the store's folders: the store must never list, move or remove them.
FOREIGN = {"demo/notes.txt": b"mine", "demo/my-runs/a.txt": b"also mine", "other/0123456789abcdef.txt": b"x"}
WRONG_SHAPES = [b"[]", b'"text"', b"{}", b"null", b"1", b'{"sha256": "x"}', b'{"metrics": []}']

payloads = st.tuples(st.floats(-1e6, 1e6, allow_nan=False), st.lists(st.floats(-10, 10, width=32), max_size=3))


class Interrupted(BaseException):
    """A kill arriving in the middle of writing a file (as KeyboardInterrupt would)."""


class StoreMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.root = Path(tempfile.mkdtemp())
        self.store = Store(self.root)
        self.complete: dict[str, dict[str, bytes]] = {}   # key -> the bytes of its four files, as first stored
        for name, content in FOREIGN.items():
            (self.root / name).parent.mkdir(parents=True, exist_ok=True)
            (self.root / name).write_bytes(content)

    def teardown(self):
        shutil.rmtree(self.root)

    def folder(self, i: int) -> Path:
        return self.store.path(KIND, CONFIGS[i])

    def remember(self, i: int) -> None:
        self.complete[self.folder(i).name] = {n: (self.folder(i) / n).read_bytes() for n in (*FILES, MANIFEST)}

    @rule(i=st.integers(0, 2), payload=payloads)
    def write(self, i, payload):
        acc, values = payload
        stored = self.store.load_or_run(KIND, CONFIGS[i], lambda work: ({"acc": acc}, {"w": torch.tensor(values)}))
        if self.folder(i).name not in self.complete:
            assert stored.metrics == {"acc": acc} and stored.weights["w"].tolist() == values
            self.remember(i)

    @rule(group=st.lists(st.integers(0, 2), min_size=1, max_size=4), payload=payloads, killed=st.booleans())
    def write_group(self, group, payload, killed):
        """Several configurations (a repeat among them, maybe) computed together, or killed after a checkpoint."""
        acc, values = payload

        def run(work, todo):
            (work / "group.ckpt").write_bytes(b"half way")
            if killed:
                raise RuntimeError("the group was killed")
            return [({"acc": acc + i}, {"w": torch.tensor(values)}) for i in todo]

        try:
            stored = self.store.load_or_run_many(KIND, [CONFIGS[i] for i in group], run)
        except RuntimeError:
            assert killed
            return
        for i, result in zip(group, stored):
            if self.folder(i).name not in self.complete:
                assert result.metrics == {"acc": acc + group.index(i)} and result.weights["w"].tolist() == values
                self.remember(i)

    @rule(i=st.integers(0, 2), checkpoint=st.booleans())
    def fail(self, i, checkpoint):
        def run(work):
            if checkpoint:
                (work / "train.ckpt").write_bytes(b"half way")
            raise RuntimeError("the computation failed")

        try:
            self.store.load_or_run(KIND, CONFIGS[i], run)
        except RuntimeError:
            assert self.folder(i).name not in self.complete, "a stored result is loaded, not recomputed"

    @rule(i=st.integers(0, 2), nth=st.integers(1, 4), kept=st.floats(0, 1))
    def interrupt_a_write(self, i, nth, kept):
        """A kill while the store writes its nth file (config, weights, metrics, manifest): half a file is left."""
        real, calls = layout.write_durably, []

        def half(path, write):
            calls.append(path)
            if len(calls) < nth:
                return real(path, write)
            real(path, write)
            path.write_bytes(path.read_bytes()[:int(kept * path.stat().st_size)])
            raise Interrupted

        with mock.patch.object(layout, "write_durably", half):
            try:
                self.store.load_or_run(KIND, CONFIGS[i], lambda work: ({"acc": 1.0}, {"w": torch.ones(2)}))
            except Interrupted:
                assert self.folder(i).name not in self.complete

    @precondition(lambda self: self.complete)
    @rule(data=st.data(), name=st.sampled_from([*FILES, MANIFEST]),
          how=st.sampled_from(["truncate", "flip a byte", "garbage", "wrong shape", "missing"]))
    def damage(self, data, name, how):
        key = data.draw(st.sampled_from(sorted(self.complete)))
        path = self.root / KIND / key / name
        before = path.read_bytes()
        # Positions as fractions of the size: a manifest's length varies with its time stamp, and hypothesis needs a
        # replayed example to draw from the same ranges.
        if how == "truncate":
            path.write_bytes(before[:int(data.draw(st.floats(0, 1, exclude_max=True)) * len(before))])
        elif how == "flip a byte":   # a tensor's value, say: the file still parses, only its checksum tells
            flipped = bytearray(before)
            flipped[int(data.draw(st.floats(0, 1, exclude_max=True)) * len(before))] ^= data.draw(st.integers(1, 255))
            path.write_bytes(bytes(flipped))
        elif how == "garbage":
            garbage = data.draw(st.binary(min_size=1, max_size=40))
            assume(garbage != before)
            path.write_bytes(garbage)
        elif how == "wrong shape":
            shape = data.draw(st.sampled_from(WRONG_SHAPES))
            assume(shape != before)
            path.write_bytes(shape)
        else:
            path.unlink()
        del self.complete[key]

    @precondition(lambda self: self.store.entries())
    @rule(data=st.data())
    def remove(self, data):
        entry = data.draw(st.sampled_from(self.store.entries()))
        assert self.store.remove(entry)
        self.complete.pop(entry.key if entry.status == "complete" else None, None)

    @rule(i=st.integers(0, 2))
    def load(self, i):
        stored = self.store.load(KIND, CONFIGS[i])
        assert (stored is not None) == (self.folder(i).name in self.complete)

    @invariant()
    def complete_results_load_with_their_bytes_and_nothing_else_is_complete(self):
        called_complete = {e.key for e in self.store.entries()
                           if e.status == "complete" and self.store.problem(e) is None}
        assert called_complete == set(self.complete)
        for key, files in self.complete.items():
            assert {n: (self.root / KIND / key / n).read_bytes() for n in files} == files
            metrics = json.loads(files["metrics.json"])["metrics"]
            i = next(i for i in range(3) if self.folder(i).name == key)
            assert self.store.load(KIND, CONFIGS[i]).metrics == metrics

    @invariant()
    def what_the_store_did_not_write_is_untouched(self):
        assert all((self.root / name).read_bytes() == content for name, content in FOREIGN.items())


StoreMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=12, deadline=None, database=None,
                                          suppress_health_check=[HealthCheck.too_slow])
test_store_guarantees = StoreMachine.TestCase
