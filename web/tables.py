"""Table building blocks the pages share: column specs, a body slot that tags every row and
cell with a ``data-testid`` (what the browser tests read), and the plain dense table."""

from __future__ import annotations

from typing import Any

from nicegui import ui


def column(name: str, label: str, align: str = "left", **extra: Any) -> dict[str, Any]:
    """One Quasar column whose field is its name."""
    return {"name": name, "label": label, "field": name, "align": align, **extra}


def row_slot(prefix: str, key: str, cell_class: str = "", row_attrs: str = "") -> str:
    """A body slot: row ``<prefix>-<row[key]>``, cells ``<prefix>-<column>``."""
    cls = f' class="{cell_class}"' if cell_class else ""
    attrs = f" {row_attrs}" if row_attrs else ""
    return (
        f'<q-tr :props="props" :data-testid="\'{prefix}-\' + props.row.{key}"{attrs}>\n'
        '  <q-td v-for="col in props.cols" :key="col.name" :props="props"\n'
        f"        :data-testid=\"'{prefix}-' + col.name\"{cls}>{{{{ col.value }}}}</q-td>\n"
        "</q-tr>\n"
    )


def dense_table(columns: list[dict[str, Any]], slot: str, testid: str, key: str) -> ui.table:
    """A flat, dense, unpaginated table with ``slot`` as its body."""
    table = (
        ui.table(columns=columns, rows=[], row_key=key, pagination=0)
        .props(f'flat dense hide-bottom data-testid="{testid}"')
        .classes("w-full")
    )
    table.add_slot("body", slot)
    return table
