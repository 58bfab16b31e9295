"""scripts/gpu-check: its CPU mode runs end to end (so the GPU check cannot rot before a GPU
comes), a failing section fails the check without losing the others, and its table
comparison tells tables apart."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "gpu-check"


def load_script():
    loader = importlib.machinery.SourceFileLoader("gpu_check", str(SCRIPT))
    spec = importlib.util.spec_from_loader("gpu_check", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up
    loader.exec_module(module)
    return module


def check(*args, timeout=600):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.workflow  # about a minute: every section, each in its own process
def test_cpu_mode_writes_one_file_with_every_section(tmp_path):
    out = check("--cpu", tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu-check.log", "gpu-check.md"]
    md = (tmp_path / "gpu-check.md").read_text()
    gc = load_script()
    for title, _ in gc.SECTIONS.values():
        assert f"## {title}\n\nStatus: **ok**" in md or f"## {title}\n\nStatus: **not built**" in md, title
    assert "6 of 6 sections passed" in md
    assert "torch sees no CUDA device" in md or "compute capability" in md  # the card, or that there is none
    assert "tests/test_engine.py" in md and "SKIPPED" in md  # the cuda tests, collected and skipped here
    assert "| float64 | 540 | 0.00e+00 |" in md  # cpu against cpu: the same tables, bit for bit
    assert "| quiet | 8 | 16 |" in md and "| 1 competing | 8 | 16 |" in md  # both rows of the benchmark
    assert "| train |" in md and "All tables equal within tolerance." in md  # the plan's stages, compared


def test_a_failing_section_fails_the_check_and_says_why(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA: GPU mode must fail there")
    out = check(tmp_path, "--only", "engine_tables", "machine", timeout=300)
    assert out.returncode == 1
    md = (tmp_path / "gpu-check.md").read_text()
    assert "## Engine tables, CPU against the device\n\nStatus: **failed**" in md
    assert "device: cuda was asked for, but torch sees no CUDA device" in md  # never a silent CPU run
    assert "## Machine\n\nStatus: **failed**" in md and "GPU mode, but torch sees no CUDA device" in md
    assert "0 of 2 sections passed" in md


def test_table_comparison_finds_a_value_beyond_tolerance():
    gc = load_script()
    tol = gc.TOLERANCE["float32"]
    a = pd.DataFrame({"run_id": ["r1", "r1", "r2"], "epoch": [0, 1, 1], "value": [0.5, 0.25, np.nan]})
    near = a.assign(value=[0.5 * (1 + tol["rtol"] / 2), 0.25, np.nan])
    far = a.assign(value=[0.5, 0.25 * (1 + 3 * tol["rtol"]), np.nan])
    assert gc.compare_tables(a, near, tol, value="value")[1] == []
    n, bad, worst = gc.compare_tables(a, far, tol, value="value")
    assert n == 3 and bad == ["r1/1"] and worst == pytest.approx(0.75 * tol["rtol"])
    assert gc.compare_tables(a, a.iloc[:2], tol, value="value")[1] == ["r2/1"]  # a row missing on one side
    wide = pd.DataFrame({"run_id": ["r1"], "final_error": [0.1], "device": ["cpu"], "wall_time_s": [1.0]})
    other = wide.assign(device="cuda:0", wall_time_s=0.2)
    assert gc.compare_tables(wide, other, tol)[1] == []  # device and times differ by design
    assert gc.compare_tables(wide, other.assign(run_id="r9"), tol)[1] == ["0:run_id"]
    assert gc.compare_values(gc.flatten({"fit": {"slope": [1.0, None]}}), gc.flatten({"fit": {"slope": [1.0, None]}}),
                             tol)[1] == []
    assert gc.compare_values({"peak": "interior"}, {"peak": "edge"}, tol)[1] == ["peak"]
