import pandas as pd

from badminima import claims


def test_greater_holds_fails_and_is_inconclusive():
    assert claims.greater("c", "p", [5, 6, 7], [1, 2, 3], ("a", "b")).verdict == claims.HOLDS
    assert claims.greater("c", "p", [1, 2, 3], [5, 6, 7], ("a", "b")).verdict == claims.FAILS
    noisy = claims.greater("c", "p", [5, 1, 6], [1, 5, 2], ("a", "b"))
    assert noisy.verdict == claims.UNCLEAR and "s.e." in noisy.ours
    assert claims.greater("c", "p", [5, 6], [4, 5], ("a", "b"), min_gap=2).verdict == claims.FAILS
    assert claims.greater("c", "p", [2], [1], ("a", "b")).test.startswith("one seed")


def test_all_reach():
    assert claims.all_reach("c", "p", [100, 100], "x").verdict == claims.HOLDS
    failing = claims.all_reach("c", "p", [100, 99.5], "x")
    assert failing.verdict == claims.FAILS and "1 of 2" in failing.ours


def sketch_table(margins, tests):
    rows = []
    for setting in (1, 2, 3, 4):
        for seed in (0, 1, 2):
            rows.append({"setting": setting, "seed": seed, "train acc %": 100.0,
                         "margin": margins[setting] + 0.01 * seed, "test acc %": tests[setting] + 0.1 * seed})
    return pd.DataFrame(rows)


def test_sketch_verdicts_follow_the_numbers():
    good = sketch_table({1: 2.0, 2: 0.01, 3: 0.1, 4: 1.5}, {1: 99.0, 2: 50.0, 3: 90.0, 4: 99.0})
    assert all(v.verdict == claims.HOLDS for v in claims.sketch_verdicts(good))
    bad = sketch_table({1: 0.1, 2: 0.5, 3: 2.0, 4: 0.05}, {1: 90.0, 2: 50.0, 3: 99.0, 4: 99.0})
    verdicts = {v.claim: v.verdict for v in claims.sketch_verdicts(bad)}
    assert list(verdicts.values()).count(claims.FAILS) == 4
    table = claims.verdict_table(claims.sketch_verdicts(bad))
    assert list(table.columns) == ["claim", "paper", "ours", "verdict", "test"]
