"""The Airflow DAGs (the scheduler reads this folder; importable as campusdx.dags for lint-imports)."""
