"""Airflow as a native service: the service (``service``), the environment it runs in
(``config``), its own pinned venv (``venv``) and the start-up hook loaded inside that venv
(``site``).

Empty on purpose: ``site`` is imported at every interpreter start of Airflow's venv, so the
package it lives in must not import anything.
"""
