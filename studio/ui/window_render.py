"""The main window's side of rendering: planning and pre-flight, jobs, the render thread's events, export.

The state lives in the session (studio.session.render_session); this forwards the worker's queued
signals to it and draws what comes back: the mix in the waveform, progress, messages."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import (
    QMessageBox,
)

from studio.core.plan import PlannedSegment
from studio.core.tags import analyse_lines
from studio.core.units import count
from studio.core.voice_library import CastError, resolve_cast
from studio.engine.render import SegmentResult
from studio.paths import fingerprint_memo_file, render_cache_dir
from studio.session.checkpoints import MODEL_TYPE_LABELS, SIZE_LABELS, installed_checkpoints
from studio.session.pipeline import SAMPLE_RATE, JobOutcome, RenderJob
from studio.session.preflight import FIX_MODELS, FIX_SETTINGS, FIX_VOICES, renderable
from studio.session.render_plan import InputError, RenderPlan, plan_render
from studio.session.render_session import MixPiece
from studio.settings import load_settings
from studio.ui.render_settings import MachineSettings
from studio.ui.render_worker import RenderMachine


class RenderActions:
    """Mixed into MainWindow."""

    # --- rendering --------------------------------------------------------------------------------

    def _load_machine_settings(self) -> MachineSettings:
        return MachineSettings.from_settings(load_settings())

    def _render_machine(self) -> RenderMachine:
        budget = self.machine.memory_budget_gb
        return RenderMachine(
            device=self.machine.device,
            cpu_threads=self.machine.cpu_threads or None,
            budget_bytes=None if not budget else int(budget * 1024**3),
            prompt_cache_dir=self.library.prompt_cache,
            fingerprint_memo=fingerprint_memo_file(),
            cluster=self.machine.cluster,
        )

    def _voices(self, *, report: bool = True) -> dict:
        """Cast name -> VoiceSpec; a member whose library profile is gone is left out (and reported)."""
        try:
            return resolve_cast(self.project.cast, self.project.render.voice, self.library)
        except CastError as exc:
            if report:
                self.statusBar().showMessage(str(exc))
            voices = {n: e.voice for n, e in self.project.cast.items() if e.voice is not None}
            voices[None] = voices.get(self.project.render.voice)
            return voices

    def _items_per_line(self) -> list[int]:
        if self._refresh_timer.isActive() or len(self.analysis) != len(self.model):
            self.refresh_changed()
        return [len(a.items) for a in self.analysis.lines]

    def _plan(self, *, lines: range | None = None) -> tuple[RenderPlan, list[PlannedSegment]] | None:
        """Plan and check the render of the whole script, or of the 0-based `lines` (one line, a chapter);
        a problem found before any work is shown with ways to fix it. Returns the plan and the segments
        to render, or None (with the reason shown)."""
        if self.session.busy:
            self.statusBar().showMessage("A render is already running", 4000)
            return None
        self.sync_project()
        try:
            plan = plan_render(self.project, source="script", library=self.library, installed=installed_checkpoints())
        except InputError as exc:
            errors = [a.error for a in analyse_lines(self.project.script) if a.error is not None]
            if errors:
                self.editor.move_cursor_to(errors[0].line, errors[0].column)
            # The command line names its input ("script: line 7, ..."); here the script is the one on screen.
            QMessageBox.warning(self, "Cannot render", f"Fix the script first: {str(exc).removeprefix('script: ')}")
            return None
        segments = plan.segments if lines is None else [s for s in plan.segments if s.line - 1 in lines]
        if lines is None and not any(s.kind == "speech" for s in segments):
            self.statusBar().showMessage("The script has nothing to say yet", 4000)
            return None
        problems = [p for p in plan.problems if lines is None or any(n - 1 in lines for n in p.lines)]
        if problems:
            from studio.ui.preflight_dialog import PreflightDialog

            # "Render the other lines" only when some speech is left to render (pauses alone are not).
            some = any(s.kind == "speech" for s in renderable(segments, problems))
            dialog = PreflightDialog(problems, can_render_some=some, parent=self)
            self.preflight_dialog = dialog
            choice = dialog.exec_choice()
            if choice == PreflightDialog.RENDER_WHAT_CAN:
                segments = renderable(segments, problems)
            else:
                {FIX_VOICES: self.edit_voices, FIX_MODELS: self.manage_models,
                 FIX_SETTINGS: self.edit_render_settings}.get(choice, lambda: None)()
                return None
        return plan, segments

    def render_all(self) -> bool:
        """Render the whole script and export it; returns False (with the reason shown) when it cannot start."""
        planned = self._plan()
        if planned is None:
            return False
        plan, segments = planned
        self._start_job(plan, segments, full=len(segments) == len(plan.segments))
        return True

    def render_line(self, line: int) -> bool:
        """Render one line's segments (into the cache, the timeline and its region of the mix)."""
        if not (0 <= line < len(self.model)):
            return False
        planned = self._plan(lines=range(line, line + 1))
        if planned is None:
            return False
        plan, mine = planned
        if not mine:
            self.statusBar().showMessage(f"Line {line + 1} has nothing to render", 4000)
            return False
        self._start_job(plan, mine, full=False)
        return True

    def _start_job(self, plan: RenderPlan, segments: list[PlannedSegment], *, full: bool) -> None:
        job = RenderJob(job_id=self.session.next_job_id(), segments=[], voices=plan.cast.voices,
                        models=plan.cast.models, cache_dir=render_cache_dir(),
                        generation=self.project.render.generation, decoder=self.machine.decoder_options(),
                        batch=self.machine.batch)
        to_render = self.session.start(job, segments, self.model.lines(), full=full)
        if full:
            # A full render streams into a fresh mix, line after line in script order, and plays it
            # as it comes. A line's render leaves the mix alone until it ends (then that line's audio
            # takes its place on the timeline).
            self._close_player()
            self.waveform.reset(SAMPLE_RATE)
            self._mix_ends = np.zeros(0, dtype=np.int64)
            self.cursor_sample = 0
        self.progress_bar.setRange(0, max(1, len(to_render)))
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(True)
        self.renderer.submit(job, self._render_machine())
        self.statusBar().showMessage(f"Rendering {count(len(to_render), 'segment')}…")
        self._update_transport()
        self.mark_lines_changed({s.line - 1 for s in segments})  # now queued
        self.refresh_changed()

    def stop_rendering(self) -> None:
        self.renderer.cancel_all()
        self.statusBar().showMessage("Stopping after the current segment…")

    def _on_worker_model_loading(self, job_id: int, message: str) -> None:
        if self.session.is_current(job_id):
            self.statusBar().showMessage(message[:1].upper() + message[1:] + "…")

    def _on_worker_model_loaded(self, job_id: int, info) -> None:
        self.model_label.setText(info.summary())

    def _show_models(self, infos: list) -> None:
        """The status bar names the model(s) the last render used (a mixed cast uses several)."""
        if len(infos) == 1:
            self.model_label.setText(infos[0].summary())
            self.model_label.setToolTip(infos[0].source)
            return
        names = ", ".join(f"{MODEL_TYPE_LABELS.get(i.model_type, i.model_type)} {SIZE_LABELS.get(i.size, i.size)}"
                          for i in infos)
        self.model_label.setText(f"{len(infos)} models: {names} on {infos[0].device}")
        self.model_label.setToolTip("\n".join(i.source for i in infos))

    def _on_worker_segment_started(self, job_id: int, index: int) -> None:
        segment = self.session.segment_started(job_id, index)
        if segment is None:
            return
        progress = self.session.active.progress
        self.statusBar().showMessage(
            f"Rendering {progress.done + 1} of {progress.total} (line {segment.line})…{self.session.eta_text()}"
        )
        self.mark_lines_changed([segment.line - 1])

    def _on_worker_chunk_rendered(self, job_id: int, index: int, chunk) -> None:
        self._add_to_mix(self.session.chunk(job_id, index, chunk.samples) if self.session.is_current(job_id) else [])

    def _add_to_mix(self, pieces: list[MixPiece]) -> None:
        """A full render: append what the session says joins the mix now; playback starts with the first
        audio. (A line's render changes the mix when it ends.)"""
        active = self.session.active
        if not pieces or active is None or not active.full:
            return
        for piece in pieces:
            self.waveform.append(piece.samples)
        if self.player is None and self.output_device is not None and len(self.waveform.audio):
            self._open_player()
            if self.player is not None:
                self.player.play()
        self._update_transport()

    def _on_worker_segment_finished(self, job_id: int, index: int, result: SegmentResult) -> None:
        if not self.session.is_current(job_id):
            return
        self._add_to_mix(self.session.segment_finished(job_id, result))
        if self.session.active is not None:
            self.progress_bar.setValue(self.session.active.progress.done)
        self.mark_lines_changed([result.segment.line - 1])

    def _on_worker_job_finished(self, job_id: int, outcome: JobOutcome) -> None:
        end = self.session.job_finished(job_id, outcome)
        if end is None:
            return
        if outcome.models:
            self._show_models(list(outcome.models.values()))
        self.waveform.flush()
        self.progress_bar.setVisible(False)
        if end.kind == "detached":
            self._update_transport()
            self._finish_detached(end)
            return
        if self.player is not None:
            self.player.rendering_done = True
        self._update_transport()
        self.refresh_views()
        if end.show_mix:
            self._show_mix()
        else:
            self._keep_streamed_mix()
        if end.kind == "error":
            self.statusBar().showMessage(f"Render failed: {end.message}")
            QMessageBox.critical(self, "Render failed", end.message)
            return
        if end.kind != "export":
            self.statusBar().showMessage(end.message)
            return
        self._export(end.results, outcome, end.message)

    @property
    def last_outcome(self) -> JobOutcome | None:
        return self.session.last_outcome

    @property
    def last_export(self):
        return self.session.last_export

    # --- audio that stays -------------------------------------------------------------------------------

    def _look_up_cached_audio(self) -> None:
        """After opening a project: find the lines whose audio is in the render cache (no model loads)."""
        try:
            plan = plan_render(self.sync_project(), source="script", library=self.library,
                               installed=installed_checkpoints())
        except InputError:
            return  # the script does not parse: nothing can be looked up, the user sees why on the timeline
        if not any(s.kind == "speech" for s in plan.segments):
            return  # nothing to find (a new project): the render thread is not started for it
        job = RenderJob(job_id=self.session.next_job_id(), segments=plan.segments, voices=plan.cast.voices,
                        models=plan.cast.models, cache_dir=render_cache_dir(),
                        generation=self.project.render.generation, decoder=self.machine.decoder_options(),
                        batch=self.machine.batch)
        self.session.begin_probe(job, self.model.lines())
        self.renderer.probe(job, self._render_machine())

    def _on_worker_cache_probed(self, job_id: int, results: list) -> None:
        restored = self.session.restore(job_id, results, self.model.lines(), self._items_per_line())
        if not restored:
            return
        self.refresh_views()
        if not self.session.busy:
            self._show_mix()
        verb = "has" if restored == 1 else "have"
        self.statusBar().showMessage(f"{count(restored, 'line')} {verb} their audio from earlier renders", 5000)
