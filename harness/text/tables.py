"""Plain-text tables: a number as a table cell, and rows as aligned columns."""
from __future__ import annotations

import math
from typing import Sequence

from harness.text.terminal import paint


def fmt_number(value, spec: str = ".2f", none: str = "-", infinity: str = "inf") -> str:
    """`value` formatted with `spec`; `none` for a missing or non-numeric value (bools included),
    "nan" for NaN, `infinity` (with a leading "-" when negative) for an infinite one."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return none
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return infinity if value > 0 else "-" + infinity
    return format(value, spec)


def fmt_pct(value, decimals: int = 3, none: str = "-") -> str:
    """A share in % with `decimals` decimals, never rounded up to 100 when below it (99.99996 is
    "99.99996", not "100.000"): a cell that reads 100 % means identical."""
    text = fmt_number(value, f".{decimals}f", none)
    while text == format(100, f".{decimals}f") and value < 100 and decimals < 12:
        decimals += 1
        text = format(value, f".{decimals}f")
    return text


def grid(rows: list[tuple], colour: bool = False, verdict_col: int | None = None) -> list[str]:
    """Rows as aligned text columns under a dashed rule; the verdict column coloured with `colour`."""
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        cells = [str(v).ljust(w) for v, w in zip(row, widths)]
        if colour and k and verdict_col is not None:
            word = str(row[verdict_col])
            cells[verdict_col] = paint(word, True) + " " * (widths[verdict_col] - len(word))
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def frame_list(frames: Sequence[int]) -> str:
    """Frame numbers as ranges: [1, 2, 3, 7] -> "1-3, 7"."""
    out, run = [], []
    for f in sorted(frames):
        if run and f == run[-1] + 1:
            run.append(f)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [f]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)
