"""Names of the warehouse relations Python reads, declared once (the dbt project builds them).

The quality gate, the platform's rejections and the reconciliation read a dataset's PX
candidates (the rows the feed is made from, before the quarantine takes its rows out).
"""

from __future__ import annotations


def candidates(dataset: str) -> str:
    """The relation of a PX dataset's candidate rows, e.g. ``intermediate.int_px__zzjg``."""
    return f"intermediate.int_px__{dataset.lower()}"
