"""``shoplake dashboard``: the NiceGUI app serving the live dashboard page."""

from __future__ import annotations

import logging

from nicegui import app, ui

from jobs.bootstrap import Resources
from jobs.settings import Settings
from web import history, quality
from web.alerts_health import AlertsHealth
from web.alerts_page import AlertsPage
from web.customer_page import CustomerPage
from web.feeds import Feeds
from web.loading import REFRESH_S
from web.page import DashboardPage
from web.pipeline_page import PipelinePage
from web.state import LiveState

log = logging.getLogger(__name__)


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8501,
    poll_s: float = 5.0,
    lake_refresh_s: float = REFRESH_S,
) -> None:
    """Serve the dashboard until interrupted (one shared state, one page per tab);
    the lake pages read the lake again every ``lake_refresh_s`` seconds."""
    state = LiveState()
    resources = Resources(settings)
    feeds = Feeds(resources, state, poll_s=poll_s)
    app.on_startup(feeds.start)
    app.on_shutdown(feeds.close)
    alerts = AlertsHealth(settings.dsn)
    app.on_startup(alerts.start)
    app.on_shutdown(alerts.close)

    @ui.page("/")
    def index() -> None:
        DashboardPage(state, alerts)

    @ui.page(history.PATH)
    def history_page() -> None:
        history.HistoryPage(resources.lake, lake_refresh_s)

    @ui.page(quality.PATH)
    def quality_page() -> None:
        quality.QualityPage(resources.lake, lake_refresh_s)

    @ui.page("/alerts")
    def alerts_page() -> None:
        AlertsPage(settings.dsn)

    @ui.page("/customer")
    def customer_page() -> None:
        CustomerPage(settings.dsn, settings.api_url)

    @ui.page("/pipeline")
    def pipeline_page() -> None:
        PipelinePage(settings)

    @app.get("/health")
    def health() -> dict[str, object]:
        view = state.view()
        return {"status": "ok", "mode": view.mode, "version": view.version}

    log.info("dashboard on http://%s:%s", host, port)
    ui.run(
        host=host,
        port=port,
        title="shoplake dashboard",
        reload=False,
        show=False,
        show_welcome_message=False,
        uvicorn_logging_level="warning",
        dark=False,
        reconnect_timeout=10.0,
    )
