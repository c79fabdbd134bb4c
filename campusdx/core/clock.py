"""The school's time zone, declared once: PX timestamps, approvals' last days and the DAGs'
schedules are in Beijing time (UTC+8, no daylight saving)."""

from __future__ import annotations

from datetime import timedelta, timezone

TIMEZONE = "Asia/Shanghai"
BEIJING = timezone(timedelta(hours=8), TIMEZONE)
