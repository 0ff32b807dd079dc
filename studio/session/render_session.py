"""The render session: what the window shows about renders, kept without Qt.

It owns each line's last render (results and per-segment states, keyed by the line's stable id so edits
elsewhere do not lose it, current while the line keeps its text and take), warnings, progress with ETA,
the job in flight and the mix: the project's audio in script order, built from every line whose audio is
current. The window forwards the render thread's events here and draws what comes back; the command line
runs jobs without it.

Streaming order: chunks go into the mix only for the segment that is next in script order; a segment
rendered ahead of its turn (a mixed cast grouped by model) waits whole until its predecessors are in,
so the mix plays in script order whatever order the models rendered in.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from studio.core.plan import PlannedSegment
from studio.core.script import ScriptLine
from studio.core.units import count
from studio.engine.render import DONE, FAILED, SegmentResult
from studio.session.pipeline import JobOutcome, RenderJob


class SegmentState(enum.StrEnum):
    QUEUED = "queued"
    RENDERING = "rendering"
    DONE = "done"
    CACHED = "cached"
    FAILED = "failed"
    STALE = "stale"


class RenderProgress:
    """Segments done / total and an ETA from the measured speed (seconds per character rendered)."""

    def __init__(self, segments: Sequence[PlannedSegment]) -> None:
        self.total = len(segments)
        self.done = 0
        self._chars_left = {s.index: len(s.text) for s in segments if s.kind == "speech"}
        self._chars_rendered = 0
        self._seconds = 0.0

    def finished(self, index: int, seconds_to_render: float, cached: bool) -> None:
        self.done += 1
        chars = self._chars_left.pop(index, 0)
        if not cached and chars:
            self._chars_rendered += chars
            self._seconds += seconds_to_render

    def eta_seconds(self) -> float | None:
        if not self._chars_rendered:
            return None
        return sum(self._chars_left.values()) * self._seconds / self._chars_rendered


@dataclass
class LineRender:
    """The last render of one line, valid while the line's text is unchanged."""

    text: str
    take: int = 0  # the take this audio is; choosing another take makes it not current
    # Keyed by the segment's position within its line, which survives edits to other lines.
    results: dict[int, SegmentResult] = field(default_factory=dict)
    states: dict[int, SegmentState] = field(default_factory=dict)

    def ordered(self) -> list[SegmentResult]:
        return [self.results[i] for i in sorted(self.results)]

    def overall(self) -> SegmentState:
        """One state for the line: the most pressing of its segments' (failed, rendering, queued, stale),
        else cached when every speech segment came from the cache, else done. Pauses are silence, never
        "from the cache": they do not decide between done and cached."""
        states = {
            state for ordinal, state in self.states.items()
            if ordinal not in self.results or self.results[ordinal].segment.kind == "speech"
        } or {SegmentState.DONE}
        pressing = (SegmentState.FAILED, SegmentState.RENDERING, SegmentState.QUEUED, SegmentState.STALE)
        for state in pressing:
            if state in states:
                return state
        return SegmentState.CACHED if states == {SegmentState.CACHED} else SegmentState.DONE

    def complete(self, n_items: int) -> bool:
        """Every one of the line's `n_items` segments has audio."""
        return len(self.results) == n_items and all(
            r.state == DONE and r.samples is not None for r in self.results.values())


@dataclass
class MixPiece:
    """Audio to append to the mix, with what it is (for the waveform's labels and the playhead)."""

    samples: np.ndarray
    segment: PlannedSegment | None  # None: a chunk of a segment still streaming
    result: SegmentResult | None = None
    start: int = 0  # for a closing piece: where its segment starts in the mix (samples)
    end: int = 0  # and where it ends


@dataclass
class ProjectMix:
    """The project's audio laid out as the timeline shows it: each line at its place, with its rendered audio
    or, for a line without audio yet, a silent span as long as the timeline's estimate for it."""

    pieces: list[np.ndarray]  # the rendered lines' audio, in script order (silence is not stored)
    spans: list[tuple[int, int]]  # per line: [start, end) on the timeline, in samples
    rendered: list[bool]  # per line: whether its span holds its audio (not silence)

    @property
    def length(self) -> int:
        return self.spans[-1][1] if self.spans else 0

    def runs(self) -> list[tuple[int, int, int]]:
        """(timeline start, start in the concatenated pieces, length) of each stretch of consecutive rendered
        lines: where the audio is, for studio.audio.buffers.TimelineAudio."""
        runs: list[tuple[int, int, int]] = []
        compact = 0
        for (start, end), rendered in zip(self.spans, self.rendered, strict=True):
            if not rendered or end == start:
                continue
            if runs and runs[-1][0] + runs[-1][2] == start:
                runs[-1] = (runs[-1][0], runs[-1][1], runs[-1][2] + end - start)
            else:
                runs.append((start, compact, end - start))
            compact += end - start
        return runs


