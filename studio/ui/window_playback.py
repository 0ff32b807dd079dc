"""The main window's transport: the project's mix on the shared time axis, the player, the playhead.

The mix is the whole project as the timeline lays it out: each line's audio where its clip is, and
silence as long as the clip's estimate where a line has no audio yet (a TimelineAudio: the silence takes
no memory). So the player's position, the waveform's x and the timeline's time are one number (samples
at 24 kHz), whatever is rendered.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from studio.audio.buffers import GrowingAudio, TimelineAudio
from studio.audio.playback import PlaybackUnavailable, Player
from studio.session.pipeline import SAMPLE_RATE
from studio.ui.time_axis import format_time

NUDGE_SECONDS = 1.0
JUMP_SECONDS = 5.0


class PlaybackActions:
    """Mixed into MainWindow."""

    # --- the transport's controls ----------------------------------------------------------------------

    def _build_transport(self, menu) -> None:
        """The Playback menu and the transport toolbar (the same actions)."""
        self.play_action = self._action("&Play", QKeySequence("Space"), self.toggle_playback, menu=menu,
                                        tip="Play or pause from the playhead")
        self.stop_play_action = self._action("S&top", QKeySequence("Shift+Space"), self.stop_playback, menu=menu,
                                             tip="Stop and go back to the start")
        self.play_from_line_action = self._action(
            "Play from Selected &Line", QKeySequence("Ctrl+Space"), self.play_from_selected_line, menu=menu)
        self.loop_action = self._action("&Loop Selected Line", QKeySequence("Ctrl+Shift+L"), self._apply_loop,
                                        menu=menu, tip="Play the selected line over and over")
        self.loop_action.setCheckable(True)
        menu.addSeparator()
        self._action("Go to &Start", QKeySequence("Home"), lambda: self.seek_to(0), menu=menu)
        self._action("Go to &End", QKeySequence("End"), lambda: self.seek_to(self._timeline_samples()), menu=menu)
        self._action("&Back 5 s", QKeySequence("J"), lambda: self.nudge(-JUMP_SECONDS), menu=menu)
        self._action("Pa&use", QKeySequence("K"), self.pause_playback, menu=menu)
        self._action("&Forward 5 s", QKeySequence("L"), lambda: self.nudge(JUMP_SECONDS), menu=menu)
        self._action("Nudge Back 1 s", QKeySequence("Alt+Left"), lambda: self.nudge(-NUDGE_SECONDS), menu=menu)
        self._action("Nudge Forward 1 s", QKeySequence("Alt+Right"), lambda: self.nudge(NUDGE_SECONDS), menu=menu)

        bar = self.transport
        for action in (self.render_action, self.stop_render_action):
            bar.addAction(action)
        bar.addSeparator()
        for action in (self.play_action, self.stop_play_action, self.loop_action):
            bar.addAction(action)
        bar.addSeparator()
        self.time_label = QLabel()
        self.time_label.setObjectName("TimeReadout")
        self.time_label.setToolTip("Playhead / project length")
        self.time_label.setMinimumWidth(150)
        bar.addWidget(self.time_label)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        # Why Play is greyed out when there is no sound card, said where the user looks for it.
        self.device_label = QLabel()
        self.device_label.setObjectName("DeviceProblem")
        bar.addWidget(self.device_label)

    # --- the mix -----------------------------------------------------------------------------------------

    def _timeline_samples(self) -> int:
        return int(self.timeline.end_samples[-1]) if len(self.timeline.end_samples) else 0

    def _layout_changed(self) -> None:
        """The timeline's layout changed; the mix follows when its line lengths no longer match (not while
        a full render streams into it: that one is the mix, rebuilt at its end if need be)."""
        self._show_position(self.transport_position())
        active = self.session.active
        if active is not None and active.full:
            return
        if not np.array_equal(self._mix_ends, self.timeline.end_samples):
            self._mix_timer.start()

    def _show_mix(self) -> None:
        """Rebuild the project's audio: every line at its place on the timeline, silence where a line has
        no audio yet. Playback goes on from the same time. (Not while a full render streams into the mix:
        what it streams is the mix.)"""
        self._mix_timer.stop()
        active = self.session.active
        if active is not None and active.full:
            return
        if self._refresh_timer.isActive() or len(self.timeline.clips) != len(self.model):
            self.refresh_changed()
        mix = self.session.project_mix(self.model.lines(), self._items_per_line(), self.timeline.clip_samples())
        position = self.transport_position()
        was_playing = self.player is not None and self.player.playing
        self._close_player()
        compact = GrowingAudio(SAMPLE_RATE)
        if mix.pieces:
            compact.append(np.concatenate(mix.pieces) if len(mix.pieces) > 1 else mix.pieces[0])
        self.waveform.show_timeline(TimelineAudio(compact, mix.length, mix.runs()))
        self._mix_ends = np.fromiter((end for _start, end in mix.spans), dtype=np.int64, count=len(mix.spans))
        self.cursor_sample = min(position, mix.length)
        if was_playing:
            self._open_player()
            if self.player is not None:
                self.player.rendering_done = True
                self.player.seek(self.cursor_sample)
                self.player.play()
        self._show_position(self.cursor_sample)
        self._update_transport()

    def _keep_streamed_mix(self) -> None:
        """A full render streamed every line in script order: what it streamed is the mix, sample for sample
        at the timeline's places, so it stays (and keeps playing) instead of being built again."""
        if isinstance(self.waveform.audio, GrowingAudio) and len(self.waveform.audio) == self._timeline_samples():
            self._mix_ends = self.timeline.end_samples.copy()
            self._mix_timer.stop()

    # --- playback ------------------------------------------------------------------------------------

    def _open_player(self) -> None:
        try:
            self.player = Player(self.waveform.audio, device=self.output_device)
        except PlaybackUnavailable as exc:
            self.playback_problem = str(exc)
            self.output_device = None
            self.statusBar().showMessage(str(exc))
            self.player = None
            return
        active = self.session.active
        self.player.rendering_done = not (active is not None and active.full)
        self._playhead_timer.start()

    def _close_player(self) -> None:
        if self.player is not None:
            self.cursor_sample = self.player.position
            self.player.close()
            self.player = None
        self._playhead_timer.stop()

    def transport_position(self) -> int:
        """Where the playhead is (samples on the timeline)."""
        return self.player.position if self.player is not None else self.cursor_sample

    def seek_to(self, sample: int) -> None:
        sample = max(0, min(int(sample), max(self._timeline_samples(), len(self.waveform.audio))))
        self.cursor_sample = sample
        if self.player is not None:
            self.player.seek(sample)
        self._show_position(sample)

    def nudge(self, seconds: float) -> None:
        self.seek_to(self.transport_position() + int(seconds * SAMPLE_RATE))

    def _can_play(self) -> bool:
        if self.output_device is None:
            self.statusBar().showMessage(self.playback_problem or "playback is unavailable", 5000)
            return False
        if self.player is None:
            if not len(self.waveform.audio):
                return False
            self._open_player()
            if self.player is None:
                return False
            self.player.seek(self.cursor_sample)
        return True

    def toggle_playback(self) -> None:
        if not self._can_play():
            return
        if self.player.playing:
            self.player.pause()
        else:
            self._apply_loop()
            self.player.play()
        self._update_transport()

    def pause_playback(self) -> None:
        if self.player is not None and self.player.playing:
            self.player.pause()
        self._update_transport()

    def stop_playback(self) -> None:
        if self.player is not None:
            self.player.stop()
        self.seek_to(0)
        self._update_transport()

    def play_from_selected_line(self) -> None:
        line = self.current_line()
        if not (0 <= line < len(self.timeline.clips)) or not self._can_play():
            return
        self.player.set_range(None)
        self.seek_to(int(self.timeline.start_samples[line]))
        self._apply_loop()
        self.player.play()
        self._update_transport()

    def play_line(self, line: int) -> None:
        """Play one line (render it first if it has no audio)."""
        if not (0 <= line < len(self.model)):
            return
        render = self.session.current_render(self.model.line(line))
        results = render.ordered() if render is not None else []
        if not results or any(r.samples is None for r in results):
            self.render_line(line)
            return
        if not self._can_play():
            return
        start, end = int(self.timeline.start_samples[line]), int(self.timeline.end_samples[line])
        self.player.set_range(start, end)
        self._show_position(start)
        self.player.play()
        self._update_transport()

    def _apply_loop(self) -> None:
        """Loop the selected line while the Loop button is on; play on past it when it is off."""
        if self.player is None:
            return
        line = self.current_line()
        if self.loop_action.isChecked() and 0 <= line < len(self.timeline.clips):
            self.player.set_range(int(self.timeline.start_samples[line]), int(self.timeline.end_samples[line]),
                                  loop=True)
        elif self.player.looping:
            self.player.set_range(None)
        self._show_position(self.player.position)

    def _on_waveform_seek_requested(self, sample: int) -> None:
        """A click on the waveform: the playhead goes there and the line under it is selected."""
        self.seek_to(sample)
        line = self.timeline.line_at_time(sample / SAMPLE_RATE)
        if line is not None:
            self.timeline.select(line)

    def _on_playhead_timer(self) -> None:
        if self.player is None:
            return
        self._show_position(self.player.position)
        if not self.player.playing:
            self._update_transport()

    def _show_position(self, sample: int) -> None:
        seconds = sample / SAMPLE_RATE
        playing = self.player is not None and self.player.playing
        line = self.timeline.line_at_time(seconds) if playing else None
        self.waveform.set_playhead(sample)
        self.timeline.set_playhead(seconds, line)
        if playing:
            # The view follows the playhead (a page at a time, as in a DAW).
            self.axis.ensure_visible(seconds)
            self.waveform.highlight(self._line_span_seconds(line))
        total = max(self._timeline_samples(), len(self.waveform.audio)) / SAMPLE_RATE
        self.time_label.setText(f"{format_time(seconds, step=0.1)} / {format_time(total, step=0.1)}")

    def _update_transport(self) -> None:
        rendering = self.session.busy
        self.render_action.setEnabled(not rendering)
        self.stop_render_action.setEnabled(rendering)
        has_device = self.output_device is not None
        has_audio = bool(len(self.waveform.audio))
        for action in (self.play_action, self.play_from_line_action):
            action.setEnabled(has_device and has_audio)
        self.stop_play_action.setEnabled(has_device and has_audio)
        playing = self.player is not None and self.player.playing
        self.play_action.setText("&Pause" if playing else "&Play")
        if has_device:
            self.device_label.setVisible(False)
        else:
            problem = self.playback_problem or "playback is unavailable"
            self.device_label.setText("No sound output")
            self.device_label.setToolTip(f"{problem}\nRendering and export still work.")
            self.play_action.setToolTip(problem)
            self.device_label.setVisible(True)
        self._show_position(self.transport_position())
