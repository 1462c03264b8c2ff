"""Submit the alert job to a Flink cluster: run inside PyFlink's own venv, not shoplake's.

Usage: ``<pyflink venv>/bin/python alert_job.py SPEC.json``. The spec (written by
``jobs.alerts.flink_job``) holds the Flink configuration, the DDL statements and the INSERT,
already compiled from the rules in shoplake's venv: this program imports only the standard
library and pyflink, since the PyFlink venv has none of shoplake's dependencies. It prints
``{"job_id": ...}`` and exits; the job keeps running on the cluster.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def submit(spec: dict) -> str:
    """Run the DDL, submit the INSERT and return the Flink job id (no waiting for the job)."""
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    config = Configuration()
    for key, value in spec["config"].items():
        config.set_string(key, str(value))
    settings = (
        EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(config).build()
    )
    t_env = TableEnvironment.create(settings)
    for statement in spec["statements"]:
        t_env.execute_sql(statement)
    result = t_env.execute_sql(spec["insert"])
    client = result.get_job_client()
    if client is None:
        raise RuntimeError("Flink accepted the INSERT but returned no job client")
    return str(client.get_job_id())


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: alert_job.py SPEC.json\n")
        return 2
    spec = json.loads(Path(argv[1]).read_text())
    job_id = submit(spec)
    sys.stdout.write(json.dumps({"job_id": job_id}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
