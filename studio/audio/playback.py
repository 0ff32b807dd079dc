"""Live playback: a sounddevice callback stream fed through a ring buffer.

Three parties, each doing one thing:
- the renderer appends samples to a GrowingAudio (the timeline's audio) as chunks arrive;
- a feeder thread reads from the playhead, resamples to the device rate (soxr, in the producer so
  the callback never does DSP), and tops up the ring buffer to about `lead_seconds` ahead;
- the PortAudio callback only copies from the ring into the output, writes zeros and counts an
  underrun when the ring runs dry, and advances a frame counter. No allocation, no locks held for
  long, no logging and no Qt inside it.

The UI polls `position` with a timer to draw the playhead.

Why sounddevice: it wraps PortAudio, which reaches ALSA, PulseAudio/PipeWire (through ALSA), Core
Audio and WASAPI with one callback API, and its wheels carry PortAudio on Windows and macOS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from studio.audio.buffers import GrowingAudio, RingBuffer

# How far ahead of the device the feeder keeps the ring filled. Longer survives hiccups in a busy
# Python process (model inference holds the GIL in bursts); shorter makes seeking feel snappier
# (the ring is flushed on seek, so this does not delay seeks, only costs memory).
_LEAD_SECONDS = 0.5
_FEED_INTERVAL_SECONDS = 0.02


class PlaybackUnavailable(RuntimeError):
    """No usable output device; str() says why in one line."""


@dataclass(frozen=True)
class OutputDevice:
    index: int
    name: str
    sample_rate: int


def default_output_device() -> OutputDevice:
    """The system's default output device, or PlaybackUnavailable."""
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio missing
        raise PlaybackUnavailable(f"audio playback is unavailable: PortAudio could not be loaded ({exc})") from None
    try:
        info = sd.query_devices(kind="output")
    except (sd.PortAudioError, ValueError):
        raise PlaybackUnavailable("no audio output device found; rendering and export still work") from None
    return OutputDevice(int(info["index"]), str(info["name"]), int(info["default_samplerate"]))


def list_output_devices() -> list[OutputDevice]:
    import sounddevice as sd

    return [
        OutputDevice(i, str(d["name"]), int(d["default_samplerate"]))
        for i, d in enumerate(sd.query_devices())
        if d["max_output_channels"] > 0
    ]


