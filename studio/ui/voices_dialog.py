"""The Voices dialog: the voice library on the left, the project's cast on the right."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from studio.audio.buffers import GrowingAudio
from studio.audio.playback import PlaybackUnavailable, Player
from studio.core.project import CastEntry, Project
from studio.core.tags import analyse_lines
from studio.core.voice import VoiceError, VoiceSpec
from studio.core.voice_library import VoiceLibrary, VoiceLibraryError, VoiceProfile, profile_file_path
from studio.session.checkpoints import MODEL_TYPE_LABELS, installed_checkpoints
from studio.ui.profile_editor import (  # noqa: F401 (ProfileEditor is part of this dialog's API)
    KIND_LABELS,
    ModelChoice,
    ProfileEditor,
    editor_kind,
    model_name,
)
from studio.ui.render_settings import DEFAULT_CAST_NAME

PREVIEW_SENTENCE = "Hello! This is how I sound when I read your script."
_UNASSIGNED = "\x00unassigned"  # the data of a cast row's "choose a voice" entry


def script_voice_names(script: str) -> tuple[list[str], bool]:
    """The names used in [voice: X] tags, in the order they first appear (broken lines are skipped), and
    whether any speech comes before a [voice: ...] tag (it needs the default voice)."""
    names: list[str] = []
    untagged = False
    for analysis in analyse_lines(script):
        for item in analysis.items or ():
            if getattr(item, "kind", "") != "speech":
                continue
            if item.voice is None:
                untagged = True
            elif item.voice not in names:
                names.append(item.voice)
    return names, untagged


class VoicesDialog(QDialog):
    """Manage the library and map the project's cast names to voices.

    This dialog is the one place where the project's voices are chosen: the cast (one row per name used in
    the script's [voice: ...] tags, filled in when the dialog opens) and the voice that speaks lines before
    any [voice: ...] tag (`project.render.voice`, a cast name). Render Settings only shows that choice.
    """

    design_then_clone_requested = Signal(str, str)  # profile id of a designed voice, sample sentence
    preview_requested = Signal(str, str)  # profile id, the sentence to render

    def __init__(self, project: Project, library: VoiceLibrary, parent=None, *, script: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Voices")
        self.project = project
        self.library = library
        self.script = project.script if script is None else script
        self.changed = False
        self.preview_audio: GrowingAudio | None = None  # the last rendered preview, kept even without a device
        self.preview_player: Player | None = None

        self.profiles = QListWidget()
        self.profiles.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.profiles.itemDoubleClicked.connect(lambda _item: self.edit_selected())
        library_box = QVBoxLayout()
        library_box.addWidget(QLabel("<b>Voice library</b>"))
        library_box.addWidget(self.profiles)
        preview_row = QHBoxLayout()
        self.preview_edit = QLineEdit(PREVIEW_SENTENCE)
        self.preview_edit.setToolTip("The sentence Preview renders in the selected voice")
        self.preview_button = QPushButton("▶ &Preview")
        self.preview_button.setToolTip("Render the sentence in the selected voice and play it")
        self.preview_button.clicked.connect(self.preview_selected)
        preview_row.addWidget(self.preview_edit, 1)
        preview_row.addWidget(self.preview_button)
        library_box.addLayout(preview_row)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        library_box.addWidget(self.status_label)
        new_row = QHBoxLayout()
        for kind, label in KIND_LABELS.items():
            short = label.split(" (")[0].split(" ")[0]
            button = QPushButton(f"New {short.lower()}…")
            button.setToolTip(f"New voice: {label}")
            button.clicked.connect(lambda _=False, k=kind: self.new_profile_dialog(k))
            new_row.addWidget(button)
        library_box.addLayout(new_row)
        row = QHBoxLayout()
        for text, slot in (("&Edit…", self.edit_selected), ("Model…", self.model_dialog),
                           ("Design → clone…", self.design_then_clone_dialog), ("Import…", self.import_dialog),
                           ("Export…", self.export_dialog), ("Delete", self.delete_selected)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            row.addWidget(button)
        library_box.addLayout(row)

        self.cast = QTableWidget(0, 2)
        self.cast.setHorizontalHeaderLabels(["Cast name", "Voice"])
        self.cast.horizontalHeaderItem(0).setToolTip("The name used in [voice: Name] tags")
        self.cast.setColumnWidth(0, 160)
        self.cast.horizontalHeader().setStretchLastSection(True)
        self.cast.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.default_combo = QComboBox()
        self.default_combo.setToolTip("The one place the project's default voice is set (Render Settings shows it)")
        self.default_combo.currentIndexChanged.connect(self._on_default_changed)
        cast_box = QVBoxLayout()
        cast_box.addWidget(QLabel("<b>This project's cast</b>"))
        cast_box.addWidget(self.cast)
        self.cast_note = QLabel("")
        self.cast_note.setWordWrap(True)
        cast_box.addWidget(self.cast_note)
        cast_buttons = QHBoxLayout()
        add = QPushButton("Add cast member…")
        add.clicked.connect(self.add_cast_member_dialog)
        remove = QPushButton("Remove")
        remove.clicked.connect(self.remove_selected_cast_member)
        edit_voice = QPushButton("Edit voice…")
        edit_voice.setToolTip("Edit the selected cast member's voice (a library voice, or one kept in the project)")
        edit_voice.clicked.connect(self.edit_selected_cast_member)
        cast_buttons.addWidget(add)
        cast_buttons.addWidget(edit_voice)
        cast_buttons.addWidget(remove)
        cast_box.addLayout(cast_buttons)
        default_row = QFormLayout()
        default_row.addRow("&Default voice (lines before any [voice: …] tag):", self.default_combo)
        cast_box.addLayout(default_row)

        columns = QHBoxLayout()
        columns.addLayout(library_box, 1)
        columns.addLayout(cast_box, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addLayout(columns)
        layout.addWidget(buttons)
        self.resize(1000, 560)
        self.pending: list[str] = []  # script voice names not yet in the cast, shown as rows to assign
        self.default_pending: str | None = None  # the row waiting for the default voice, if any
        self.auto_cast = self.fill_cast_from_script()
        self.reload()

    # --- library ------------------------------------------------------------------------------------------

    def reload(self, select: str | None = None) -> None:
        """Re-read the library and the cast; `select` (a profile id) or the selected profile stays selected."""
        keep = select
        if keep is None and self.profiles.currentItem() is not None:
            keep = self.profiles.currentItem().data(Qt.ItemDataRole.UserRole)
        self.profiles.clear()
        for profile in self.library.profiles():
            model = model_name(profile.voice.model)
            item = QListWidgetItem(f"{profile.name}  ({profile.kind_label}, {model})")
            item.setData(Qt.ItemDataRole.UserRole, profile.id)
            automatic = f"the best installed {MODEL_TYPE_LABELS[profile.voice.model_type]} model"
            item.setToolTip(f"{profile.voice.describe()}\nRenders with: {profile.voice.model or automatic}")
            self.profiles.addItem(item)
            if profile.id == keep:
                self.profiles.setCurrentItem(item)
        self._reload_cast()

    def profile_ids(self) -> list[str]:
        """The profile ids the list shows, top to bottom."""
        return [self.profiles.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.profiles.count())]

    def select_profile(self, profile_id: str) -> None:
        for index, pid in enumerate(self.profile_ids()):
            if pid == profile_id:
                self.profiles.setCurrentRow(index)

    def selected_profile(self) -> VoiceProfile | None:
        item = self.profiles.currentItem()
        return self.library.get(item.data(Qt.ItemDataRole.UserRole)) if item else None

    def create_profile(self, name: str, voice: VoiceSpec, seed: int | None = None) -> VoiceProfile | None:
        try:
            profile = self.library.add(name, voice, seed=seed)
        except (VoiceLibraryError, VoiceError) as exc:
            QMessageBox.warning(self, "Voices", str(exc))
            return None
        self.reload()
        self._show_clip_warnings(profile)
        return profile

    def set_profile_model(self, profile: VoiceProfile, model: str | None) -> VoiceProfile | None:
        try:
            updated = self.library.set_model(profile.id, model)
        except VoiceLibraryError as exc:
            QMessageBox.warning(self, "Voices", str(exc))
            return None
        self.changed = True  # the project's render changes (its voices' models), so it asks to be saved
        self.reload()
        return updated

    def model_dialog(self) -> None:
        """Choose the checkpoint the selected voice renders with."""
        profile = self.selected_profile()
        if profile is None:
            QMessageBox.information(self, "Voices", "Select a voice in the library first.")
            return
        dialog = QDialog(self)
        dialog.setWindowTitle(f"Model for {profile.name}")
        choice = ModelChoice(profile.voice.model_type, installed_checkpoints(), profile.voice.model, dialog)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(QLabel(f"{profile.name} ({profile.voice.describe()}) renders with:"))
        layout.addWidget(choice)
        layout.addWidget(buttons)
        self.model_choice_dialog = dialog
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.set_profile_model(profile, choice.model)

    def _show_clip_warnings(self, profile: VoiceProfile) -> None:
        if profile.warnings:
            QMessageBox.warning(self, "Voices", f"Saved {profile.name}, but check its clips:\n\n"
                                + "\n\n".join(profile.warnings))

    def new_profile_dialog(self, kind: str) -> None:
        editor = ProfileEditor(kind, self)
        if editor.exec() == QDialog.DialogCode.Accepted:
            profile = self.create_profile(editor.name_edit.text(), editor.result_voice, editor.seed)
            if profile is not None:
                self.select_profile(profile.id)

    def edit_selected(self) -> None:
        """Edit the selected profile: name, identity or speaker, clips and transcripts, seed, model."""
        profile = self.selected_profile()
        if profile is None:
            QMessageBox.information(self, "Edit voice", "Select a voice in the library first.")
            return
        editor = ProfileEditor(editor_kind(profile), self, profile=profile)
        self.profile_editor = editor
        if editor.exec() == QDialog.DialogCode.Accepted:
            self.edit_profile(profile, editor.name_edit.text(), editor.result_voice, editor.seed)

    def edit_profile(self, profile: VoiceProfile, name: str, voice: VoiceSpec,
                     seed: int | None = None) -> VoiceProfile | None:
        """Save an edit to the library (same id, so the cast follows); failures are shown, never raised."""
        try:
            updated = self.library.update(profile.id, name, voice, seed=seed)
        except (VoiceLibraryError, VoiceError, OSError) as exc:
            QMessageBox.warning(self, "Edit voice", f"{profile.name} was not changed: {exc}")
            return None
        if any(e.profile == profile.id for e in self.project.cast.values()):
            self.changed = True  # the project's render changes with its voice, so it asks to be saved
        self.reload(select=updated.id)
        self._show_clip_warnings(updated)
        self.status_label.setText(f"Saved {updated.name}.")
        return updated

    # --- preview ---------------------------------------------------------------------------------------------

    def preview_selected(self) -> None:
        """Ask the window to render the preview sentence in the selected voice (it answers with
        `play_preview` or `preview_failed`)."""
        profile = self.selected_profile()
        if profile is None:
            QMessageBox.information(self, "Preview", "Select a voice in the library first.")
            return
        sentence = self.preview_edit.text().strip()
        if not sentence:
            QMessageBox.warning(self, "Preview", "Preview sentence: type a sentence to hear the voice say.")
            return
        self.status_label.setText(f"Rendering a preview of {profile.name}…")
        self.preview_requested.emit(profile.id, sentence)

    def preview_failed(self, name: str, reason: str) -> None:
        self.status_label.setText(f"Could not preview {name}: {reason}")

    def play_preview(self, name: str, samples, sample_rate: int) -> None:
        """Keep the rendered preview and play it; without an output device, say so and keep the audio."""
        self._close_player()
        audio = GrowingAudio(sample_rate, capacity=max(1, len(samples)))
        audio.append(samples)
        self.preview_audio = audio
        seconds = len(audio) / sample_rate
        try:
            player = Player(audio)
        except (PlaybackUnavailable, OSError) as exc:
            self.status_label.setText(f"Rendered {name} ({seconds:.1f} s), but no output device: {exc}")
            return
        player.rendering_done = True
        self.preview_player = player
        player.play()
        self.status_label.setText(f"Playing {name} ({seconds:.1f} s).")

    def _close_player(self) -> None:
        if self.preview_player is not None:
            self.preview_player.close()
            self.preview_player = None

    def done(self, result: int) -> None:
        self._close_player()
        super().done(result)

    def import_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Import voice", "", "Voice profiles (*.qvoice)")
        if name:
            self.import_profile(Path(name))

    def import_profile(self, source: Path) -> VoiceProfile | None:
        try:
            profile = self.library.import_file(source)
        except VoiceLibraryError as exc:
            QMessageBox.warning(self, "Import voice", str(exc))
            return None
        self.reload()
        self._show_clip_warnings(profile)
        return profile

    def export_dialog(self) -> None:
        profile = self.selected_profile()
        if profile is None:
            return
        # Replacing a file is asked below, about the name the export really writes (with .qvoice).
        name, _ = QFileDialog.getSaveFileName(self, "Export voice", f"{profile.name}.qvoice",
                                              "Voice profiles (*.qvoice)",
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if name:
            self.export_profile(profile, Path(name))

    def export_profile(self, profile: VoiceProfile, target: Path) -> Path | None:
        """Export, asking before an existing file is replaced; failures are shown, never raised."""
        target = profile_file_path(target)
        overwrite = False
        if target.exists():
            answer = QMessageBox.question(self, "Export voice", f"{target} already exists. Replace it?")
            if answer != QMessageBox.StandardButton.Yes:
                return None
            overwrite = True
        try:
            return self.library.export(profile.id, target, overwrite=overwrite)
        except VoiceLibraryError as exc:
            QMessageBox.warning(self, "Export voice", str(exc))
            return None

    def delete_selected(self) -> None:
        profile = self.selected_profile()
        if profile is None:
            return
        users = [n for n, e in self.project.cast.items() if e.profile == profile.id]
        if users:
            QMessageBox.warning(self, "Delete voice", f"{profile.name} is used by the cast ({', '.join(users)}).")
            return
        self.library.delete(profile.id)
        self.reload()

    def design_then_clone_dialog(self) -> None:
        profile = self.selected_profile()
        if profile is None or profile.voice.kind != "design":
            QMessageBox.information(self, "Design → clone", "Select a designed voice first.")
            return
        sentence, ok = QInputDialog.getText(
            self, "Design → clone",
            "Sentence to render with the designed voice (it becomes the clone's reference):",
            text="The quick brown fox jumps over the lazy dog, and then it rests a while.",
        )
        if ok and sentence.strip():
            self.design_then_clone_requested.emit(profile.id, sentence.strip())

    # --- cast ------------------------------------------------------------------------------------------------

    def fill_cast_from_script(self) -> dict[str, str]:
        """Offer every name of the script's [voice: ...] tags as a cast member: a name with exactly one
        library profile of that name is cast with it; the others wait in the table for a voice.
        Returns the names cast here (name -> profile id)."""
        cast_now: dict[str, str] = {}
        self.pending = []
        profiles = self.library.profiles()
        names, untagged = script_voice_names(self.script)
        # Lines before any [voice: ...] tag need the default voice: with none chosen yet, a "Narrator" row
        # waits for it (choosing its voice makes it the default).
        self.default_pending = None
        if untagged and self.project.render.voice is None:
            self.default_pending = DEFAULT_CAST_NAME
            if DEFAULT_CAST_NAME not in names:
                names.insert(0, DEFAULT_CAST_NAME)
        for name in names:
            if name in self.project.cast:
                continue
            same = [p for p in profiles if p.name.strip().lower() == name.strip().lower()]
            if len(same) == 1:
                self.project.cast[name] = CastEntry(profile=same[0].id)
                cast_now[name] = same[0].id
            else:
                self.pending.append(name)
        if cast_now:
            self.changed = True
        if self.project.render.voice is None:
            if self.default_pending in self.project.cast:
                self.project.render.voice = self.default_pending
                self.changed = True
            elif self.default_pending is None and cast_now:
                self.project.render.voice = next(iter(cast_now))
        return cast_now

    def _reload_cast(self) -> None:
        self.cast.setRowCount(0)
        profiles = self.library.profiles()
        self.pending = [n for n in self.pending if n not in self.project.cast]
        rows = [(name, entry) for name, entry in self.project.cast.items()] + [(n, None) for n in self.pending]
        for name, entry in rows:
            row = self.cast.rowCount()
            self.cast.insertRow(row)
            name_item = QTableWidgetItem(name)
            name_item.setFlags(name_item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            if entry is None:
                name_item.setToolTip("Speaks the lines before any [voice: …] tag: choose its voice"
                                     if name == self.default_pending and name not in script_voice_names(self.script)[0]
                                     else f"Used in the script's [voice: {name}] tags: choose its voice")
                font = name_item.font()
                font.setItalic(True)
                name_item.setFont(font)
            self.cast.setItem(row, 0, name_item)
            combo = QComboBox()
            if entry is None:
                combo.addItem("— choose a voice for this name —", _UNASSIGNED)
            elif entry.voice is not None:
                combo.addItem(f"(in the project) {entry.voice.describe()}", None)
            for profile in profiles:
                combo.addItem(f"{profile.name} ({profile.kind_label})", profile.id)
            if entry is not None and entry.profile is not None:
                index = combo.findData(entry.profile)
                if index < 0:
                    combo.addItem(f"missing profile {entry.profile}", entry.profile)
                    index = combo.count() - 1
                combo.setCurrentIndex(index)
            combo.currentIndexChanged.connect(lambda _i, n=name, c=combo: self._on_cast_combo_changed(n, c))
            self.cast.setCellWidget(row, 1, combo)
        notes = []
        if self.auto_cast:
            notes.append("Cast from the script's [voice: …] names (library voices of the same name): "
                         + ", ".join(self.auto_cast) + ".")
        if self.pending:
            waiting = [f"{n} (lines before any [voice: …] tag)" if n == self.default_pending else n
                       for n in self.pending]
            notes.append("From the script, still without a voice: " + ", ".join(waiting)
                         + ". Choose a voice for each.")
        self.cast_note.setText(" ".join(notes))
        self.default_combo.blockSignals(True)
        self.default_combo.clear()
        if self.project.render.voice is None:
            self.default_combo.addItem("— none chosen —", None)
        for name in self.project.cast:
            self.default_combo.addItem(name, name)
        self.default_combo.setCurrentIndex(max(0, self.default_combo.findData(self.project.render.voice)))
        self.default_combo.blockSignals(False)

    def _on_cast_combo_changed(self, name: str, combo: QComboBox) -> None:
        profile_id = combo.currentData()
        if profile_id is not None and profile_id != _UNASSIGNED:
            self.set_cast_member(name, profile_id)

    def _on_default_changed(self, _index: int) -> None:
        self.set_default_voice(self.default_combo.currentData())

    def set_default_voice(self, name: str | None) -> None:
        """Which cast member speaks lines before any [voice: ...] tag (the project's render.voice)."""
        if name is None or name not in self.project.cast or name == self.project.render.voice:
            return
        self.project.render.voice = name
        self.changed = True
        self._reload_cast()

    def set_cast_member(self, name: str, profile_id: str) -> None:
        self.project.cast[name] = CastEntry(profile=profile_id)
        # The first voice cast becomes the default, unless the row for untagged lines is still waiting.
        if self.project.render.voice is None and self.default_pending in (None, name):
            self.project.render.voice = name
        self.changed = True
        self._reload_cast()

    def add_cast_member_dialog(self) -> None:
        profile = self.selected_profile()
        if profile is None:
            QMessageBox.information(self, "Add cast member", "Select a voice in the library first.")
            return
        name, ok = QInputDialog.getText(self, "Add cast member", "Cast name (as written in [voice: Name]):",
                                        text=profile.name)
        if ok and name.strip():
            self.set_cast_member(name.strip(), profile.id)

    def edit_selected_cast_member(self) -> None:
        row = self.cast.currentRow()
        if row < 0:
            QMessageBox.information(self, "Edit voice", "Select a cast member first.")
            return
        self.edit_cast_member(self.cast.item(row, 0).text())

    def edit_cast_member(self, name: str) -> None:
        """Edit a cast member's voice: its library profile, or the voice kept in the project file."""
        entry = self.project.cast.get(name)
        if entry is None:
            QMessageBox.information(self, "Edit voice", f"{name}: choose a voice for it first.")
            return
        if entry.profile is not None:
            self.select_profile(entry.profile)
            if self.selected_profile() is None or self.selected_profile().id != entry.profile:
                QMessageBox.warning(self, "Edit voice", f"{name}: its voice profile {entry.profile} is not in the "
                                                        "library; choose another voice for it.")
                return
            self.edit_selected()
            return
        embedded = VoiceProfile(id="", name=name, voice=entry.voice)
        editor = ProfileEditor(editor_kind(embedded), self, profile=embedded)
        editor.setWindowTitle(f"Edit {name}'s voice (kept in the project)")
        editor.name_edit.setReadOnly(True)  # the cast name is the one in the script's tags
        editor.seed_spin.setEnabled(False)  # a voice kept in the project renders with the project seed
        self.profile_editor = editor
        if editor.exec() == QDialog.DialogCode.Accepted:
            self.project.cast[name] = CastEntry(voice=editor.result_voice)
            self.changed = True
            self._reload_cast()

    def remove_selected_cast_member(self) -> None:
        row = self.cast.currentRow()
        if row < 0:
            return
        name = self.cast.item(row, 0).text()
        if name not in self.project.cast:
            return  # a script name waiting for a voice: it stays offered while the script uses it
        self.project.cast.pop(name, None)
        if self.project.render.voice == name:
            self.project.render.voice = next(iter(self.project.cast), None)
        if name in script_voice_names(self.script)[0]:
            self.pending.append(name)
        self.changed = True
        self._reload_cast()
