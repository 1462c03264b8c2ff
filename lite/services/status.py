"""The status line of one native service."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServiceStatus:
    """What one service is doing, as ``shoplake services status`` shows it."""

    name: str
    running: bool
    pid: int | None
    url: str
    detail: str = ""

    def line(self) -> str:
        state = "running" if self.running else "stopped"
        pid = f"pid {self.pid}" if self.pid else "-"
        extra = f"  ({self.detail})" if self.detail else ""
        return f"{self.name:<9} {state:<8} {pid:<11} {self.url}{extra}"
