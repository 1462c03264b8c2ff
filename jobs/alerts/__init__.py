"""Streaming alerts: order changes -> rules -> a durable ledger -> sinks, each alert once.

Two engines (``Engine``) share everything but where the alerts come from:

- ``python``: shoplake's own process reads PostgreSQL's logical slot and evaluates the rules
  (``sources.pg_slot``);
- ``flink``: a Flink SQL job evaluates them (``flink_job`` submits it) and shoplake delivers
  what it writes to the alerts topic (``sources.flink_topic``).

The map: ``model`` (batches, set-aside records, the errors the loop acts on), ``engine`` (the
one reconnecting loop: poll -> evaluate -> record -> confirm), ``delivery`` (one worker per
sink: claim -> send -> finish), ``sources/`` and ``ledger/`` (each a port with a PostgreSQL
or Kafka adapter and an in-memory one for tests), ``sinks/`` and ``engines`` (the factories
that put them together).
"""

from __future__ import annotations

from enum import StrEnum


class Engine(StrEnum):
    """Where the rules are evaluated."""

    PYTHON = "python"  # in shoplake's process, from PostgreSQL's slot
    FLINK = "flink"  # by Flink SQL; shoplake delivers what the job writes to the alerts topic

    @classmethod
    def _missing_(cls, value: object) -> Engine | None:
        return cls.PYTHON if value == "lite" else None  # the name it had before
