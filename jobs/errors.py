"""Errors a user can cause or fix: the CLI prints them as one line and exits non-zero."""


def first_line(error: BaseException | str | None) -> str:
    """The first non-blank line of an error (or its text): what a one-line message quotes.

    Engines' errors often carry a stack or a query plan after the first line. An exception
    with no text gives its type's name; empty text gives "unknown error".
    """
    text = error if isinstance(error, str | None) else str(error)
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    if lines:
        return lines[0]
    return "unknown error" if isinstance(error, str | None) else type(error).__name__


class ShoplakeError(Exception):
    """A problem the user can act on (bad input, a service down, wrong credentials)."""

    exit_code = 1


class UsageError(ShoplakeError):
    """Bad input on the command line (a malformed date, an unknown name)."""

    exit_code = 2


class ServiceUnavailable(ShoplakeError):
    """A service (PostgreSQL, S3, Redis...) cannot be reached or refuses us."""

    exit_code = 3
