"""The seeded shop in real time: who orders what, when, and how each order moves on.

``LiveShop`` places orders in a window of time with the generator's model (its hour
and weekday rhythm at a daily volume, its customers, products and defects) and plans
each new order's status changes (``lifecycle``); the caller owns the clock and the
storage. At ``speed`` 1 a day places what ``orders_for_day`` would seed for that day on
average, so today compares with the seeded yesterday; ``speed`` 10 places ten times as
many orders with the same rhythm. Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.domain import generator, lifecycle
from jobs.domain.generator_catalog import STATUSES


def as_new(table: pa.Table) -> pa.Table:
    """Generated orders as just placed: ``pending`` (empty-status defects kept), never updated."""
    status = table["status"]
    placed = pc.if_else(pc.is_in(status, pa.array(STATUSES)), "pending", status)
    table = table.set_column(table.schema.get_field_index("status"), "status", placed)
    return table.set_column(
        table.schema.get_field_index("updated_at"), "updated_at", table["created_at"]
    )


def written_at(table: pa.Table, now: dt.datetime) -> pa.Table:
    """The rows as written at ``now``: ``created_at`` is the write, after the order itself
    (seeded rows have ``created_at == order_date``; this tells live orders from them)."""
    at = pa.array([now] * table.num_rows, type=generator.TS_UTC)
    return table.set_column(table.schema.get_field_index("created_at"), "created_at", at)


class LiveShop:
    """Orders placed in ``[since, now)`` and the status changes due by ``now``."""

    def __init__(
        self,
        model: generator.ShopModel,
        orders_per_day: float,
        rng: np.random.Generator,
        *,
        tz: str = "UTC",
        speed: float = 1.0,
    ) -> None:
        if not orders_per_day > 0 or not speed > 0:
            raise ValueError("orders_per_day and speed must be above 0")
        self.model = model
        self.orders_per_day = orders_per_day
        self.rng = rng
        self.tz = tz
        self.speed = speed
        self.schedule = lifecycle.Schedule()

    def expected(self, since: dt.datetime, now: dt.datetime) -> float:
        """The mean number of orders the shop places in ``[since, now)``."""
        return self.speed * generator.expected_orders(self.orders_per_day, since, now, self.tz)

    def place(self, since: dt.datetime, now: dt.datetime, first_seq: int = 1) -> pa.Table:
        """A Poisson number of new ``pending`` orders in ``[since, now)``, their plans kept.

        Their ids continue the local day's sequence from ``first_seq``; the window must
        lie within one local day (the ids carry the day).
        """
        n = int(self.rng.poisson(self.expected(since, now))) if now > since else 0
        if n == 0:
            return generator.ORDERS_SCHEMA.empty_table()
        rows = as_new(
            generator.generate_orders(
                self.model, since, now, n, self.rng, tz=self.tz, first_seq=first_seq, as_of=now
            )
        )
        self.watch(rows)
        return written_at(rows, now)

    def watch(self, rows: pa.Table) -> None:
        """Plan the status changes of these orders (those still ``pending``)."""
        rows = rows.filter(pc.fill_null(pc.equal(rows["status"], "pending"), False))
        placed = rows["order_date"].cast(pa.int64()).to_numpy()
        self.schedule.add(lifecycle.plan(rows["order_id"].to_pylist(), placed))

    def due(self, now: dt.datetime) -> list[lifecycle.Step]:
        """The planned status changes whose time has come, in time order."""
        return self.schedule.due(generator.to_us(now))


def advance(statuses: dict[str, str | None], steps: list[lifecycle.Step]) -> int:
    """Apply ``steps`` to an id -> status map as the database does (only from ``src``)."""
    moved = 0
    for step in steps:
        if statuses.get(step.order_id) == step.src:
            statuses[step.order_id] = step.dst
            moved += 1
    return moved
