"""Tables from the rows ``Jupyter.table`` (and ``%display tables on``) send: HTML and text; pure.

Swift reads the rows with Mirror, one column per stored property, and sends at most the first and
last few of a long collection with the count (``swift/display.swift``), so a table's message stays
small whatever the collection's size.
"""

from __future__ import annotations

import html
from typing import Any


class TableError(ValueError):
    """Table data the kernel cannot show; the text says why."""


def _note(total: int, shown: int, gap: int | None, omitted_columns: int) -> str:
    parts = []
    if gap is not None:
        parts.append(f"{total:,} rows, the first {gap} and the last {shown - gap} shown")
    if omitted_columns:
        parts.append(f"{omitted_columns} more columns not shown")
    return "; ".join(parts)


def table_bundle(fields: Any) -> dict[str, Any]:
    """Return the MIME bundle (text/html, text/plain) of the table data Swift sends; raise TableError."""
    if not isinstance(fields, dict):
        raise TableError("expected an object")
    columns, rows = fields.get("columns"), fields.get("rows")
    if not isinstance(columns, list) or not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise TableError("expected columns and rows")
    names = [str(name) for name in columns]
    cells = [[("" if cell is None else str(cell)) for cell in row] + [""] * (len(names) - len(row)) for row in rows]
    gap = fields.get("gap")
    gap = gap if isinstance(gap, int) and 0 <= gap <= len(cells) else None
    total = fields.get("total", len(cells))
    omitted_columns = fields.get("omittedColumns", 0)
    note = _note(int(total), len(cells), gap, int(omitted_columns))

    html_rows = []
    for index, row in enumerate(cells):
        if index == gap:
            html_rows.append("<tr>" + "<td>…</td>" * len(names) + "</tr>")
        html_rows.append("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row[: len(names)]) + "</tr>")
    head = "".join(f"<th>{html.escape(name)}</th>" for name in names)
    page = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(html_rows)}</tbody></table>"
    if note:
        page += f"<p><em>{html.escape(note)}</em></p>"

    widths = [max([len(name)] + [len(row[i]) for row in cells]) for i, name in enumerate(names)]

    def line(values: list[str]) -> str:
        return "  ".join(value.ljust(width) for value, width in zip(values, widths, strict=False)).rstrip()

    lines = [line(names), line(["-" * width for width in widths])]
    for index, row in enumerate(cells):
        if index == gap:
            lines.append(line(["…"] * len(names)))
        lines.append(line(row))
    if note:
        lines.append(f"({note})")
    return {"text/html": page, "text/plain": "\n".join(lines)}
