"""Errors a user can cause or fix: the CLI prints them as one line and exits non-zero."""


class ShoplakeError(Exception):
    """A problem the user can act on (bad input, a service down, wrong credentials)."""

    exit_code = 1


class UsageError(ShoplakeError):
    """Bad input on the command line (a malformed date, an unknown name)."""

    exit_code = 2


class ServiceUnavailable(ShoplakeError):
    """A service (PostgreSQL, S3, Redis...) cannot be reached or refuses us."""

    exit_code = 3
