""".qvoice files: export that fails cleanly on a read-only folder or a full disk, and imports that refuse
hostile archives (paths out of the profile, folders, links, zip bombs, lying headers) before unpacking."""

from __future__ import annotations

import json
import os
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from studio.core.voice import VoiceSpec
from studio.core.voice_library import VoiceLibrary, VoiceLibraryError
from tests.limited_folders import full_disk_export, read_only_folder


def everything_under(folder: Path) -> list[str]:
    """Every file and folder below `folder`, hidden ones (staging, temp files) included."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def library(tmp_path):
    return VoiceLibrary(tmp_path / "voices")


@pytest.fixture
def profile(tmp_path, library):
    # Three seconds of noise-like speech: PCM that does not deflate much, so the export is ~140 KB and
    # cannot fit on a 64 KB disk.
    rng = np.random.default_rng(1)
    clip = tmp_path / "me.wav"
    soundfile.write(clip, (0.2 * rng.standard_normal(72000)).clip(-1, 1).astype(np.float32), 24000)
    return library.add("Me", VoiceSpec.clone(clip, "Hello, it is me."))


# --- export -------------------------------------------------------------------------------------------------


def test_export_to_a_read_only_folder_is_one_clear_error_and_leaves_nothing(tmp_path, library, profile, monkeypatch):
    folder = tmp_path / "readonly"
    with read_only_folder(folder, monkeypatch) as how:
        with pytest.raises(VoiceLibraryError) as caught:
            library.export(profile.id, folder / "me.qvoice")
        assert os.listdir(folder) == []
    assert str(caught.value) == (f"{folder / 'me.qvoice'}: cannot export the voice: the folder is on a read-only "
                                 f"file system"), how


def test_export_to_a_full_disk_removes_its_temp_file(tmp_path, library, profile):
    failed = full_disk_export(library, profile.id, tmp_path / "full")
    reason = "no space left on the device" if failed.how == "mount" else "the file is larger than this system allows"
    assert failed.message == f"{tmp_path / 'full' / 'out.qvoice'}: cannot export the voice: {reason}"
    assert failed.left == []  # neither the target nor a temp file


def test_export_never_replaces_a_file_unless_asked(tmp_path, library, profile):
    target = tmp_path / "me.qvoice"
    target.write_bytes(b"someone else's file")
    with pytest.raises(VoiceLibraryError, match="me.qvoice: already exists; choose another name"):
        library.export(profile.id, target)
    assert target.read_bytes() == b"someone else's file"
    assert library.export(profile.id, tmp_path / "me", overwrite=True) == target
    assert zipfile.ZipFile(target).namelist() == ["clips/identity.wav", "profile.json"]
    assert sorted(os.listdir(tmp_path)) == ["me.qvoice", "me.wav", "voices"]  # no temp file left


# --- import -------------------------------------------------------------------------------------------------


@pytest.fixture
def exported(tmp_path, library, profile):
    """The entries of a genuine .qvoice, to build hostile variants from."""
    with zipfile.ZipFile(library.export(profile.id, tmp_path / "genuine.qvoice")) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def hostile(path: Path, entries: dict, *extra: tuple[zipfile.ZipInfo | str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for info, data in extra:
            archive.writestr(info, data)
    return path


def assert_refused(other: VoiceLibrary, source: Path, entry: str, reason: str) -> None:
    with pytest.raises(VoiceLibraryError) as caught:
        other.import_file(source)
    assert str(caught.value) == f"{source}: entry {entry!r} {reason}; nothing was imported"
    assert everything_under(other.folder) == []  # nothing extracted, no staging folder left behind
    assert other.profiles() == []


def symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


NOT_PLAIN = "is not a plain file name inside the profile (only profile.json and clips/<name> are allowed)"


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("clips/..", NOT_PLAIN),
        ("../evil", NOT_PLAIN),
        ("clips/../../evil.wav", NOT_PLAIN),
        ("/etc/evil", NOT_PLAIN),
        ("C:/evil.wav", NOT_PLAIN),
        ("clips\\..\\..\\evil.wav", NOT_PLAIN),
        ("clips/.hidden", NOT_PLAIN),
        ("clips/sub/deep.wav", NOT_PLAIN),
        ("clips/sub/", "is a folder entry; a voice profile holds only profile.json and clips/<name>"),
        ("profile.json", "appears twice"),
    ],
)
def test_import_refuses_names_outside_the_profile(tmp_path, exported, entry, reason):
    source = hostile(tmp_path / "bad.qvoice", exported, (entry, b"x"))
    assert_refused(VoiceLibrary(tmp_path / "other"), source, entry, reason)
    assert not (tmp_path / "evil").exists() and not (tmp_path / "evil.wav").exists()


def test_import_refuses_a_symlink_entry(tmp_path, exported):
    source = hostile(tmp_path / "link.qvoice", exported, (symlink("clips/extra.wav"), b"/etc/passwd"))
    assert_refused(VoiceLibrary(tmp_path / "other"), source, "clips/extra.wav", "is a symbolic link")


def test_import_refuses_too_many_entries(tmp_path, exported):
    source = hostile(tmp_path / "many.qvoice", exported, *((f"clips/c{i}.wav", b"x") for i in range(70)))
    other = VoiceLibrary(tmp_path / "other")
    with pytest.raises(VoiceLibraryError, match=r"many.qvoice: the file holds 72 entries; a voice profile has at "
                                                r"most 64; nothing was imported$"):
        other.import_file(source)
    assert everything_under(other.folder) == []


def write_zeros(archive: zipfile.ZipFile, name: str, megabytes: int) -> None:
    """A large zero-filled entry, streamed in 1 MB pieces (a few hundred KB compressed, never in memory)."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w") as entry:
        chunk = bytes(1 << 20)
        for _ in range(megabytes):
            entry.write(chunk)


