"""The one-line error text every adapter quotes."""

from __future__ import annotations

from jobs.errors import first_line


def test_first_line_skips_blank_lines_and_strips() -> None:
    assert first_line(RuntimeError("\n  boom: disk full  \n  at line 3\n")) == "boom: disk full"
    assert first_line("Query failed\nplan...") == "Query failed"


def test_first_line_of_nothing_says_what_it_can() -> None:
    assert first_line(RuntimeError()) == "RuntimeError"
    assert first_line("") == "unknown error" and first_line(None) == "unknown error"
