"""The frame every dashboard page shares: the title bar with navigation between the pages.

A page is added by appending ``(path, title, testid)`` to ``PAGES`` and registering its
``@ui.page(path)`` in ``web.app``; the header marks the current one. The row wraps, so the
navigation stays usable at a laptop's width.
"""

from __future__ import annotations

from nicegui import ui

PAGES: list[tuple[str, str, str]] = [  # (path, title, data-testid suffix)
    ("/", "Today", "today"),
    ("/history", "History", "history"),
    ("/quality", "Data quality", "quality"),
    ("/pipeline", "Pipeline", "pipeline"),
    ("/alerts", "Alerts", "alerts"),
    ("/customer", "Customer", "customer"),
]


def header(current: str, subtitle: ui.label | None = None) -> ui.row:
    """The shared title bar; returns its right-hand row for the page's own status widgets."""
    ui.query("body").classes("bg-slate-50")
    with ui.row().classes("w-full items-center justify-between px-2 flex-wrap gap-2"):
        with ui.row().classes("items-center gap-4 flex-wrap"):
            ui.label("shoplake").classes("text-2xl font-semibold text-slate-800")
            with ui.row().classes("items-center gap-1 flex-wrap").props('data-testid="nav"'):
                for path, title, testid in PAGES:
                    active = path == current
                    link = ui.link(title, path).props(f'data-testid="nav-{testid}"')
                    link.classes(
                        "px-3 py-1 rounded text-sm no-underline "
                        + (
                            "bg-slate-800 text-white"
                            if active
                            else "text-slate-700 hover:bg-slate-200"
                        )
                    )
        right = ui.row().classes("items-center gap-3")
    return right