def set_sizes(path: Path, name: str, *, file_size: int | None = None, compress_size: int | None = None) -> None:
    """Rewrite an entry's sizes in its local header and the central directory: a header that lies."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46:at + 46 + length]) == name.encode():
            local = struct.unpack_from("<I", data, at + 42)[0]
            for central, header in ((at + 24, local + 22), (at + 20, local + 18)):
                value = file_size if central == at + 24 else compress_size
                if value is not None:
                    struct.pack_into("<I", data, central, value)
                    struct.pack_into("<I", data, header, value)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


def bomb(path: Path, entries: dict) -> Path:
    """A genuine profile plus a 600 MB zero-filled emotion clip (about 600 KB compressed)."""
    hostile(path, entries)
    with zipfile.ZipFile(path, "a") as archive:
        write_zeros(archive, "clips/emotion-angry.wav", 600)
    assert path.stat().st_size < 2 * 1024 * 1024
    return path


def test_import_refuses_a_600_mb_entry_from_its_header(tmp_path, exported):
    source = bomb(tmp_path / "bomb.qvoice", exported)
    assert_refused(VoiceLibrary(tmp_path / "other"), source, "clips/emotion-angry.wav",
                   "unpacks to 600 MB, over the 100 MB limit")


def test_import_refuses_a_header_that_lies_about_the_size(tmp_path, exported):
    source = bomb(tmp_path / "liar.qvoice", exported)
    set_sizes(source, "clips/emotion-angry.wav", file_size=1024 * 1024)  # "1 MB", really 600 MB
    with zipfile.ZipFile(source) as archive:
        assert archive.getinfo("clips/emotion-angry.wav").file_size == 1024 * 1024
    other = VoiceLibrary(tmp_path / "other")
    with pytest.raises(VoiceLibraryError) as caught:
        other.import_file(source)
    assert str(caught.value).startswith(f"{source}: entry 'clips/emotion-angry.wav' is damaged or its header lies "
                                        "about its size (")
    assert str(caught.value).endswith("; nothing was imported")
    assert everything_under(other.folder) == []


def test_import_refuses_a_compression_bomb_under_the_size_limit(tmp_path, exported):
    source = tmp_path / "ratio.qvoice"
    hostile(source, exported)
    with zipfile.ZipFile(source, "a") as archive:
        write_zeros(archive, "clips/emotion-sad.wav", 50)
    with pytest.raises(VoiceLibraryError) as caught:
        VoiceLibrary(tmp_path / "other").import_file(source)
    assert str(caught.value).startswith(f"{source}: entry 'clips/emotion-sad.wav' is compressed 1")
    assert "to 1 (a zip bomb?)" in str(caught.value)
    assert everything_under(tmp_path / "other") == []


def test_import_refuses_more_than_the_total_limit(tmp_path, exported):
    source = hostile(tmp_path / "total.qvoice", exported,
                     *((f"clips/emotion-{i}.wav", os.urandom(1000)) for i in range(3)))
    for i in range(3):  # each "90 MB" (deflated to 1 MB): every entry passes alone, together they do not
        set_sizes(source, f"clips/emotion-{i}.wav", file_size=90 * 1024 * 1024, compress_size=1024 * 1024)
    assert_refused(VoiceLibrary(tmp_path / "other"), source, "clips/emotion-2.wav",
                   "brings the total to 270 MB, over the 200 MB limit for a voice profile")


def test_import_of_a_genuine_file_with_a_bad_clip_names_the_entry(tmp_path, exported):
    nan = np.full(24000, np.nan, np.float32)
    bad = tmp_path / "nan.wav"
    soundfile.write(bad, nan, 24000, subtype="FLOAT")
    entries = dict(exported, **{"clips/identity.wav": bad.read_bytes()})
    source = hostile(tmp_path / "nan.qvoice", entries)
    other = VoiceLibrary(tmp_path / "other")
    with pytest.raises(VoiceLibraryError) as caught:
        other.import_file(source)
    assert str(caught.value).startswith(f"{source}: entry 'clips/identity.wav': the reference clip holds non-finite")
    assert everything_under(other.folder) == []


def test_a_genuine_file_still_imports(tmp_path, exported):
    source = hostile(tmp_path / "fine.qvoice", exported)
    imported = VoiceLibrary(tmp_path / "other").import_file(source)
    assert imported.name == "Me" and imported.voice.ref_text == "Hello, it is me."
    assert json.loads(exported["profile.json"])["voice"]["ref_audio"] == "clips/identity.wav"
    assert [p for p in everything_under(tmp_path / "other") if p.startswith(".")] == []


def test_a_bad_profile_json_names_the_entry_not_the_unpack_folder(tmp_path, exported):
    doc = json.loads(exported["profile.json"])
    del doc["name"]
    source = hostile(tmp_path / "nameless.qvoice", dict(exported, **{"profile.json": json.dumps(doc)}))
    other = VoiceLibrary(tmp_path / "other")
    with pytest.raises(VoiceLibraryError) as caught:
        other.import_file(source)
    assert str(caught.value) == f"{source}: entry 'profile.json': field 'name': is missing"
    assert everything_under(other.folder) == []


def test_cli_voice_file_is_unpacked_with_the_same_checks(tmp_path, exported):
    import subprocess
    import sys

    source = bomb(tmp_path / "bomb.qvoice", exported)
    script = tmp_path / "s.txt"
    script.write_text("Hello.")
    result = subprocess.run(
        [sys.executable, "-m", "studio", "render", str(script), "--voice", str(source), "--model", "x",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"{source}: entry 'clips/emotion-angry.wav' unpacks to 600 MB, over the 100 MB limit; nothing was imported"
    )
