"""The .qtts project file: round trip, atomic save with backup, and clear errors on bad files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from studio.core import project as project_module
from studio.core.project import (
    SCHEMA_VERSION,
    BookInfo,
    CastEntry,
    LineState,
    Project,
    ProjectError,
    RenderSettings,
    dumps_project,
    load_project,
    project_from_json,
    project_to_json,
    save_project,
)
from studio.core.voice import VoiceSpec


def sample_project() -> Project:
    project = Project(
        script="[voice: Narrator]Once upon a time.\n[Whispering]Quiet now.\n[pause 1s]",
        cast={
            "Narrator": CastEntry(profile="narrator-deep"),
            "Wolf": CastEntry(profile="/voices/wolf.qvoice"),
            "Ann": CastEntry(voice=VoiceSpec.design("A bright young voice")),
            "Bob": CastEntry(voice=VoiceSpec.clone("/clips/bob.wav", None, x_vector_only=True)),
            "Eve": CastEntry(voice=VoiceSpec("clone", ref_audio="/c/eve.wav", ref_text="Hi.", model="/m/base",
                                             emotion_refs=(("Whispering", "/c/eve-w.wav", "Psst."),))),
        },
        render=RenderSettings(model="Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign", language="english", seed=42,
                              voice="Narrator"),
        lines={2: LineState(locked=True, take=3)},
    )
    project.render.generation.temperature = 0.7
    project.render.export.audio_format = "flac"
    project.render.export.loudness_lufs = -18.0
    project.render.generation.max_new_tokens = 400
    return project


def write_doc(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def valid_doc() -> dict:
    return project_to_json(sample_project())


def test_round_trip_through_disk(tmp_path):
    path = tmp_path / "story.qtts"
    save_project(sample_project(), path)
    assert load_project(path) == sample_project()


def test_saved_file_is_readable_json_with_integer_schema_version(tmp_path):
    path = tmp_path / "story.qtts"
    save_project(sample_project(), path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["schema_version"] == SCHEMA_VERSION and isinstance(doc["schema_version"], int)
    assert doc["lines"] == [{"line": 2, "locked": True, "take": 3}]


def test_export_settings_are_written_and_read_back(tmp_path):
    path = tmp_path / "story.qtts"
    project = sample_project()
    project.render.export.timestamped_copy = False
    project.render.export.subtitles = False
    save_project(project, path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["render"]["export"]["timestamped_copy"] is False and doc["render"]["export"]["subtitles"] is False
    loaded = load_project(path)
    assert loaded.render.export.timestamped_copy is False and loaded.render.export.subtitles is False


def test_files_without_the_newer_export_settings_keep_exporting_after_render_all(tmp_path):
    # Files written before the setting existed always exported after Render All: they still do.
    doc = valid_doc()
    del doc["render"]["export"]["timestamped_copy"], doc["render"]["export"]["subtitles"]
    loaded = load_project(write_doc(tmp_path / "old.qtts", doc))
    assert loaded.render.export.timestamped_copy is True and loaded.render.export.subtitles is True


def test_book_details_round_trip_and_are_absent_from_projects_that_are_no_books(tmp_path):
    assert "book" not in valid_doc()  # files of projects without them keep their shape
    project = sample_project()
    assert "acx_master" not in valid_doc()["render"]["export"]
    project.book = BookInfo(title="The Storm", author="A. Writer", cover="storm.cover.jpg")
    project.render.export.acx = True
    path = tmp_path / "book.qtts"
    save_project(project, path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["book"]["author"] == "A. Writer" and doc["render"]["export"]["acx_master"] is True
    loaded = load_project(path)
    assert loaded.book == project.book and loaded.render.export.acx


@pytest.mark.parametrize("book, field", [("The Storm", "book"), ({"title": 3}, "book.title"),
                                         ({"titel": "x"}, "book.titel")])
def test_bad_book_details_name_their_field(tmp_path, book, field):
    doc = valid_doc() | {"book": book}
    with pytest.raises(ProjectError) as caught:
        load_project(write_doc(tmp_path / "bad.qtts", doc))
    assert caught.value.field == field


def test_the_pronunciation_dictionary_round_trips_and_bad_entries_name_their_field(tmp_path):
    from studio.core.pronunciation import Pronunciation

    assert "pronunciations" not in valid_doc()
    project = sample_project()
    project.pronunciations = [Pronunciation("Nguyen", "Win"), Pronunciation("SQL", "sequel", match_case=True,
                                                                             voice="Ann", language="english")]
    path = tmp_path / "words.qtts"
    save_project(project, path)
    assert load_project(path).pronunciations == project.pronunciations
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["pronunciations"][1]["say"] = ""
    with pytest.raises(ProjectError) as caught:
        load_project(write_doc(tmp_path / "bad.qtts", doc))
    assert caught.value.field == "pronunciations[1]" and "'SQL'" in str(caught.value)


def test_default_line_states_are_not_written():
    project = sample_project()
    project.lines[1] = LineState()
    assert [entry["line"] for entry in project_to_json(project)["lines"]] == [2]


def test_minimal_document_gets_defaults():
    project = project_from_json({"schema_version": 1})
    assert project == Project()


def test_save_keeps_previous_version_as_bak(tmp_path):
    path = tmp_path / "story.qtts"
    first = sample_project()
    save_project(first, path)
    assert not (tmp_path / "story.qtts.bak").exists()
    second = sample_project()
    second.script = "Changed."
    save_project(second, path)
    assert load_project(tmp_path / "story.qtts.bak") == first
    assert load_project(path).script == "Changed."


def test_states_of_lines_past_the_end_are_not_written():
    project = sample_project()
    project.script = "One line now."
    assert project_to_json(project)["lines"] == []


def test_save_leaves_no_temp_files(tmp_path):
    path = tmp_path / "story.qtts"
    save_project(sample_project(), path)
    save_project(sample_project(), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["story.qtts", "story.qtts.bak"]


def test_failed_save_leaves_the_old_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "story.qtts"
    save_project(sample_project(), path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    changed = sample_project()
    changed.script = "never saved"
    with pytest.raises(OSError):
        save_project(changed, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["story.qtts"]


def test_saved_file_gets_normal_permissions(tmp_path):
    path = tmp_path / "story.qtts"
    save_project(sample_project(), path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# --- bad files ------------------------------------------------------------------------------------


def load_error(path: Path) -> ProjectError:
    with pytest.raises(ProjectError) as info:
        load_project(path)
    return info.value


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.qtts"
    path.write_text(dumps_project(sample_project())[:60], encoding="utf-8")
    before = path.read_bytes()
    err = load_error(path)
    assert "not valid JSON" in str(err) and str(path) in str(err)
    assert path.read_bytes() == before  # loading never rewrites


def test_empty_file(tmp_path):
    path = tmp_path / "empty.qtts"
    path.write_bytes(b"")
    assert "empty" in str(load_error(path))


def test_not_json(tmp_path):
    path = tmp_path / "x.qtts"
    path.write_text("hello", encoding="utf-8")
    assert "not valid JSON (line 1, column 1" in str(load_error(path))


def test_not_utf8(tmp_path):
    path = tmp_path / "x.qtts"
    path.write_bytes(b'{"a": "\xff"}')
    assert "bad byte at offset 7" in str(load_error(path))


def test_missing_file_and_folder(tmp_path):
    assert "no such file" in str(load_error(tmp_path / "nope.qtts"))
    assert "folder" in str(load_error(tmp_path))


def test_json_that_is_not_an_object(tmp_path):
    err = load_error(write_doc(tmp_path / "x.qtts", [1, 2]))
    assert "expected an object, got a list" in str(err)


def test_missing_schema_version(tmp_path):
    err = load_error(write_doc(tmp_path / "x.qtts", {"script": "hi"}))
    assert err.field == "schema_version"
    assert "not a Qwen3-TTS Studio project" in str(err)


@pytest.mark.parametrize(
    ("version", "reason"),
    [("1", "expected an integer, got a string"), (1.0, "expected an integer, got a number"),
     (True, "expected an integer, got a boolean"), (0, "unsupported version 0"),
     (SCHEMA_VERSION + 1, "newer Qwen3-TTS Studio")],
)
def test_wrong_schema_version(tmp_path, version, reason):
    doc = valid_doc()
    doc["schema_version"] = version
    err = load_error(write_doc(tmp_path / "x.qtts", doc))
    assert err.field == "schema_version" and reason in str(err)


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (lambda d: d.update(script=5), "script", "expected a string, got an integer"),
        (lambda d: d.update(cast=[]), "cast", "expected an object, got a list"),
        (lambda d: d["cast"].update(Wolf="wolf"), "cast.Wolf", "expected an object, got a string"),
        (lambda d: d["cast"]["Wolf"].pop("profile"), "cast.Wolf", "exactly one of 'profile' or 'voice'"),
        (lambda d: d["cast"]["Wolf"].update(voice={"kind": "design", "description": "x"}), "cast.Wolf",
         "exactly one of"),
        (lambda d: d["cast"]["Ann"].update(voice={"kind": "robot"}), "cast.Ann.voice.kind", "expected one of"),
        (lambda d: d["cast"]["Ann"].update(voice={"kind": "design"}), "cast.Ann.voice", "needs a description"),
        (lambda d: d["cast"]["Ann"].update(voice={"kind": "clone", "ref_audio": "a.wav"}), "cast.Ann.voice",
         "transcript"),
        (lambda d: d["cast"]["Wolf"].update(profile=" "), "cast.Wolf.profile", "must not be empty"),
        (lambda d: d["render"].update(seed="7"), "render.seed", "expected an integer, got a string"),
        (lambda d: d["render"].update(seed=-1), "render.seed", "must be at least 0"),
        (lambda d: d["render"].update(language=None), "render.language", "expected a string, got null"),
        (lambda d: d["render"].update(voice="Ghost"), "render.voice", "not a name in the cast"),
        (lambda d: d["render"]["generation"].update(temperature="hot"), "render.generation.temperature",
         "expected a number"),
        (lambda d: d["render"]["generation"].update(top_p=1.5), "render.generation.top_p", "between 0 and 1"),
        (lambda d: d["render"]["generation"].update(max_new_tokens=0), "render.generation.max_new_tokens",
         "at least 1"),
        (lambda d: d["render"]["generation"].update(tempreature=1), "render.generation.tempreature",
         "unknown field"),
        (lambda d: d.update(lines={}), "lines", "expected a list, got an object"),
        (lambda d: d["render"]["export"].update(format="ogg"), "render.export.format",
         "expected one of wav, flac, m4b, mp3"),
        (lambda d: d["render"]["export"].update(loudness_lufs=5), "render.export.loudness_lufs", "between -70 and 0"),
        (lambda d: d["render"]["export"].update(timestamped_copy="no"), "render.export.timestamped_copy",
         "expected true or false"),
        (lambda d: d["render"]["export"].update(subtitles=0), "render.export.subtitles", "expected true or false"),
        (lambda d: d["lines"].append({"line": 99}), "lines[1].line", "past the end of the script"),
        (lambda d: d["lines"].append({"line": 2}), "lines[1].line", "appears twice"),
        (lambda d: d["lines"].append({"locked": True}), "lines[1].line", "is missing"),
        (lambda d: d["lines"][0].update(locked="yes"), "lines[0].locked", "expected true or false"),
        (lambda d: d["lines"][0].update(take=-2), "lines[0].take", "must be at least 0"),
        (lambda d: d.update(format="something-else"), "format", "expected 'qwen-tts-studio-project'"),
        (lambda d: d.update(extra=1), "extra", "unknown field"),
    ],
)
def test_wrong_fields_are_named(tmp_path, mutate, field, reason):
    doc = valid_doc()
    mutate(doc)
    err = load_error(write_doc(tmp_path / "x.qtts", doc))
    assert err.field == field, str(err)
    assert reason in str(err)
    assert str(err).startswith(f"{tmp_path / 'x.qtts'}: field '{field}': ")


def test_migrations_run_in_order_from_an_older_version(monkeypatch):
    # The mechanism is real even though version 1 is the first format: pretend the current
    # version is 3 and check that a version-1 document passes through both steps, in order.
    calls = []

    def one_to_two(doc):
        calls.append(1)
        return {**doc, "script": doc["old_script"], "old_script": None}

    def two_to_three(doc):
        calls.append(2)
        doc = dict(doc)
        doc.pop("old_script")
        return doc

    monkeypatch.setattr(project_module, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(project_module, "MIGRATIONS", {1: one_to_two, 2: two_to_three})
    project = project_from_json({"schema_version": 1, "old_script": "migrated text"})
    assert calls == [1, 2]
    assert project.script == "migrated text"