class Player:
    """Plays a GrowingAudio from a playhead, following it while it grows."""

    def __init__(
        self,
        audio: GrowingAudio,
        *,
        device: OutputDevice | None = None,
        device_rate: int | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> None:
        import sounddevice as sd
        import soxr

        self.audio = audio
        self.device = device or default_output_device()
        self.device_rate = int(device_rate or self.device.sample_rate)
        self.on_finished = on_finished
        self._soxr = soxr
        self._ring = RingBuffer(int(self.device_rate * _LEAD_SECONDS * 4))
        self._resampler = None
        self._source_pos = 0  # next source sample the feeder will read
        self._seek_origin = 0  # source sample where the current run of device frames started
        self._device_frames = 0  # device frames played since the last seek (callback-owned)
        self.underruns = 0
        self.rendering_done = False  # set by the owner when no more audio will be appended
        # Play only samples [start, end) (a line), or loop them; None plays to the end of the audio.
        self._range: tuple[int, int] | None = None
        self._loop = False
        self._playing = False
        self._lock = threading.Lock()  # guards the playhead and the ring between the feeder and control calls
        # One control call at a time, whole: the feeder's own pause at the end of the audio stops the stream
        # and then settles the playhead, and a seek from the UI arriving in between used to be overwritten
        # by that settling (the playhead jumped back to the end).
        self._control = threading.RLock()
        self._wake = threading.Event()
        self._closed = False
        self._new_resampler()
        try:
            self._stream = sd.OutputStream(
                samplerate=self.device_rate,
                channels=1,
                dtype="float32",
                device=self.device.index,
                callback=self._callback,
            )
        except sd.PortAudioError as exc:
            raise PlaybackUnavailable(f"cannot open output device {self.device.name!r}: {exc}") from None
        self._feeder = threading.Thread(target=self._feed_loop, name="playback-feeder", daemon=True)
        self._feeder.start()

    # --- callback (PortAudio's thread) ---------------------------------------------------------------

    def _callback(self, outdata, frames, _time, _status) -> None:
        out = outdata[:, 0]
        got = self._ring.read_into(out)
        self._device_frames += got
        if got < frames and self._playing and not self._source_exhausted():
            self.underruns += 1

    # --- feeder (its own thread) ---------------------------------------------------------------------

    def _new_resampler(self) -> None:
        if self.device_rate != self.audio.sample_rate:
            self._resampler = self._soxr.ResampleStream(
                self.audio.sample_rate, self.device_rate, 1, dtype="float32", quality="HQ"
            )
        else:
            self._resampler = None
        self._flushed = False  # whether the end of the source has gone through the resampler

    def _limit(self) -> int:
        return self._range[1] if self._range is not None else len(self.audio)

    def _end_known(self) -> bool:
        """Whether the last sample to play exists (audio still rendering may grow past a range's end)."""
        return self.rendering_done or (self._range is not None and self._range[1] <= len(self.audio))

    def _source_exhausted(self) -> bool:
        return not self._loop and self._end_known() and self._source_pos >= self._limit()

    def _feed_once(self) -> None:
        with self._lock:
            if not self._playing:
                return
            want_device = int(self.device_rate * _LEAD_SECONDS) - self._ring.available()
            if want_device > 0:
                ratio = self.audio.sample_rate / self.device_rate
                limit = self._limit()
                block = self.audio.view(self._source_pos, min(limit, self._source_pos + int(want_device * ratio) + 1))
                reached = self._source_pos + len(block) >= limit
                # A loop goes on from its start through the same resampler (no flush, no gap).
                wraps = self._loop and self._range is not None and reached and self._end_known()
                last = not wraps and reached and self._end_known()
                # The resampler takes its final input once (soxr raises "Input after last input" after
                # that, which used to kill this thread and leave the stream playing silence forever).
                if (len(block) or last) and not self._flushed:
                    self._flushed = last
                    self._source_pos = self._range[0] if wraps else self._source_pos + len(block)
                    data = block if self._resampler is None else self._resampler.resample_chunk(block, last=last)
                    self._ring.write(np.asarray(data, dtype=np.float32))
            finished = self._source_exhausted() and self._ring.available() == 0
        if finished and self._finish():
            if self.on_finished:
                self.on_finished()

    def _finish(self) -> bool:
        """Pause at the end of what was to be played; False when a control call got in first (a seek)."""
        with self._control:
            with self._lock:
                if not (self._playing and self._source_exhausted() and self._ring.available() == 0):
                    return False
                end = self._limit()
            # Settle exactly at the end: counted in device frames, the playhead can fall one source sample
            # short of it after a resume, as the resampler rounds the length of the rest.
            self._pause(settle_at=end)
            return True

    def _feed_loop(self) -> None:
        while not self._closed:
            self._feed_once()
            self._wake.wait(_FEED_INTERVAL_SECONDS)
            self._wake.clear()

    # --- control (any thread) ------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def position(self) -> int:
        """The source sample being heard now (approximately: the device's latency is not subtracted)."""
        played = self._device_frames * self.audio.sample_rate // self.device_rate
        position = self._seek_origin + played
        if self._loop and self._range is not None:
            start, end = self._range
            if end > start and position >= end:
                position = start + (position - end) % (end - start)
        return min(position, len(self.audio))

    @property
    def play_range(self) -> tuple[int, int] | None:
        return self._range

    @property
    def looping(self) -> bool:
        return self._loop

    def play(self) -> None:
        with self._control:
            with self._lock:
                if self._closed or self._playing:
                    return
                if self._range is not None and self.position >= self._range[1]:
                    self._seek_locked(self._range[0])
                elif self.rendering_done and self.position >= len(self.audio):
                    self._seek_locked(0)
                self._playing = True
            self._wake.set()
            self._stream.start()

    def pause(self) -> None:
        self._pause()

    def _pause(self, settle_at: int | None = None) -> None:
        with self._control:
            with self._lock:
                if not self._playing:
                    return
                self._playing = False
            # stop() lets PortAudio play out the buffers it already holds, and the callback keeps reading
            # the ring until then; so the playhead is read only after the stream has stopped, or the sound
            # that reached the device after the read would be heard again on resume.
            self._stream.stop()
            with self._lock:
                self._seek_locked(self.position if settle_at is None else settle_at)

    def stop(self) -> None:
        with self._control:
            self.pause()
            with self._lock:
                self._seek_locked(0)

    def seek(self, sample: int) -> None:
        """Jump to a source sample; playback continues from there if it was playing. A jump out of the
        range being played ends the range (the user went elsewhere)."""
        self._restart_at(sample)

    def set_range(self, start: int | None, end: int | None = None, *, loop: bool = False) -> None:
        """Play only [start, end) from now on, looping it if `loop`; None plays to the end of the audio.
        The playhead moves to `start` when it is outside the range."""
        with self._control:
            with self._lock:
                if start is None or end is None or end <= start:
                    self._range, self._loop = None, False
                    return
                self._range, self._loop = (int(start), int(end)), loop
                inside = start <= self.position < end
            if not inside:
                self._restart_at(start)

    def _restart_at(self, sample: int) -> None:
        with self._control:
            was_playing = self._playing
            if was_playing:
                self._stream.stop()
            with self._lock:
                if self._range is not None and not (self._range[0] <= sample < self._range[1]):
                    self._range, self._loop = None, False
                self._seek_locked(sample)
            if was_playing:
                self._wake.set()
                self._stream.start()

    def _seek_locked(self, sample: int) -> None:
        # Only called while the stream is stopped, so the callback is not reading the ring.
        sample = max(0, min(int(sample), len(self.audio)))
        self._ring.reset()
        self._new_resampler()
        self._source_pos = sample
        self._seek_origin = sample
        self._device_frames = 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._playing = False
        self._wake.set()
        self._feeder.join(timeout=2)
        self._stream.stop()
        self._stream.close()
