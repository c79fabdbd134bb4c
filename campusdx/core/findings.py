"""The findings format of the quality gate and the platform's rejections, declared once.

The columns are declared as the dbt source ``quality_files.findings``
(``dbt_project/models/quality/_quality__sources.yml``); the gate and the platform's rejections
write Parquet with :data:`FINDINGS_SCHEMA` built from them, and dbt's ``gate_findings()`` macro
reads the files with the same columns.
"""

from __future__ import annotations

import pyarrow as pa
import yaml

from campusdx.core.settings import DBT_PROJECT

SOURCES_FILE = DBT_PROJECT / "models" / "quality" / "_quality__sources.yml"
ARROW_TYPES = {"varchar": pa.string(), "timestamp": pa.timestamp("us")}


def _schema() -> pa.Schema:
    declared = yaml.safe_load(SOURCES_FILE.read_text(encoding="utf-8"))
    (source,) = [s for s in declared["sources"] if s["name"] == "quality_files"]
    (table,) = [t for t in source["tables"] if t["name"] == "findings"]
    return pa.schema([(c["name"], ARROW_TYPES[c["data_type"]]) for c in table["columns"]])


FINDINGS_SCHEMA = _schema()
