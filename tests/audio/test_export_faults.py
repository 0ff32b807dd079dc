"""Exports under faults: full disks, names taken by odd links, killed writers, file modes (issue #13)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from studio.audio.export import ExportError, export_render
from tests.audio.test_export import RATE, WHEN, segments
from tests.filesystems import fill, small_disk

REPO = Path(__file__).resolve().parents[2]
STEM = "story_20261125_093005"


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("inodes", range(2, 12))
def test_an_export_that_runs_out_of_room_part_way_leaves_nothing(tmp_path, inodes):
    # A tmpfs that runs out of room after `inodes` files, folders and links: across the range, the
    # failure hits every step (the audio, the subtitles, a stem, the stems folder, a link, the manifest).
    with small_disk(tmp_path / "disk", "8m", inodes=inodes) as disk:
        try:
            result = export_render(segments(), sample_rate=RATE, folder=disk, name="story", when=WHEN, stems=True)
        except ExportError as exc:
            assert str(exc) == f"{disk}: cannot write the export (No space left on device); nothing was exported"
            assert _names(disk) == []
        else:
            assert _names(disk) == [f"{STEM}{s}" for s in (".json", ".srt", ".vtt", ".wav", "_stems")]
            manifest = json.loads(result.manifest.read_text())
            assert [Path(p).name for p in manifest["stems"]] == ["0001_line1.wav", "0003_line2.wav"]
            assert all(Path(p).is_file() for p in manifest["stems"])


def test_a_full_disk_is_refused_before_anything_is_written(tmp_path):
    with small_disk(tmp_path / "disk", "256k") as disk:
        fill(disk, leave=64 * 1024)
        with pytest.raises(ExportError, match="not enough free space for the export .*nothing was exported"):
            export_render(segments(), sample_rate=RATE, folder=disk, name="story", when=WHEN)
        assert _names(disk) == ["filler.bin"]


def test_cli_render_reports_a_full_disk_in_one_line(tmp_path, tiny_checkpoints):
    script = tmp_path / "story.txt"
    script.write_text("Hello there.\n", encoding="utf-8")
    with small_disk(tmp_path / "disk", "256k") as disk:
        fill(disk, leave=32 * 1024)
        result = subprocess.run(
            [sys.executable, "-m", "studio", "render", str(script), "--model", str(tiny_checkpoints["voice_design"]),
             "--voice-design", "a calm voice", "--out", str(disk), "--cache", str(tmp_path / "cache"),
             "--max-new-tokens", "8"],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 2, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(f"{disk}: not enough free space for the export") and "Traceback" not in result.stderr
        assert _names(disk) == ["filler.bin"]


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_a_name_taken_by_a_broken_symlink_is_skipped_not_spun_on(tmp_path, kind):
    taken = tmp_path / f"{STEM}.wav"
    if kind == "dangling":
        taken.symlink_to(tmp_path / "nowhere.wav")
    else:
        taken.symlink_to(taken)
    # Before the fix this never returned (100 % CPU); the timeout turns a hang into a failure.
    code = f"""
        from datetime import datetime
        from pathlib import Path
        from studio.audio.export import export_render
        from tests.audio.test_export import segments
        r = export_render(segments(), sample_rate=24000, folder=Path({str(tmp_path)!r}), name="story",
                          when=datetime(2026, 11, 25, 9, 30, 5))
        print(r.audio.name)
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{STEM}_2.wav"
    assert taken.is_symlink()  # left as it was


def test_exports_get_the_users_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        result = export_render(segments(), sample_rate=RATE, folder=tmp_path, name="story", when=WHEN, stems=True)
    finally:
        os.umask(old)
    for path in (result.audio, result.srt, result.vtt, result.manifest, *result.stems):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert stat.S_IMODE(result.stems[0].parent.stat().st_mode) == 0o755


def test_temp_files_of_a_killed_export_are_cleaned_by_the_next_one(tmp_path):
    # A real export process killed with SIGKILL while its audio is being written (soundfile's write is
    # made to stall, as on a slow disk): its temp file stays behind until the next export there.
    code = f"""
        import time
        from datetime import datetime
        from pathlib import Path
        import studio.audio.export as export
        from tests.audio.test_export import segments
        real_write = export.soundfile.write
        def stalled(path, *args, **kwargs):
            real_write(path, *args, **kwargs)
            print("written", flush=True)
            time.sleep(600)
        export.soundfile.write = stalled
        export.export_render(segments(), sample_rate=24000, folder=Path({str(tmp_path)!r}), name="story",
                             when=datetime(2026, 11, 25, 9, 30, 5))
    """
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"written\n"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".export-")]
    assert len(leftovers) == 1 and f".export-{child.pid}-" in leftovers[0].name
    export_render(segments(), sample_rate=RATE, folder=tmp_path, name="story", when=WHEN)
    assert _names(tmp_path) == [f"{STEM}{s}" for s in (".json", ".srt", ".vtt", ".wav")]
