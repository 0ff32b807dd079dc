"""Sizes and durations as people read them (shared by the command line, the dialogs and the wizard)."""

from __future__ import annotations


def format_bytes(count: int | float | None) -> str:
    """Decimal units with about three digits, as the hub shows sizes: 4.5 GB, 812 MB, 12.3 kB."""
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 999.5 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" or abs(value) >= 99.95 else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def count(n: int, noun: str) -> str:
    """ "1 segment", "3 segments": a number with its noun, for messages people read."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
