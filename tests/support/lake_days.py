"""A small real lake for the dashboard's lake pages: a few seeded days through the medallion."""

from __future__ import annotations

import datetime as dt

from jobs import medallion, seed
from jobs.adapters import source_db
from jobs.domain import generator
from jobs.settings import Settings

END = dt.date(2024, 3, 10)  # a fixed past week: the same shop on every run


def seeded_lake(settings: Settings, days: int = 8, orders_per_day: int = 300) -> list[dt.date]:
    """Seed ``days`` days ending ``END`` into the source and run the medallion on each; the days."""
    seed.seed(settings, days=days, orders_per_day=orders_per_day, seed=7, end_date=END)
    first = END - dt.timedelta(days=days - 1)
    medallion.backfill(settings, first, END)
    return [first + dt.timedelta(days=i) for i in range(days)]


def add_day(settings: Settings, day: dt.date, orders: int = 300) -> None:
    """Orders of one more day into the source (the seed's shop), then the medallion on it."""
    model = generator.build_model(7, 500, 60)
    with source_db.session(settings.dsn) as conn:
        # the count is the mean of a weekday-scaled Poisson draw, not exact
        rows = generator.orders_for_day(model, 7, day, orders, now=dt.datetime.now(dt.UTC))
        source_db.copy_in(conn, "orders", rows, skip_existing=True)
        conn.commit()
    medallion.run_date(settings, day)
