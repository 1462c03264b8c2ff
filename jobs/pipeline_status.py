"""Use case: the platform's state for the dashboard's Pipeline page.

Four independent reads, each bounded in time and each answering with a notice rather than an
exception when its backend is away: the lake's freshness per layer, the Airflow DAGs' last
runs, every service's health (the probes ``shoplake services status`` makes, from settings
alone) and the served model's summary. Blocking: the dashboard calls them in worker threads.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from jobs.adapters import kafka_io, trino
from jobs.adapters.airflow_api import AirflowApi
from jobs.adapters.debezium import connect_api
from jobs.adapters.lake import Lake
from jobs.adapters.lake.layout import (
    BRONZE_ORDERS,
    CATEGORY_PERFORMANCE,
    DAILY_SUMMARY,
    DASHBOARD_METRICS,
    REGIONAL_PERFORMANCE,
    REJECTED_ORDERS,
    SILVER_ORDERS,
    Dataset,
)
from jobs.adapters.notify import client as redis_client
from jobs.adapters.reco_api import RecoApi
from jobs.adapters.registry import PRODUCTION
from jobs.adapters.registry.bundle_io import summary_of
from jobs.adapters.rest import Rest, RestError
from jobs.bootstrap import Resources
from jobs.domain.pipeline_view import DagStatus, LayerFreshness, ModelStatus, ServiceHealth
from jobs.errors import ShoplakeError, first_line
from jobs.settings import Settings

PROBE_S = 2.0
LAYERS: tuple[tuple[str, Dataset], ...] = (
    ("bronze", BRONZE_ORDERS),
    ("silver", SILVER_ORDERS),
    ("silver", REJECTED_ORDERS),
    ("gold", DAILY_SUMMARY),
    ("gold", CATEGORY_PERFORMANCE),
    ("gold", REGIONAL_PERFORMANCE),
)
# the dashboard's metrics snapshot: its overall table is written last of the five
DASHBOARD_SNAPSHOT = DASHBOARD_METRICS["overall_metrics"]


# ---------------------------------------------------------------- the lake
def lake_freshness(lake: Lake) -> list[LayerFreshness]:
    """The newest partition of each dataset and when it was written; ShoplakeError when the
    lake cannot be read."""
    out = []
    for layer, ds in LAYERS:
        days = lake.partitions(ds)
        latest = days[-1] if days else None
        written = lake.modified(ds.bucket, ds.key(latest)) if latest else None
        out.append(LayerFreshness(layer, f"{ds.bucket}/{ds.name}", latest, written, len(days)))
    snap = DASHBOARD_SNAPSHOT
    written = lake.modified(snap.bucket, snap.key)
    name = f"{snap.bucket}/{snap.key.rsplit('/', 1)[0]}"
    out.append(LayerFreshness("dashboard", name, None, written, int(written is not None)))
    return out


@dataclass(frozen=True)
class Freshness:
    layers: list[LayerFreshness]
    notice: str | None = None


def freshness(of: Settings | Resources) -> Freshness:
    resources = Resources.of(of)
    try:
        return Freshness(lake_freshness(resources.lake))
    except ShoplakeError as exc:
        return Freshness([], f"Cannot read the lake: {first_line(exc)}")


# ---------------------------------------------------------------- Airflow
@dataclass(frozen=True)
class AirflowStatus:
    url: str
    dags: list[DagStatus]
    notice: str | None = None  # not running, or no login


def airflow(settings: Settings) -> AirflowStatus:
    """The DAGs' latest runs, or why they cannot be shown (not running, no login)."""
    api = AirflowApi(settings)
    try:
        api.health()  # needs no login: tells "not running" from "cannot log in"
    except (ShoplakeError, RestError):
        return AirflowStatus(
            api.url,
            [],
            f"Airflow is not running at {api.url}: start it with"
            " `shoplake services start airflow` (or `shoplake up`) to see the DAG runs.",
        )
    try:
        return AirflowStatus(api.url, api.dags())
    except (ShoplakeError, RestError) as exc:
        return AirflowStatus(api.url, [], f"Airflow at {api.url}: {first_line(exc)}")


