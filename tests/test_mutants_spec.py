"""The plan's plain types, pinned where mutation testing found them loose (tests/README.md).

Look-ups by name and id with their one-line refusals, a group written before runs had study
parameters, and ids of values that JSON cannot hold.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mathdl.config import load_plan
from mathdl.spec import GroupSpec, stable_hash


def _plan():
    task = {"input_dim": 3, "n_classes": 2, "n_train": 8, "n_test": 8}
    return load_plan({"experiments": {
        "a": {"study": "sweep", "task": task, "sweep": {"model.width": [4, 8]}},
        "b": {"study": "sweep", "task": task, "sweep": {"train.lr": [0.1]}},
    }})


def test_experiment_and_group_look_ups_and_their_refusals():
    plan = _plan()
    a = plan.experiment("a")
    assert a.name == "a" and plan.experiment("b").name == "b"
    with pytest.raises(KeyError, match=r"no experiment 'c'; the plan has \['a', 'b'\]"):
        plan.experiment("c")
    assert len(a.groups) == 2  # two widths: two shapes
    for g in a.groups:
        assert a.group(g.group_id) is g
    with pytest.raises(KeyError, match=r"experiment 'a' has no group 'nope'"):
        a.group("nope")


def test_a_group_written_without_study_params_reads_back_with_none():
    group = _plan().experiment("a").groups[0]
    d = group.to_dict()
    for r in d["runs"]:
        del r["params"]  # a groups file from before runs had study parameters
    back = GroupSpec.from_dict(d)
    assert all(r.params == {} for r in back.runs)
    assert [r.run_id for r in back.runs] == [r.run_id for r in group.runs]


def test_values_json_cannot_hold_are_hashed_by_their_text():
    assert stable_hash({"path": Path("data/x")}) == stable_hash({"path": "data/x"})
    assert stable_hash({"b": 1, "a": [1, 2]}) == stable_hash({"a": [1, 2], "b": 1})  # key order is not identity
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
