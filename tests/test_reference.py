"""The book's numbers are a function of the commit and the parameters, not of the CPU: a few short runs, one per
model family and the fast path, give the weights whose digests are committed, on any x86-64 CPU with AVX2 and FMA."""
import os
import subprocess
import sys

import pytest

from badminima.core import reference, runtime
from badminima.core.store import Store


def test_the_reference_runs_give_the_committed_digests():
    tag = runtime.kernels_tag()
    if tag is not None:
        pytest.skip(f"this process computes with other kernels than the pinned ones ({tag}): the committed digests "
                    f"are the pinned kernels'")
    ours, theirs = reference.compute(), reference.committed()
    assert set(ours) == set(theirs), "the reference runs and the committed digests name the same runs"
    different = [name for name in theirs if ours[name] != theirs[name]]
    assert not different, (
        f"{', '.join(different)}: other weights than the committed reference's with the pinned kernels on this CPU "
        f"({reference.instruction_sets()}); either a change to how runs compute (then re-commit them with `python -m "
        f"badminima.core.reference --write`) or a kernel family that runtime.KERNELS does not pin on this CPU")


def test_other_kernels_give_other_weights_and_the_store_keeps_them_apart(tmp_path):
    """The digests can tell kernels apart (else the test above could not fail), and such results get keys of their
    own: ATen's plain kernels, as a user who sets ATEN_CPU_CAPABILITY=default computes."""
    code = ("from badminima.core import reference, runtime; from badminima.core.store import Store; "
            "print(runtime.kernels_tag()); print(reference.digest(reference.RUNS['resnet18']())); "
            "print(Store('.').key({'a': 1}))")
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    tag, weights, key = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                       check=True).stdout.split("\n")[:3]
    assert "DEFAULT" in tag and "ATEN_CPU_CAPABILITY=default" in tag
    assert weights != reference.committed()["resnet18"]
    if runtime.kernels_tag() is None:
        assert key != Store(tmp_path).key({"a": 1})
