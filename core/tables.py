"""Markdown tables: the one writer of them (the bench's tables, the report's summary.md, the
results table of `reproduce`), through pandas' `DataFrame.to_markdown` (tabulate).

    markdown(df, {"batch": "batch", "ms": "ms / step"}, {"ms": ".1f"})
    | batch | ms / step |
    |------:|----------:|
    |     1 |      12.3 |
"""

from __future__ import annotations

import pandas as pd
from pandas.api.types import is_numeric_dtype


def markdown(df: pd.DataFrame, columns: dict[str, str] | None = None,
             formats: dict[str, str] | None = None, missing: str = "") -> str:
    """`columns` of `df` (name -> header; default: all, as named) with cells formatted per column
    (`formats`: name -> format spec) and empty values shown as `missing`; numeric columns are
    right-aligned, others left-aligned."""
    columns = columns or {c: str(c) for c in df.columns}
    formats = formats or {}
    present = [c for c in columns if c in df.columns]

    def cell(value: object, spec: str) -> str:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return missing
        return format(value, spec).replace("|", "\\|")

    shown = pd.DataFrame({columns[c]: [cell(v, formats.get(c, "")) for v in df[c]] for c in present})
    align = ["right" if is_numeric_dtype(df[c]) else "left" for c in present]
    if shown.empty:  # tabulate draws no header for an empty frame
        return "| " + " | ".join(columns[c] for c in present) + " |\n|" + "|".join(
            "---:" if a == "right" else "---" for a in align) + "|"
    return shown.to_markdown(index=False, disable_numparse=True, colalign=align)