# ---------------------------------------------------------------- services
def _postgres(settings: Settings) -> str:
    with psycopg.connect(settings.dsn, connect_timeout=int(PROBE_S)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


def _lake(settings: Settings) -> str:
    lake = Resources.of(settings).lake
    lake.list_keys("gold", "dashboard/")
    return "S3 lake" if settings.lake_is_s3 else f"folder lake {settings.lake_uri}"


def _redis(settings: Settings) -> str:
    client = redis_client(settings.redis_url)
    try:
        client.ping()
    finally:
        client.close()
    return "PONG"


def _airflow(settings: Settings) -> str:
    states = AirflowApi(settings, timeout=PROBE_S).health()
    bad = {k: v for k, v in states.items() if v != "healthy"}
    if bad:
        raise ShoplakeError(", ".join(f"{k} {v}" for k, v in sorted(bad.items())))
    return f"{len(states)} components healthy"


def _api(settings: Settings) -> str:
    body = Rest("API", settings.api_url, timeout=PROBE_S).get("/health")
    if not isinstance(body, dict):
        raise ShoplakeError("no health reply")
    return f"{body.get('status')} · model {body.get('model_version')}"


def _kafka(settings: Settings) -> str:
    if not kafka_io.broker_answers(settings, timeout_s=PROBE_S):
        raise ShoplakeError("no broker answers")
    return "broker answers"


def _connect(settings: Settings) -> str:
    connect_api(settings, timeout=PROBE_S).get("/")
    return "REST answers"


def _flink(settings: Settings) -> str:
    url = f"http://{settings.flink_host}:{settings.flink_port}"
    body = Rest("Flink", url, timeout=PROBE_S).get("/overview")
    running = body.get("jobs-running", 0) if isinstance(body, dict) else 0
    return f"{running} job(s) running"


def _trino(settings: Settings) -> str:
    if not trino.answering(settings, timeout=PROBE_S):
        raise ShoplakeError("not answering")
    return "answers"


Probe = Callable[[Settings], str]


def probes(settings: Settings) -> list[tuple[str, str, Probe]]:
    """(name, where, probe) of every service of the profile, in ``services status`` order,
    plus the recommendation API."""
    found: list[tuple[str, str, Probe]] = [
        ("postgres", f"{settings.pg_host}:{settings.pg_port}", _postgres),
        ("s3", settings.s3_endpoint_url if settings.lake_is_s3 else settings.lake_uri, _lake),
        ("redis", settings.redis_url.rsplit("@", 1)[-1], _redis),
    ]
    if settings.profile == "full":
        found += [
            ("trino", trino.url(settings), _trino),
            ("kafka", settings.kafka_bootstrap_servers, _kafka),
            ("connect", f"{settings.connect_host}:{settings.connect_port}", _connect),
            ("flink", f"{settings.flink_host}:{settings.flink_port}", _flink),
        ]
    found += [
        ("airflow", settings.airflow_url, _airflow),
        ("api", settings.api_url, _api),
    ]
    return found


def _probe(settings: Settings, name: str, where: str, probe: Probe) -> ServiceHealth:
    try:
        return ServiceHealth(name, where, True, probe(settings))
    except RestError as exc:
        return ServiceHealth(name, where, False, f"HTTP {exc.status}")
    except (ShoplakeError, psycopg.Error, OSError) as exc:
        return ServiceHealth(name, where, False, _short(exc))
    except Exception as exc:  # a client library's own error (redis, kafka): still "down"
        return ServiceHealth(name, where, False, _short(exc))


def _short(exc: BaseException) -> str:
    text = first_line(exc)
    if "does not answer" in text or "Connection refused" in text or "refused" in text.lower():
        return "not running (connection refused)"
    return text[:160]


def services(settings: Settings) -> list[ServiceHealth]:
    """Every service probed at once (each within ~``PROBE_S`` seconds)."""
    found = probes(settings)
    with cf.ThreadPoolExecutor(max_workers=len(found), thread_name_prefix="probe") as pool:
        futures = [pool.submit(_probe, settings, *p) for p in found]
        return [f.result() for f in futures]


# ---------------------------------------------------------------- the model
def model(of: Settings | Resources) -> ModelStatus:
    """The API's served model; when the API is away, the registry's production version."""
    resources = Resources.of(of)
    api = RecoApi(resources.settings.api_url)
    try:
        info = api.model()
        return ModelStatus(info.model_version, "the API", info.summary)
    except (ShoplakeError, RestError) as exc:
        why = (
            f"The API at {api.url} has no model loaded"
            if isinstance(exc, RestError) and exc.status == 503
            else f"The recommendation API is not running at {api.url}"
        )
    try:
        registry = resources.registry()
        version = registry.resolve(PRODUCTION)
        meta = registry.meta(PRODUCTION) if version else None
    except (ShoplakeError, OSError, ValueError) as exc:
        return ModelStatus(None, "", None, f"{why}; the registry: {first_line(exc)}")
    if version is None or meta is None:
        return ModelStatus(None, "", None, f"{why}; no production model: run `shoplake train`")
    return ModelStatus(
        version,
        "the registry (production)",
        summary_of(meta),
        f"{why}: showing the registry's production version",
    )
