"""mathdl.integrity: damaged results are recognised by their format's own markers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mathdl import integrity, io


def _truncate(path, keep: float = 0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_finished_files_pass_and_truncated_ones_are_named(tmp_path):
    io.write_table(pd.DataFrame({"a": [1.0, 2.0]}), tmp_path / "t.parquet")
    io.write_json({"a": 1}, tmp_path / "s.json")
    np.savez(tmp_path / "d.npz", x=np.arange(1000))
    (tmp_path / "p.pdf").write_bytes(b"%PDF-1.5\n" + b"x" * 2000 + b"\n%%EOF\n")
    files = ["t.parquet", "s.json", "d.npz", "p.pdf"]
    assert [integrity.damage(tmp_path / f) for f in files] == [None] * 4
    assert integrity.damage(tmp_path / "absent.parquet") is None  # missing: Snakemake's business
    for f in files:
        _truncate(tmp_path / f)
    assert all(integrity.damage(tmp_path / f) for f in files)
    removed = integrity.heal(tmp_path / f for f in files)
    assert len(removed) == 4 and not any((tmp_path / f).exists() for f in files)


def test_a_folder_output_is_damaged_when_a_file_is_missing_or_changed(tmp_path):
    folder = tmp_path / "figures"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(b"%PDF-1.5 a")
    (folder / "b.png").write_bytes(b"png")
    assert integrity.damage(folder) == "no readable manifest (an unfinished or older folder)"
    integrity.write_manifest(folder)
    assert integrity.damage(folder) is None
    (folder / "b.png").write_bytes(b"pn")
    assert integrity.damage(folder) == "b.png has 2 bytes, not 3"
    (folder / "b.png").write_bytes(b"png")
    (folder / "a.pdf").unlink()
    assert integrity.damage(folder) == "a.pdf is missing"
    assert integrity.heal([folder]) and not folder.exists()