@dataclass
class ActiveJob:
    job: RenderJob
    full: bool
    segments: dict[int, PlannedSegment]
    line_ids: dict[int, int]  # segment index -> line id
    ordinals: dict[int, int]  # segment index -> position within its line
    progress: RenderProgress
    started: float = field(default_factory=time.monotonic)
    order: list[int] = field(default_factory=list)  # indexes still to reach the mix, script order
    held: dict[int, SegmentResult] = field(default_factory=dict)  # finished ahead of their turn
    streamed: set[int] = field(default_factory=set)  # segments with chunks already in the mix
    rebuild_at_end: bool = False  # the streamed mix has audio that must not stay (a failure, kept lines)
    mix_length: int = 0  # samples this job has put into the mix
    stream_start: int | None = None  # where the segment now streaming began
    detached: object = None  # a job outside the script (design -> clone): what the window needs after it


@dataclass
class JobEnd:
    """What the window does when a job ends."""

    kind: str  # "error" | "cancelled" | "failed" | "line" | "export" | "incomplete" | "detached"
    message: str
    results: list[SegmentResult] = field(default_factory=list)  # for "export": every segment, script order
    show_mix: bool = False  # rebuild the waveform from `mix_results` (what streamed is not the mix)
    context: object = None  # a detached job's context


