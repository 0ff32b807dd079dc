"""The main window's transport: the player over the waveform's audio, the playhead, play and stop."""

from __future__ import annotations

from studio.audio.buffers import GrowingAudio
from studio.audio.playback import PlaybackUnavailable, Player
from studio.engine.render import SegmentResult
from studio.session.pipeline import SAMPLE_RATE


class PlaybackActions:
    """Mixed into MainWindow."""

    # --- playback ------------------------------------------------------------------------------------

    def _open_player(self, audio: GrowingAudio | None = None) -> None:
        try:
            self.player = Player(audio or self.waveform.audio, device=self.output_device)
        except PlaybackUnavailable as exc:
            self.playback_problem = str(exc)
            self.output_device = None
            self.statusBar().showMessage(str(exc))
            self.player = None
            return
        self._playhead_timer.start()

    def _close_player(self) -> None:
        if self.player is not None:
            self.player.close()
            self.player = None
        self._playhead_timer.stop()

    def toggle_playback(self) -> None:
        if self.output_device is None:
            self.statusBar().showMessage(self.playback_problem or "playback is unavailable", 5000)
            return
        if self.player is None:
            if not len(self.waveform.audio):
                return
            self._open_player()
            if self.player is None:
                return
            self.player.rendering_done = not self.session.busy
        if self.player.playing:
            self.player.pause()
        else:
            self.player.play()
        self._update_transport()

    def stop_playback(self) -> None:
        if self.player is not None:
            self.player.stop()
            self.waveform.set_playhead(0)
        self._update_transport()

    def play_line(self, line: int) -> None:
        """Play a line's last rendered audio (render it first if it has none)."""
        if not (0 <= line < len(self.model)):
            return
        render = self.session.current_render(self.model.line(line))
        results = render.ordered() if render is not None else []
        if not results or any(r.samples is None for r in results):
            self.render_line(line)
            return
        if self.output_device is None:
            self.statusBar().showMessage(self.playback_problem or "playback is unavailable", 5000)
            return
        self._show_results(results, offset=self.timeline.starts[line])
        self._open_player()
        if self.player is not None:
            self.player.rendering_done = True
            self.player.play()
        self._update_transport()

    def _show_results(self, results: list[SegmentResult], *, offset: float) -> None:
        """Put finished segments into the waveform (replacing what it showed)."""
        self._close_player()
        self.waveform.reset(SAMPLE_RATE)
        self._segment_lines.clear()
        for result in results:
            start, end = self.waveform.append(result.samples)
            segment = result.segment
            label = "" if segment.kind == "pause" else (segment.emotion or "")
            self.waveform.add_segment(start, end, label, line=segment.line - 1, pause=segment.kind == "pause")
            self._segment_lines.append((start, end, segment.line - 1))
        self.waveform.flush()
        self._play_offset = offset

    def _on_waveform_seek_requested(self, sample: int) -> None:
        if self.player is not None:
            self.player.seek(sample)
        self.waveform.set_playhead(sample)

    def _on_playhead_timer(self) -> None:
        if self.player is None:
            return
        position = self.player.position
        self.waveform.set_playhead(position)
        line = next((ln for start, end, ln in self._segment_lines if start <= position < end), None)
        self.waveform.select_line(line)
        self.timeline.set_playhead(self._play_offset + position / SAMPLE_RATE, line)
        if not self.player.playing:
            self._update_transport()

    def _update_transport(self) -> None:
        rendering = self.session.busy
        self.render_action.setEnabled(not rendering)
        self.stop_render_action.setEnabled(rendering)
        can_play = self.output_device is not None and bool(len(self.waveform.audio))
        self.play_action.setEnabled(self.output_device is not None)
        self.stop_play_action.setEnabled(can_play)
        playing = self.player is not None and self.player.playing
        self.play_action.setText("&Pause" if playing else "&Play")
        if self.output_device is None:
            self.play_action.setToolTip(self.playback_problem or "playback is unavailable")
