"""Which component of ``airflow standalone`` a child process is, from its command line
(the lines are the ones ``ps`` showed for Airflow 3.3.2's standalone)."""

from __future__ import annotations

import pytest

from lite.services.airflow.service import _process_name

VENV = "/root/.cache/shoplake/airflow-3.3.2-x/bin"


@pytest.mark.parametrize(
    ("cmdline", "name"),
    [
        ([f"{VENV}/python", f"{VENV}/airflow", "scheduler"], "scheduler"),
        ([f"{VENV}/python", f"{VENV}/airflow", "dag-processor"], "dag-processor"),
        ([f"{VENV}/python", f"{VENV}/airflow", "triggerer"], "triggerer"),
        ([f"{VENV}/python", f"{VENV}/airflow", "api-server"], "api-server"),
        # the API server retitles itself once it runs
        (["airflow api_server -- host:127.0.0.1 port:58180", "", "", ""], "api-server"),
        # the scheduler's children and the log servers are not components
        (["airflow serve-logs", "", "", ""], None),
        (["airflow worker -- LocalExecutor: <idle>", "", "", ""], None),
        ([], None),
    ],
)
def test_names_the_component(cmdline: list[str], name: str | None) -> None:
    assert _process_name(cmdline) == name
