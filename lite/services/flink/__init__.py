"""Flink as a native service: the JobManager and TaskManager and the job runtime
(``service``), and PyFlink's own pinned venv they run from (``venv``)."""
