"""Painting must not drop Python references.

PySide6 6.12.0 under Python 3.11 dropped a reference to None on every void QPainter call, so a window
that paints crashed ("deallocating None") after a few thousand calls: the timeline of a long project
did so on opening. pyproject.toml excludes that release; this test fails on any binding that does it.
"""

from __future__ import annotations

import sys

from PySide6.QtGui import QImage

from studio.ui.clip_info import Chip, ClipInfo
from studio.ui.timeline import TimelineView


def test_painting_the_timeline_keeps_none_alive(qtbot):
    view = TimelineView()
    qtbot.addWidget(view)
    view.set_clips([
        ClipInfo(index=i, line_id=i, text=f"Line {i}", voice="Narrator", chips=[Chip("Sad"), Chip("Soft", True)],
                 pieces=[("speech", 1.0), ("pause", 0.5), ("speech", 1.0)], estimated=False, state="done")
        for i in range(30)
    ])
    view.resize(1200, 30 * 52)
    image = QImage(view.size(), QImage.Format.Format_ARGB32)
    before = sys.getrefcount(None)
    for _ in range(20):
        view.render(image)
    # Thousands of QPainter calls happened above; the count may move by a few for unrelated reasons.
    assert sys.getrefcount(None) >= before - 5
