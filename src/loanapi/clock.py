"""Time: every timestamp is UTC and timezone-aware."""

from datetime import UTC, date, datetime, time, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of `day`: a bare date in a filter means that whole UTC day."""
    return datetime.combine(day, time.min, UTC)


def day_end(day: date) -> datetime:
    """Midnight UTC after `day`: the exclusive upper bound of that whole UTC day."""
    return day_start(day) + timedelta(days=1)
