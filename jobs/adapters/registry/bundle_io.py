"""A model bundle on disk in safe formats only: npz (no pickle), Parquet and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from jobs.domain.recommender import ModelBundle

FORMAT = 1
FACTORS, BOUGHT, CUSTOMERS, PRODUCTS, META = (
    "factors.npz",
    "bought.npz",
    "customers.parquet",
    "products.parquet",
    "meta.json",
)
FILES = (FACTORS, BOUGHT, CUSTOMERS, PRODUCTS, META)


def write_bundle(bundle: ModelBundle, folder: Path) -> None:
    """Write every file of ``bundle`` into ``folder`` (which must exist)."""
    np.savez(
        folder / FACTORS,
        user_factors=bundle.user_factors,
        item_factors=bundle.item_factors,
        popularity=bundle.popularity,
    )
    sp.save_npz(folder / BOUGHT, bundle.bought.tocsr(), compressed=True)
    pq.write_table(
        pa.table({"customer_id": pa.array(bundle.customer_ids, pa.string())}), folder / CUSTOMERS
    )
    pq.write_table(
        pa.table(
            {
                "product_id": pa.array(bundle.product_ids, pa.string()),
                "product_name": pa.array(bundle.product_names, pa.string()),
                "category": pa.array(bundle.categories, pa.string()),
            }
        ),
        folder / PRODUCTS,
    )
    (folder / META).write_text(json.dumps(meta_of(bundle), indent=2, default=str))


def meta_of(bundle: ModelBundle) -> dict[str, Any]:
    """The JSON metadata stored beside the arrays (metrics, parameters, data window)."""
    return {"format": FORMAT, "metrics": bundle.metrics, "info": bundle.info}


def read_meta(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / META).read_text()))


def read_bundle(folder: Path) -> ModelBundle:
    """Read a bundle written by ``write_bundle``; pickled arrays are refused by ``np.load``."""
    meta = read_meta(folder)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{folder}: unsupported model format {meta.get('format')!r}")
    with np.load(folder / FACTORS, allow_pickle=False) as npz:
        user, item, pop = npz["user_factors"], npz["item_factors"], npz["popularity"]
    customers = pq.read_table(folder / CUSTOMERS)
    products = pq.read_table(folder / PRODUCTS)
    return ModelBundle(
        user_factors=user,
        item_factors=item,
        customer_ids=_strings(customers, "customer_id"),
        product_ids=_strings(products, "product_id"),
        product_names=_strings(products, "product_name"),
        categories=_strings(products, "category"),
        popularity=pop,
        bought=sp.load_npz(folder / BOUGHT).tocsr(),
        metrics=dict(meta.get("metrics", {})),
        info=dict(meta.get("info", {})),
    )


def _strings(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).fill_null("").to_pylist(), dtype=object)
