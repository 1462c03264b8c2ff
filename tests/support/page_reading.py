"""Read what a live dashboard page shows in one JavaScript call.

The pages re-render their tables while a test looks at them (every few seconds); reading
element by element through WebDriver can then hit an element that was just replaced
(StaleElementReferenceException). One script reads a consistent snapshot instead.
"""

from __future__ import annotations

from typing import Any


def texts(driver: Any, css: str) -> list[str]:
    """The visible text of every element matching ``css``, in document order."""
    found = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText.trim())",
        css,
    )
    return [str(t) for t in found]


def attributes(driver: Any, css: str, name: str) -> list[str]:
    """The attribute ``name`` of every element matching ``css``, in document order."""
    found = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]),"
        " e => e.getAttribute(arguments[1]) || '')",
        css,
        name,
    )
    return [str(t) for t in found]


def text(driver: Any, css: str) -> str:
    """The text of the first element matching ``css`` ('' when there is none)."""
    found = texts(driver, css)
    return found[0] if found else ""