class RenderSession:
    def __init__(self) -> None:
        self.lines: dict[int, LineRender] = {}
        self.warnings: dict[int, str] = {}  # line id -> warning from its last render
        self.active: ActiveJob | None = None
        self.model_info = None  # the model that last rendered (for the status bar)
        self.last_outcome: JobOutcome | None = None
        self.last_export = None
        self.probe_id: int | None = None
        self._probed: dict[int, tuple[int, str, int]] = {}
        self._next_job_id = 0

    # --- state ----------------------------------------------------------------------------------------

    def reset(self) -> None:
        """A new or reopened project: nothing rendered is shown until the cache says otherwise, and the
        events of a job still running for the old one are no longer this session's."""
        self.active = None
        self.lines.clear()
        self.warnings.clear()
        self.probe_id = None

    def forget(self, lines: Sequence[ScriptLine]) -> None:
        """Drop the audio of `lines` from what the window shows (what the model reads for them changed);
        the cache keeps it, so a lookup finds it again if the change is undone."""
        for line in lines:
            self.lines.pop(line.id, None)
            self.warnings.pop(line.id, None)

    @property
    def busy(self) -> bool:
        return self.active is not None

    def next_job_id(self) -> int:
        self._next_job_id += 1
        return self._next_job_id

    def is_current(self, job_id: int) -> bool:
        return self.active is not None and self.active.job.job_id == job_id

    def current_render(self, line: ScriptLine) -> LineRender | None:
        """The line's audio, when it was rendered from the text and take the line has now."""
        render = self.lines.get(line.id)
        current = render is not None and render.text == line.text and render.take == line.state.take
        return render if current else None


    def mix_results(self, lines: Sequence[ScriptLine], items_per_line: Sequence[int]) -> list[SegmentResult]:
        """The project's audio in script order: every line whose render is current and complete."""
        out: list[SegmentResult] = []
        for line, n_items in zip(lines, items_per_line, strict=True):
            render = self.current_render(line)
            if render is not None and n_items and render.complete(n_items):
                out.extend(render.ordered())
        return out

    def project_mix(self, lines: Sequence[ScriptLine], items_per_line: Sequence[int],
                    placeholder_samples: Sequence[int]) -> ProjectMix:
        """The whole project on one time axis: rendered lines with their audio, the others as silent spans of
        `placeholder_samples[i]` (the timeline's estimate), so a line's audio plays where its clip is."""
        pieces: list[np.ndarray] = []
        spans: list[tuple[int, int]] = []
        rendered: list[bool] = []
        position = 0
        for line, n_items, placeholder in zip(lines, items_per_line, placeholder_samples, strict=True):
            render = self.current_render(line)
            if render is not None and n_items and render.complete(n_items):
                audio = [r.samples for r in render.ordered()]
                length = sum(len(a) for a in audio)
                pieces.extend(audio)
                rendered.append(True)
            else:
                length = max(0, int(placeholder))
                rendered.append(False)
            spans.append((position, position + length))
            position += length
        return ProjectMix(pieces, spans, rendered)

    # --- jobs -------------------------------------------------------------------------------------------

    def start(self, job: RenderJob, segments: Sequence[PlannedSegment], lines: Sequence[ScriptLine], *,
              full: bool) -> list[PlannedSegment]:
        """Begin a job over `segments` (the whole script, or one line's). Returns the segments to render:
        a locked line whose audio is in memory keeps it. `job.segments` is set to them."""
        line_ids = {s.index: lines[s.line - 1].id for s in segments}
        first_of_line: dict[int, int] = {}
        ordinals = {s.index: s.index - first_of_line.setdefault(s.line, s.index) for s in segments}
        to_render = []
        for s in segments:
            line = lines[s.line - 1]
            previous = self.lines.get(line.id)
            kept = (s.locked and previous is not None and previous.text == line.text and previous.take == s.take
                    and ordinals[s.index] in previous.results and previous.results[ordinals[s.index]].state == DONE)
            if not kept:
                to_render.append(s)
        by_id = {line.id: line for line in lines}
        for line_id in set(line_ids.values()):
            line = by_id[line_id]
            previous = self.lines.get(line_id)
            if (previous is None or previous.text != line.text or previous.take != line.state.take
                    or not line.state.locked):
                self.lines[line_id] = LineRender(line.text, take=line.state.take)
        for s in to_render:
            render = self.lines[line_ids[s.index]]
            render.states[ordinals[s.index]] = SegmentState.QUEUED
            render.results.pop(ordinals[s.index], None)
        job.segments = list(to_render)
        self.active = ActiveJob(
            job=job, full=full, segments={s.index: s for s in segments}, line_ids=line_ids, ordinals=ordinals,
            progress=RenderProgress(to_render),
            order=[s.index for s in to_render],
            # Kept (locked) segments are not streamed: the mix is rebuilt in order when the job ends.
            rebuild_at_end=len(to_render) != len(segments),
        )
        return to_render

    def start_detached(self, job: RenderJob, context: object) -> None:
        """A job outside the script (rendering a designed voice's reference clip): nothing in the lines
        or the mix changes; `context` comes back in the JobEnd."""
        self.active = ActiveJob(job=job, full=False, segments={}, line_ids={}, ordinals={},
                                progress=RenderProgress([]), detached=context)

    def _render_of(self, index: int) -> LineRender | None:
        active = self.active
        line_id = active.line_ids.get(index) if active else None
        return None if line_id is None else self.lines.get(line_id)

    def segment_started(self, job_id: int, index: int) -> PlannedSegment | None:
        if not self.is_current(job_id) or index not in self.active.segments:
            return None
        render = self._render_of(index)
        if render is not None:
            render.states[self.active.ordinals[index]] = SegmentState.RENDERING
        return self.active.segments[index]

    def chunk(self, job_id: int, index: int, samples: np.ndarray) -> list[MixPiece]:
        """A streamed chunk: returned for the mix now when its segment is next in script order."""
        active = self.active
        if not self.is_current(job_id) or index not in active.segments:
            return []
        if active.order and active.order[0] == index:
            active.streamed.add(index)
            if active.stream_start is None:
                active.stream_start = active.mix_length
            active.mix_length += len(samples)
            return [MixPiece(samples, None)]
        return []  # ahead of its turn: it joins the mix whole when its predecessors are in

    def segment_finished(self, job_id: int, result: SegmentResult) -> list[MixPiece]:
        """Record a finished segment; returns the pieces that join the mix now, in script order.

        A piece with `segment` set closes a segment (its samples are what was not streamed yet)."""
        active = self.active
        index = result.segment.index
        if not self.is_current(job_id) or index not in active.segments:
            return []
        render = self._render_of(index)
        if render is not None:
            ordinal = active.ordinals[index]
            render.results[ordinal] = result
            render.states[ordinal] = (SegmentState.FAILED if result.state == FAILED
                                      else SegmentState.CACHED if result.cached else SegmentState.DONE)
            self._note_warnings(active.line_ids[index], result, render)
        active.progress.finished(index, result.seconds_to_render, result.cached)
        active.held[index] = result
        pieces: list[MixPiece] = []
        while active.order and active.order[0] in active.held:
            head = active.order.pop(0)
            done = active.held.pop(head)
            streamed = head in active.streamed
            start = active.stream_start if streamed and active.stream_start is not None else active.mix_length
            active.stream_start = None
            if done.state != DONE or done.samples is None:
                if streamed:
                    active.rebuild_at_end = True  # its partial audio is in the mix
                continue
            # The head streamed its chunks already; what remains is only its boundary (an empty piece).
            samples = np.zeros(0, np.float32) if streamed else done.samples
            active.mix_length += len(samples)
            pieces.append(MixPiece(samples, done.segment, done, start=start, end=active.mix_length))
        return pieces

    def _note_warnings(self, line_id: int, result: SegmentResult, render: LineRender) -> None:
        notes = []
        if not result.emotion_applied:
            notes.append(f"the emotion {result.segment.emotion!r} is not applied by this voice's model")
        if result.warning:
            notes.append(result.warning)
        if notes:
            self.warnings[line_id] = "; ".join(notes)
        elif not any(not r.emotion_applied or r.warning for r in render.results.values()):
            self.warnings.pop(line_id, None)

    def eta_text(self) -> str:
        eta = self.active.progress.eta_seconds() if self.active else None
        return "" if eta is None else f" about {eta:.0f} s left"

    def job_finished(self, job_id: int, outcome: JobOutcome) -> JobEnd | None:
        """Close the job; says what the window should do next (export, show a message...)."""
        if not self.is_current(job_id):
            return None
        active = self.active
        self.active = None
        self.last_outcome = outcome
        if outcome.models:
            self.model_info = next(reversed(outcome.models.values()))
        for render in self.lines.values():
            for ordinal, state in list(render.states.items()):
                if state in (SegmentState.QUEUED, SegmentState.RENDERING):
                    render.states[ordinal] = SegmentState.STALE
        if active.detached is not None:
            return JobEnd("detached", outcome.error or "", results=list(outcome.results), context=active.detached)
        seconds = time.monotonic() - active.started
        cached = sum(1 for r in outcome.results if r.cached)
        summary = f"Rendered {count(len(outcome.results), 'segment')} in {seconds:.1f} s ({cached} from cache)"
        if outcome.error:
            return JobEnd("error", outcome.error, show_mix=active.rebuild_at_end)
        if outcome.cancelled:
            return JobEnd("cancelled", f"Render stopped after {count(len(outcome.results), 'segment')}",
                          show_mix=active.rebuild_at_end)
        failed = [r for r in outcome.results if r.state == FAILED]
        if failed:
            first = failed[0]
            return JobEnd("failed", f"{count(len(failed), 'segment')} failed (line {first.segment.line}: "
                                    f"{first.error}); nothing was exported", show_mix=True)
        if not active.full:
            return JobEnd("line", summary, show_mix=True)
        every = []
        for index in sorted(active.segments):
            render = self.lines.get(active.line_ids[index])
            result = render.results.get(active.ordinals[index]) if render else None
            if result is None:
                return JobEnd("incomplete", "Some segments have no audio; nothing was exported", show_mix=True)
            every.append(result)
        return JobEnd("export", summary, results=every, show_mix=active.rebuild_at_end)

    # --- audio that stays -----------------------------------------------------------------------------

    def begin_probe(self, job: RenderJob, lines: Sequence[ScriptLine]) -> None:
        """A cache lookup for the project just opened; a later one (another project) replaces it."""
        self.probe_id = job.job_id
        # What each line said when the lookup was planned: a line edited meanwhile takes nothing.
        self._probed = {number: (line.id, line.text, line.state.take) for number, line in enumerate(lines, start=1)}

    def restore(self, job_id: int, results: Sequence[SegmentResult], lines: Sequence[ScriptLine],
                items_per_line: Sequence[int]) -> int:
        """Take results found in the cache for a reopened project. A line shows as done only when every
        one of its segments was found (a line half in the cache is still to render). Returns the lines
        restored."""
        if job_id != self.probe_id:
            return 0  # a lookup for a project no longer open
        self.probe_id = None
        by_line: dict[int, list[SegmentResult]] = {}
        for result in results:
            by_line.setdefault(result.segment.line, []).append(result)
        restored = 0
        for number, found in by_line.items():
            if not (1 <= number <= len(lines)) or len(found) != items_per_line[number - 1]:
                continue
            line = lines[number - 1]
            if self._probed.get(number) != (line.id, line.text, line.state.take):
                continue  # edited, moved or given another take since the lookup was planned
            if self.current_render(line) is not None:
                continue  # rendered in this window since: newer than what the cache offers
            render = LineRender(line.text, take=line.state.take)
            first = min(r.segment.index for r in found)
            for result in sorted(found, key=lambda r: r.segment.index):
                ordinal = result.segment.index - first
                render.results[ordinal] = result
                render.states[ordinal] = SegmentState.CACHED if result.segment.kind == "speech" else SegmentState.DONE
            self.lines[line.id] = render
            restored += 1
        return restored
