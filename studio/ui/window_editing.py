"""The main window's editing of the script through the timeline and palette: tags, moves, locks, takes, and
the clip records the timeline draws for each line (ClipInfo: text, voice, chips, state, warnings).

Every edit is an undo command over a core operation (studio.ui.commands)."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication

from studio.core.instruct import delivery_directives
from studio.core.pace import PACE_KEY
from studio.core.plan import expected_seconds, first_unknown_voice
from studio.core.tags import KnownEmotions, PauseItem, SpeechItem, tag_kind
from studio.engine.render import FAILED
from studio.session.pipeline import SAMPLE_RATE
from studio.ui.clip_info import Chip, ClipInfo, quick_fixes_for
from studio.ui.commands import (
    LineStateCommand,
    MoveLineCommand,
    PlaceTagCommand,
    QuickFixCommand,
    RemoveTagCommand,
)


class EditActions:
    """Mixed into MainWindow."""

    # --- the timeline's clips ------------------------------------------------------------------------

    def _clip_for(self, index: int, line, analysis) -> ClipInfo:
        state_before = analysis.state_before
        chips: list[Chip] = []
        tags = []
        # A broken line renders nothing, but what parsed before its error is still its own: its voice,
        # its chips (removable), its warnings; never the previous line's.
        speech = [i for i in analysis.valid_items if isinstance(i, SpeechItem)]
        first_text_column = speech[0].column if speech else None
        emotion_set_before_text = False
        for tag in analysis.valid_tags:
            kind = tag_kind(tag.content)
            text = line.text[tag.column - 1 : tag.end_column]
            tags.append((tag.column - 1, text))
            if kind in ("emotion", "directive"):
                label = tag.content.strip()
                if kind == "emotion" and ":" in label:
                    label = label.partition(":")[2].strip()
                if kind == "emotion" and (first_text_column is None or tag.column < first_text_column):
                    emotion_set_before_text = True
                chips.append(Chip(label, column=tag.column - 1, tag_text=text))
        # An emotion carried over from an earlier line is shown (outlined) while it still applies to
        # this line's first words, which is what makes persistence visible on the timeline.
        if state_before.emotion and speech and not emotion_set_before_text:
            chips.insert(0, Chip(state_before.emotion, inherited=True))
        voice = speech[0].voice if speech else analysis.reached.voice
        voice = voice or self.project.render.voice
        render = self.session.current_render(line)
        current = render is not None
        pieces: list[tuple[str, float]] = []
        if current and render.results and len(render.results) == len(analysis.items):
            pieces = [(r.segment.kind, r.n_samples / SAMPLE_RATE) for r in render.ordered()]
            estimated = False
        else:
            for item in analysis.items:
                if isinstance(item, PauseItem):
                    pieces.append(("pause", item.seconds))
                else:
                    pieces.append(("speech", max(0.6, expected_seconds(item.text))))
            estimated = True
            if analysis.error is not None:
                # A broken line renders nothing yet, but it is a line of the script: it keeps an estimated
                # place on the timeline (from its words) so it can be seen, clicked and fixed.
                pieces = [("speech", max(0.6, expected_seconds(" ".join(i.text for i in speech) or line.text)))]
        message = ""
        if analysis.error is not None:
            # The line's number from its position now (the analysis may predate lines added above it).
            state, message = "error", f"line {index + 1}, column {analysis.error.column}: {analysis.error.reason}"
        elif not analysis.items:
            state = "empty"
        elif (unknown := first_unknown_voice(speech, self.project.cast)) is not None:
            state, message = "error", f"line {index + 1}: voice {unknown.voice!r} is not in the project's cast"
        elif line.state.locked:
            state = "locked"
        elif current and render.states:
            state = render.overall().value
            failures = [r.error for r in render.results.values() if r.state == FAILED and r.error]
            message = "; ".join(failures)
        else:
            state = "stale"
        warning = self.session.warnings.get(line.id) if current else None
        if warning is None:
            warning = self._capability_warning(speech)
        tag_problems = analysis.warnings
        message = "; ".join(m for m in (message, *(f"line {index + 1}, column {w.column}: {w.reason}"
                                                   for w in tag_problems), warning) if m)
        return ClipInfo(
            index=index,
            line_id=line.id,
            text=" ".join(i.text for i in speech)
            or " ".join(f"(pause {i.seconds:g} s)" for i in analysis.items if isinstance(i, PauseItem)),
            voice=voice,
            chips=chips,
            pieces=pieces,
            estimated=estimated,
            state=state,
            message=message,
            warning=bool(warning or tag_problems),
            locked=line.state.locked,
            take=line.state.take,
            takes=line.state.takes,
            tags=tags,
            quick_fixes=quick_fixes_for(tag_problems),
        )

    def _known_emotions(self) -> KnownEmotions:
        """The palette's emotions and those the cast's cloned voices have clips for; the script editor's
        check follows. Rebuilt once per refresh (the cast voices are looked up anew), not once per line."""
        palette_known = self.palette.known_emotions
        voices = getattr(self, "_cast_voices", None) or {}
        key = (id(palette_known), id(voices))
        cached = getattr(self, "_known_emotions_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        names = list(palette_known)
        for voice in voices.values():
            names += [name for name, _clip, _text in getattr(voice, "emotion_refs", ())]
        known = KnownEmotions(names)
        self._known_emotions_cache = (key, known)
        self.editor.set_known_emotions(known)
        return known

    def _capability_warning(self, speech: list[SpeechItem]) -> str | None:
        """Before rendering: an emotion that the segment's voice cannot deliver, said up front."""
        voices = self._cast_voices
        for item in speech:
            voice = voices.get(item.voice if item.voice is not None else self.project.render.voice)
            if voice is None:
                continue
            directives = delivery_directives(item.directives)
            directives.pop(PACE_KEY, None)  # a cloned voice's pace is applied by stretching its audio
            if voice.kind == "clone" and directives:
                named = ", ".join(f"{key}: {value}" for key, value in directives.items())
                return f"a cloned voice's model takes no instruct, so these are not applied: {named}"
            if item.emotion is None:
                continue
            if voice.kind == "clone" and voice.emotion_ref(item.emotion) is None:
                return (f"a cloned voice takes its delivery from a reference clip, and this one has no clip "
                        f"for {item.emotion!r}: the emotion will not be applied")
        return None

    # --- editing ----------------------------------------------------------------------------------------

    def apply_tag(self, line: int, tag: str) -> None:
        """Place a tag at the start of a line (a palette drop on a clip, a palette double-click or shortcut).

        An emotion replaces the emotion tag(s) the line starts with instead of stacking on them; one
        undo step, with exactly one space between the tags and the text."""
        if not (0 <= line < len(self.model)):
            return
        command = PlaceTagCommand(self.model, line, 0, tag)
        if not command.changed:
            self.statusBar().showMessage(f"Line {line + 1} already starts with {tag}", 3000)
            return
        self.undo_stack.push(command)
        self.refresh_changed()

    def remove_tag(self, line: int, column: int, tag_text: str) -> None:
        """Remove a chip's tag, leaving no double space and nothing at the line's start or end."""
        if not (0 <= line < len(self.model)):
            return
        try:
            command = RemoveTagCommand(self.model, line, column, tag_text)
        except ValueError:
            self.statusBar().showMessage(f"Line {line + 1} has changed: {tag_text} is no longer there", 4000)
            self.refresh_changed()
            return
        self.undo_stack.push(command)
        self.refresh_changed()

    def apply_quick_fix(self, line: int, column: int, old: str, new: str) -> None:
        """Apply a clip's or the editor's suggested correction: `old` at a 0-based column becomes `new`.

        One undo step; refused (with a status message) when the text there is no longer `old`."""
        if not (0 <= line < len(self.model)):
            return
        try:
            command = QuickFixCommand(self.model, line, column, old, new)
        except ValueError:
            self.statusBar().showMessage(f"Line {line + 1} has changed since the fix was offered: "
                                         f"{old} is no longer at column {column + 1}", 4000)
            self.refresh_changed()
            return
        self.undo_stack.push(command)
        self.refresh_changed()

    def move_line(self, source: int, target: int) -> None:
        if 0 <= source < len(self.model) and 0 <= target < len(self.model) and source != target:
            self.undo_stack.push(MoveLineCommand(self.model, source, target))
            self.refresh_changed()
            self.timeline.select(target)

    def _move_current(self, delta: int) -> None:
        line = self.current_line()
        self.move_line(line, line + delta)

    def toggle_lock(self, line: int) -> None:
        if 0 <= line < len(self.model):
            state = self.model.line(line).state
            self.undo_stack.push(LineStateCommand(self.model, self.model.line(line).id, locked=not state.locked))
            self.refresh_changed()

    def choose_take(self, line: int, take: int) -> None:
        if 0 <= line < len(self.model) and self.model.line(line).state.take != take:
            self.undo_stack.push(LineStateCommand(self.model, self.model.line(line).id, take=take))
            self.refresh_changed()

    def new_take(self, line: int) -> None:
        """A new take gets a new seed; the old take stays in the cache and in the takes list."""
        if not (0 <= line < len(self.model)):
            return
        script_line = self.model.line(line)
        take = script_line.state.takes  # takes are numbered from 0: the next one is the count so far
        # The count is line state, saved with the project, so every take stays reachable after reopening.
        self.undo_stack.push(LineStateCommand(self.model, script_line.id, take=take, takes=take + 1))
        self.refresh_changed()
        self.render_line(line)

    def copy_line(self, line: int) -> None:
        if 0 <= line < len(self.model):
            QGuiApplication.clipboard().setText(self.model.line(line).text)
            self.statusBar().showMessage(f"Copied line {line + 1}", 3000)

