"""One time axis for the timeline and the waveform: zoom, scroll and the visible range, shared.

Both views map seconds to pixels through the same TimeAxis, and both redraw when it changes, so a clip
and its audio are always at the same x, however the user zooms or scrolls. The axis knows nothing of
what is drawn; it holds the scale (pixels per second), the left edge (seconds), the width of the drawing
area in pixels, and the project's length.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal

# Most zoomed in: about 12 samples of 24 kHz audio per pixel, where single waveform cycles show.
MAX_PIXELS_PER_SECOND = 2000.0
# Zooming out stops where the whole project fits the view (with a little room after its end).
_END_ROOM = 1.02
ZOOM_STEP = 1.25


class TimeAxis(QObject):
    changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.pixels_per_second = 60.0
        self.start = 0.0  # seconds at the left edge of the drawing area
        self.view_width = 800  # pixels of the drawing area (the views' width minus their gutter)
        self.total = 0.0  # the project's length in seconds: the longest of the views' extents
        self._extents: dict[str, float] = {}
        self.fitted = True  # showing the whole project; stays fitted as the project grows

    # --- mapping -------------------------------------------------------------------------------------

    @property
    def end(self) -> float:
        return self.start + self.view_width / self.pixels_per_second

    def x_of(self, seconds: float) -> float:
        """The x of a time, in pixels from the left edge of the drawing area."""
        return (seconds - self.start) * self.pixels_per_second

    def seconds_at(self, x: float) -> float:
        return self.start + x / self.pixels_per_second

    # --- limits ------------------------------------------------------------------------------------

    def _span(self) -> float:
        return max(self.total * _END_ROOM, 1.0)

    def min_pixels_per_second(self) -> float:
        return min(MAX_PIXELS_PER_SECOND, self.view_width / self._span())

    def max_start(self) -> float:
        return max(0.0, self._span() - self.view_width / self.pixels_per_second)

    def _settle(self) -> None:
        self.pixels_per_second = min(MAX_PIXELS_PER_SECOND, max(self.min_pixels_per_second(),
                                                                self.pixels_per_second))
        self.start = min(max(0.0, self.start), self.max_start())

    # --- changes -------------------------------------------------------------------------------------

    def _set(self, pixels_per_second: float, start: float, *, fitted: bool = False) -> None:
        before = (self.pixels_per_second, self.start)
        self.pixels_per_second = pixels_per_second
        self.start = start
        self.fitted = fitted
        self._settle()
        if (self.pixels_per_second, self.start) != before:
            self.changed.emit()

    def set_view_width(self, pixels: int) -> None:
        pixels = max(50, int(pixels))
        if pixels == self.view_width:
            return
        self.view_width = pixels
        if self.fitted:
            self.fit()
        else:
            self._set(self.pixels_per_second, self.start)
            self.changed.emit()

    def set_extent(self, source: str, seconds: float) -> None:
        """What one view shows got longer or shorter (the timeline's clips, the waveform's audio)."""
        self._extents[source] = max(0.0, float(seconds))
        total = max(self._extents.values())
        if total == self.total:
            return
        self.total = total
        if self.fitted:
            self.fit()
        else:
            self._set(self.pixels_per_second, self.start)

    def fit(self) -> None:
        """Show the whole project."""
        self._set(self.view_width / self._span(), 0.0, fitted=True)

    def zoom(self, factor: float, anchor: float | None = None) -> None:
        """Zoom by `factor` (> 1 zooms in) keeping the time `anchor` (seconds) at the same x."""
        if anchor is None:
            anchor = (self.start + self.end) / 2
        x = self.x_of(anchor)
        scale = self.pixels_per_second * factor
        scale = min(MAX_PIXELS_PER_SECOND, max(self.min_pixels_per_second(), scale))
        self._set(scale, anchor - x / scale, fitted=scale <= self.min_pixels_per_second())

    def scroll_to(self, start: float) -> None:
        self._set(self.pixels_per_second, start, fitted=self.fitted and start <= 0)

    def scroll_by_pixels(self, dx: float) -> None:
        self.scroll_to(self.start + dx / self.pixels_per_second)

    def ensure_visible(self, seconds: float, margin_pixels: int = 40) -> None:
        """Scroll (not zoom) so that `seconds` is inside the view."""
        margin = margin_pixels / self.pixels_per_second
        if seconds < self.start + margin:
            self.scroll_to(seconds - margin)
        elif seconds > self.end - margin:
            self.scroll_to(seconds - (self.end - self.start) + margin)


def ruler_step(pixels_per_second: float, min_pixels: float = 80.0) -> float:
    """The tick spacing (seconds) of the ruler: the first 'round' interval at least `min_pixels` wide."""
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if step * pixels_per_second >= min_pixels:
            return float(step)
    return 14400.0


def format_time(seconds: float, *, step: float = 1.0) -> str:
    """'1:05', '1:02:03' or with tenths ('0:01.5') when the step is finer than a second."""
    seconds = max(0.0, seconds)
    whole = int(seconds + 1e-6)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    if step < 1:
        text += f".{min(9, int((seconds - whole) * 10 + 1e-6))}"  # tenths shown as a clock does: not rounded up
    return text


def handle_wheel(axis: TimeAxis, event, x: float) -> None:
    """The wheel on either view: Ctrl zooms at the mouse, otherwise it scrolls in time."""
    delta = event.angleDelta()
    steps = (delta.y() or delta.x()) / 120
    if not steps:
        event.ignore()
        return
    if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
        axis.zoom(ZOOM_STEP ** steps, axis.seconds_at(x))
    else:
        axis.scroll_by_pixels(-steps * 60)
    event.accept()
