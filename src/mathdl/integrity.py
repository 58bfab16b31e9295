"""Damaged results are rebuilt: a cheap check of every result file before a run.

Snakemake reruns a job whose output is missing, but it cannot tell a truncated or corrupted
file from a finished one, and a folder output (figures, generated LaTeX) missing one file
looks complete. Before each run the workflow checks every result of the plan that exists,
by its format's own markers (no full read), and removes the damaged ones; the plan's target
asks for every result, so the next jobs rebuild exactly those and what depends on them.

- Parquet: starts and ends with ``PAR1``.
- ``.npz`` (data): a readable zip directory.
- JSON: parses.
- PDF: starts with ``%PDF`` and ends with ``%%EOF``.
- A folder output: its ``.manifest.json`` (written last) lists every file with its size.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Iterable

MANIFEST = ".manifest.json"


def write_manifest(folder: str | Path) -> None:
    """Record every file of a finished folder output with its size (call it last)."""
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*"))
             if p.is_file() and p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps(files, indent=1, sort_keys=True) + "\n")


def _folder_damage(folder: Path) -> str | None:
    try:
        files = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return "no readable manifest (an unfinished or older folder)"
    for name, size in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, not {size}"
    return None


def _file_damage(path: Path) -> str | None:
    suffix = path.suffix
    try:
        size = path.stat().st_size
        if suffix == ".parquet":
            with open(path, "rb") as fh:
                head = fh.read(4)
                fh.seek(max(size - 4, 0))
                tail = fh.read(4)
            return None if size >= 12 and head == tail == b"PAR1" else "not a complete Parquet file"
        if suffix == ".npz":
            with zipfile.ZipFile(path) as zf:
                zf.namelist()
            return None
        if suffix == ".json":
            json.loads(path.read_text())
            return None
        if suffix == ".pdf":
            with open(path, "rb") as fh:
                head = fh.read(5)
                fh.seek(max(size - 1024, 0))
                tail = fh.read()
            return None if head == b"%PDF-" and b"%%EOF" in tail else "not a complete PDF"
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        return f"unreadable ({type(err).__name__})"
    return None


def damage(path: str | Path) -> str | None:
    """Why an existing result is damaged, or None when it looks finished (or does not exist)."""
    path = Path(path)
    if path.is_dir():
        return _folder_damage(path)
    if path.is_file():
        return _file_damage(path)
    return None


def heal(paths: Iterable[str | Path]) -> list[str]:
    """Remove the damaged ones of ``paths`` (result files and folder outputs); say which and why."""
    removed = []
    for path in map(Path, paths):
        why = damage(path)
        if why is None:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(f"{path} ({why})")
    return removed
