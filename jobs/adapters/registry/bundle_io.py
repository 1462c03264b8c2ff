"""A model bundle on disk in safe formats only: npz (no pickle), Parquet and JSON."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from jobs.domain.reco_summary import ModelSummary
from jobs.domain.recommender import InvalidBundle, ModelBundle, check_bundle
from jobs.errors import first_line

T = TypeVar("T")
# what reading a damaged file raises (ArrowInvalid and JSONDecodeError are ValueErrors)
DAMAGED = (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile)  # pydantic too

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
    meta: dict[str, Any] = {"format": FORMAT, "metrics": bundle.metrics, "info": bundle.info}
    if bundle.summary is not None:
        meta["summary"] = bundle.summary.model_dump(mode="json")
    return meta


def summary_of(meta: dict[str, Any]) -> ModelSummary | None:
    """The typed summary stored in a version's metadata (None for versions before it)."""
    raw = meta.get("summary")
    return None if raw is None else ModelSummary.model_validate(raw)


def read_meta(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / META).read_text()))


def read_bundle(folder: Path) -> ModelBundle:
    """Read and check a bundle written by ``write_bundle``; ``InvalidBundle`` when damaged.

    Pickled arrays are refused by ``np.load``; a missing, truncated or inconsistent file,
    an unknown format or a NaN factor raises ``InvalidBundle`` naming what is wrong.
    """
    meta = _read(folder, META, read_meta)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InvalidBundle(f"{META}: unsupported model format {meta.get('format')!r}")
    user, item, pop = _read(folder, FACTORS, _factors)
    customers = _read(folder, CUSTOMERS, pq.read_table)
    products = _read(folder, PRODUCTS, pq.read_table)
    bundle = ModelBundle(
        user_factors=user,
        item_factors=item,
        customer_ids=_read(folder, CUSTOMERS, lambda _: _strings(customers, "customer_id")),
        product_ids=_read(folder, PRODUCTS, lambda _: _strings(products, "product_id")),
        product_names=_read(folder, PRODUCTS, lambda _: _strings(products, "product_name")),
        categories=_read(folder, PRODUCTS, lambda _: _strings(products, "category")),
        popularity=pop,
        bought=_read(folder, BOUGHT, lambda p: sp.load_npz(p).tocsr()),
        metrics=_read(folder, META, lambda _: dict(meta.get("metrics") or {})),
        info=_read(folder, META, lambda _: dict(meta.get("info") or {})),
        summary=_read(folder, META, lambda _: summary_of(meta)),
    )
    check_bundle(bundle)
    return bundle


def _read(folder: Path, name: str, reader: Callable[[Path], T]) -> T:
    """``reader(folder / name)``, a damaged file becoming ``InvalidBundle`` that names it."""
    try:
        return reader(folder if name == META else folder / name)
    except DAMAGED as exc:
        raise InvalidBundle(f"{name}: {type(exc).__name__}: {first_line(exc)}") from None


def _factors(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return npz["user_factors"], npz["item_factors"], npz["popularity"]


def _strings(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).fill_null("").to_pylist(), dtype=object)
