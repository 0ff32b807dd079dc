"""Generated speech-like datasets (good clips plus one of each kind of broken item) in every layout."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from training.protocol import parse_line

REPO_ROOT = Path(__file__).resolve().parents[2]
SR = 24000


def harmonic(seconds: float, f0: float, *, sr: int = SR, peak: float = 0.3, seed: int = 0) -> np.ndarray:
    """A voiced-sounding tone: five harmonics under a slow syllable-rate wobble that never falls silent."""
    t = np.arange(int(round(seconds * sr))) / sr
    wave = sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, 6))
    wave = wave * (0.6 + 0.4 * np.sin(2 * np.pi * 3.0 * t))
    wave += 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (peak * wave / np.max(np.abs(wave))).astype(np.float32)


@dataclass(frozen=True)
class Clip:
    name: str  # stem; items sort by it in the folder layout
    text: str
    expect: str | None  # the problem kind validate must report, None for a usable item
    note: str | None = None  # a note validate must add


# Names sort in this order, which is also the manifest order, so all three layouts list the same items.
CLIPS = (
    Clip("a_good", "The first sentence of the set.", None),
    Clip("b_good", "A second and different sentence.", None),
    Clip(
        "c_stereo48k", "This one came from a camera at forty eight kilohertz.", None, "converted from 48000 Hz stereo"
    ),
    Clip("d_good16k", "Recorded on a phone at sixteen kilohertz.", None, "converted from 16000 Hz mono"),
    Clip("e_missing", "The recording of this line was lost.", "missing audio"),
    Clip("f_corrupt", "The file holds random bytes.", "unreadable audio"),
    Clip("g_empty_text", "   ", "empty transcript"),
    Clip("h_short", "Hi.", "too short"),
    Clip("i_long", "A reading that goes on for far too long.", "too long"),
    Clip("j_clipped", "Shouted into the microphone.", "clipping"),
    Clip("k_silent", "Mostly nothing at all.", "mostly silence"),
    Clip("l_duplicate", "Copied from the first one by mistake.", "duplicate audio"),
    # A retake of b_good's sentence: different audio, same text; usable, with a note.
    Clip("m_retake", "A second and different sentence.", None, "same transcript as"),
)
USABLE_SECONDS = 1.5 + 2.0 + 2.5 + 3.0 + 2.0


def write_clip(folder: Path, clip: Clip, rng: np.random.Generator) -> Path | None:
    """Write the audio for `clip` into `folder`; returns its path (None for the missing one)."""
    name = clip.name
    if name == "a_good":
        path = folder / f"{name}.wav"
        sf.write(path, harmonic(1.5, 140.0, seed=1), SR, subtype="PCM_16")
    elif name == "b_good":
        path = folder / f"{name}.wav"
        sf.write(path, harmonic(2.0, 180.0, seed=2), SR, subtype="PCM_16")
    elif name == "c_stereo48k":
        left = harmonic(2.5, 120.0, sr=48000, seed=3)
        path = folder / f"{name}.wav"
        sf.write(path, np.stack([left, 0.8 * left], axis=1), 48000, subtype="PCM_16")
    elif name == "d_good16k":
        path = folder / f"{name}.flac"
        sf.write(path, harmonic(3.0, 210.0, sr=16000, seed=4), 16000, subtype="PCM_16")
    elif name == "e_missing":
        return None
    elif name == "f_corrupt":
        path = folder / f"{name}.wav"
        path.write_bytes(rng.bytes(4096))
    elif name == "g_empty_text":
        path = folder / f"{name}.wav"
        sf.write(path, harmonic(2.0, 160.0, seed=5), SR, subtype="PCM_16")
    elif name == "h_short":
        path = folder / f"{name}.wav"
        sf.write(path, harmonic(0.5, 150.0, seed=6), SR, subtype="PCM_16")
    elif name == "i_long":
        path = folder / f"{name}.wav"
        sf.write(path, harmonic(40.0, 130.0, seed=7), SR, subtype="PCM_16")
    elif name == "j_clipped":
        path = folder / f"{name}.wav"
        sf.write(path, np.clip(harmonic(2.0, 170.0, peak=3.0, seed=8), -1.0, 1.0), SR, subtype="PCM_16")
    elif name == "k_silent":
        wave = np.zeros(3 * SR, dtype=np.float32)
        wave[: int(0.3 * SR)] = harmonic(0.3, 150.0, seed=9)
        path = folder / f"{name}.wav"
        sf.write(path, wave, SR, subtype="PCM_16")
    elif name == "l_duplicate":
        path = folder / f"{name}.wav"
        path.write_bytes((folder / "a_good.wav").read_bytes())
    elif name == "m_retake":
        path = folder / f"{name}.wav"
        sf.write(path, harmonic(2.0, 190.0, seed=10), SR, subtype="PCM_16")
    else:  # pragma: no cover - a clip added to CLIPS without audio
        raise AssertionError(name)
    return path


@dataclass
class Dataset:
    arg: Path  # what is passed to validate
    root: Path  # the folder holding everything the user made
    audio: dict[str, Path] = field(default_factory=dict)  # clip name -> expected absolute audio path


def build_dataset(root: Path, layout: str, clips: tuple[Clip, ...] = CLIPS) -> Dataset:
    rng = np.random.default_rng(1234)
    root.mkdir(parents=True)
    audio_dir = root if layout == "folder" else root / "wavs"
    audio_dir.mkdir(exist_ok=True)
    data = Dataset(arg=root, root=root)
    lines = []
    for clip in clips:
        path = write_clip(audio_dir, clip, rng)
        expected = path if path is not None else audio_dir / f"{clip.name}.wav"
        if layout == "folder":
            (audio_dir / f"{clip.name}.txt").write_text(clip.text + "\n", encoding="utf-8")
            # An orphan transcript names no audio file: the item points at its stem.
            expected = path if path is not None else audio_dir / clip.name
        elif layout == "ljspeech":
            item_id = clip.name if expected.suffix == ".wav" else expected.name
            lines.append(f"{item_id}|{clip.text}|{clip.text}")
        elif layout == "jsonl":
            lines.append(json.dumps({"audio": f"wavs/{expected.name}", "text": clip.text}))
        data.audio[clip.name] = expected.absolute()
    if layout == "ljspeech":
        (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        data.arg = root / "metadata.csv"
    elif layout == "jsonl":
        (root / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        data.arg = root / "train.jsonl"
    return data


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@dataclass
class Result:
    rc: int
    events: list[dict]
    stdout: str
    stderr: str

    def kinds(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]


def run_command(module: str, *args: str, timeout: float = 120) -> Result:
    """Run `python -m module args` as a real subprocess; every stdout line must be a protocol event."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    events = []
    for line in proc.stdout.splitlines():
        event = parse_line(line)
        assert event is not None, f"stdout line is not a protocol event: {line!r}\nstderr:\n{proc.stderr}"
        assert isinstance(event["t"], float)
        events.append(event)
    return Result(proc.returncode, events, proc.stdout, proc.stderr)


@pytest.fixture
def make_dataset(tmp_path):
    def make(layout: str, clips: tuple[Clip, ...] = CLIPS, name: str | None = None) -> Dataset:
        return build_dataset(tmp_path / (name or f"data-{layout}"), layout, clips)

    return make
