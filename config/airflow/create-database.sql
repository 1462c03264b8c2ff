-- compose.lite.yml: Airflow's metadata database next to the shop's (the native
-- service creates it itself; see lite/services/airflow/service.py)
CREATE DATABASE airflow;
