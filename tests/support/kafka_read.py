"""Reading a topic until the messages a test waits for have arrived."""

from __future__ import annotations

from collections.abc import Callable

from kafka import KafkaConsumer

from jobs.adapters.kafka_io import Message
from jobs.waiting import wait_for


def wait_for_messages(
    client: KafkaConsumer,
    done: Callable[[list[Message]], bool],
    timeout_s: float = 30.0,
    what: str = "messages",
) -> list[Message]:
    """Poll ``client`` until ``done(messages so far)``; TimeoutError after ``timeout_s``."""
    got: list[Message] = []

    def arrived() -> bool:
        if done(got):
            return True
        # a poll returns as soon as records are there: it is the wait, so no sleep between
        for records in client.poll(timeout_ms=1000).values():
            got.extend(records)
        return done(got)

    wait_for(
        arrived,
        timeout=timeout_s,
        every=0,
        what=what,
        error=lambda message: TimeoutError(f"{message} ({len(got)} read)"),
    )
    return got
