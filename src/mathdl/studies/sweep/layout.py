"""Which varied key goes where in the sweep's figures: never a silent average over a varied key.

A figure draws one line per combination of the keys on its channels (colour, marker, facet
column, facet row) against the key on its horizontal axis, and averages only over seeds. So
every varied key must be on some channel, or be fixed by the keys that are: a key that varies
together with another one (a zipped pair such as depth and width at a fixed parameter count,
or explicit cases) is one *block* and shares its channel.

The plan may name the channels (``plot.hue``, ``plot.style``, ``plot.col``, ``plot.row``);
the others are filled in sweep order: the second block to colour, the third to facet columns,
the fourth to facet rows, the fifth to markers. Blocks beyond those join the colour, whose
labels then name a combination of keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

CHANNELS = ("hue", "col", "row", "style")  # the order in which blocks without a configured channel are placed


@dataclass(frozen=True)
class Layout:
    """The keys on each channel of one figure (each a tuple of keys; () = channel unused)."""

    x: str  # the key on the horizontal axis ("" for a sweep without keys)
    along_x: tuple[str, ...] = ()  # keys that vary together with x (named in the axis label)
    hue: tuple[str, ...] = ()
    style: tuple[str, ...] = ()
    col: tuple[str, ...] = ()
    row: tuple[str, ...] = ()
    fixed: tuple[str, ...] = field(default=())  # swept keys with a single value (on no channel)

    def channels(self) -> dict[str, tuple[str, ...]]:
        return {c: getattr(self, c) for c in ("hue", "style", "col", "row") if getattr(self, c)}

    def keys(self) -> list[str]:
        """Every key placed: on the axis, along it, or on a channel."""
        placed = [self.x] if self.x else []
        return placed + list(self.along_x) + [k for keys in self.channels().values() for k in keys]


def varied(points: pd.DataFrame, keys: list[str]) -> list[str]:
    """The keys (in the given order) that take more than one value over the points."""
    return [k for k in keys if points[k].nunique(dropna=False) > 1]


def blocks(points: pd.DataFrame, keys: list[str]) -> list[tuple[str, ...]]:
    """The keys grouped into blocks of keys that vary together: within a block each key's value
    fixes every other's (a one-to-one correspondence over the points). In sweep order."""
    out: list[list[str]] = []
    for key in keys:
        for block in out:
            if _one_to_one(points, block[0], key):
                block.append(key)
                break
        else:
            out.append([key])
    return [tuple(b) for b in out]


def _one_to_one(points: pd.DataFrame, a: str, b: str) -> bool:
    pairs = points[[a, b]].astype(str).drop_duplicates()
    return pairs[a].is_unique and pairs[b].is_unique


def choose(points: pd.DataFrame, keys: list[str], x: str, configured: dict[str, str]) -> Layout:
    """The layout of the error-against-x figure for the distinct sweep ``points`` (one row each).

    ``configured`` maps channels to the plan's keys ("" = choose)."""
    moving = varied(points, keys)
    fixed = tuple(k for k in keys if k not in moving)
    if not x:
        return Layout(x="", fixed=fixed)
    groups = blocks(points, moving)
    placed: dict[str, list[str]] = {c: [] for c in CHANNELS}
    along = []
    taken = {x}
    for channel in CHANNELS:  # the plan's choices first, each with the keys that vary with it
        key = configured.get(channel, "")
        if key and key in moving:
            block = next(b for b in groups if key in b)
            placed[channel] = [key] + [k for k in block if k != key and k not in taken and k not in configured.values()]
            taken.update(placed[channel])
    for block in groups:
        if x in block:
            along = [k for k in block if k not in taken]
            taken.update(along)
    for block in groups:
        rest = [k for k in block if k not in taken]
        if not rest:
            continue
        free = next((c for c in CHANNELS if not placed[c]), None)
        placed[free or "hue"] += rest  # no channel left: the colour names a combination
        taken.update(rest)
    return Layout(x=x, along_x=tuple(along), fixed=fixed, **{c: tuple(v) for c, v in placed.items()})


def for_curves(layout: Layout) -> Layout:
    """The learning curves' layout: epochs on the axis, the error figure's x (and the keys along
    it) as colour; its facets stay; its colour and markers move to free facets, then markers."""
    if not layout.x:
        return layout
    placed = {"hue": [layout.x, *layout.along_x], "col": list(layout.col), "row": list(layout.row), "style": []}
    for keys in (layout.hue, layout.style):
        if keys:
            free = next((c for c in ("col", "row", "style") if not placed[c]), "hue")
            placed[free] += list(keys)
    return Layout(x="epoch", fixed=layout.fixed, **{c: tuple(v) for c, v in placed.items()})
