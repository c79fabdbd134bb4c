"""Names of the warehouse relations Python reads, declared once (the dbt project builds them).

The quality gate, the platform's rejections and the reconciliation read a dataset's PX
candidates (the rows the feed is made from, before the quarantine takes its rows out). They
belong to the feeds layer (dbt_project/models/feeds/candidates/) and are built before the gate,
in their own schema ``feeds_candidates`` beside ``feeds`` (which holds only what is sent:
``feeds.feed_px__<dataset>``).
"""

from __future__ import annotations


def candidates(dataset: str) -> str:
    """The relation of a PX dataset's candidate rows, e.g. ``feeds_candidates.feed_px_candidates__zzjg``."""
    return f"feeds_candidates.feed_px_candidates__{dataset.lower()}"
