"""`qwen-tts-studio --self-test`: does this installation work on this machine?

Checks the pieces a user's first render depends on and prints ONE JSON object on stdout; the exit
code is 0 when every check passed and 1 otherwise. It is the first thing to run after installing a
build (and what the packaging test runs on the frozen bundle and on the installed .deb):

- ``python``: interpreter, frozen or not, and the bundle's ``build-info.json`` when there is one;
- ``torch``: torch imports and computes (a small matmul checked against NumPy);
- ``engine``: a tiny random-weight checkpoint is built in a temporary folder with qwen-tts's own
  classes, one tagged line (``[Whispering] ...``) renders through the real engine, streaming, and the
  audio is written with soundfile and read back;
- ``qt``: Qt starts and draws the main window with that audio in the waveform. It runs in a child
  process because Qt aborts the whole process when its platform plugin cannot load (the usual cause:
  a missing system library such as libxcb-cursor0), and the self-test must still print its report;
  the child's own message is what ends up in the report. The child gets temporary settings and data
  folders, so the self-test never touches the user's recent files, layout or autosave.
- ``audiobook``: the rendered line, stretched to a slower pace (librosa's phase vocoder, as for a cloned
  voice's `[pace: slow]`) and written as an M4B and an MP3 with two chapter marks, read back from the
  files: the bundled FFmpeg (PyAV), its AAC and LAME encoders and mutagen are there and work;
- ``audio``: PortAudio loads and lists devices. No output device is reported, not failed: rendering
  and export work without one, and a build machine or a server has none.

Library chatter on stdout (some dependencies print) is sent to stderr while the checks run, so stdout
holds the report alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from studio import __version__
from studio.build_info import build_info
from studio.launch import is_frozen, studio_command

# A line with an emotion tag, so the check covers the tag grammar and the instruct as well as audio.
SELF_TEST_SCRIPT = "[Whispering] This line checks the studio from tag to waveform."
SELF_TEST_VOICE = "A calm, clear narrator with a warm mid-range voice."
QT_CHECK_TIMEOUT_S = 180
# Drawing the audio must change at least this many pixels of the waveform view against silence of
# the same length. A trace that failed to draw changes none; seconds of speech change thousands.
MIN_WAVEFORM_INK = 200


def _check(name: str, report: dict[str, Any], body: Callable[[dict[str, Any]], Any]) -> Any:
    """Run one check into ``report["checks"][name]``; returns what ``body`` returned (None if it raised)."""
    entry: dict[str, Any] = {"ok": False}
    result = None
    started = time.perf_counter()
    try:
        result = body(entry)
        entry["ok"] = not entry.get("error")
    except Exception as exc:  # noqa: BLE001 - the report names the failure; the next checks still run
        entry["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    entry["seconds"] = round(time.perf_counter() - started, 3)
    report["checks"][name] = entry
    return result


def _check_python(entry: dict[str, Any]) -> None:
    entry.update(
        version=platform.python_version(),
        executable=sys.executable,
        frozen=is_frozen(),
        platform=platform.platform(),
    )
    info = build_info()
    if info is not None:
        entry["build"] = info
        if info.get("version") not in (None, __version__):
            entry["error"] = f"build-info.json says version {info.get('version')}, the studio is {__version__}"


def _check_torch(entry: dict[str, Any]) -> None:
    import numpy as np
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(64, 48, generator=gen)
    b = torch.randn(48, 32, generator=gen)
    got = (a @ b).numpy()
    want = a.numpy().astype(np.float64) @ b.numpy().astype(np.float64)
    error = float(np.max(np.abs(got - want)))
    entry.update(
        version=torch.__version__,
        cuda_build=torch.version.cuda,
        cuda_available=bool(torch.cuda.is_available()),
        threads=torch.get_num_threads(),
        matmul_max_abs_error=error,
    )
    if torch.cuda.is_available():
        entry["gpu"] = torch.cuda.get_device_name(0)
    if not error < 1e-3:
        entry["error"] = f"a 64x48 @ 48x32 matmul is off by {error:g} against NumPy"


def _check_engine(entry: dict[str, Any], workdir: Path) -> Path | None:
    import numpy as np
    import soundfile as sf

    from studio.core.tags import SpeechItem, parse_script
    from studio.core.voice import VoiceSpec
    from studio.engine.loader import load_model
    from studio.engine.qwen_import import import_qwen_tts
    from studio.engine.synth import Synthesizer, SynthReport, SynthRequest
    from studio.engine.tiny import build_tiny_checkpoint

    import_qwen_tts()  # first, so the package's import-time chatter is kept out of the output
    items = parse_script(SELF_TEST_SCRIPT)
    speech = [item for item in items if isinstance(item, SpeechItem)]
    if len(speech) != 1 or not speech[0].emotion:
        entry["error"] = f"the self-test line parsed to {items!r}, expected one tagged speech item"
        return None
    item = speech[0]

    started = time.perf_counter()
    folder = build_tiny_checkpoint(workdir / "tiny-voice-design", model_type="voice_design", seed=0)
    entry["checkpoint_build_s"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    loaded = load_model(str(folder), device="auto")
    entry["load_s"] = round(time.perf_counter() - started, 3)
    entry["model"] = loaded.info.summary()

    synth = Synthesizer(loaded)
    request = SynthRequest(
        text=item.text,
        voice=VoiceSpec(kind="design", description=SELF_TEST_VOICE),
        emotion=item.emotion,
        directives=item.directives,
        seed=7,
    )
    report = SynthReport()
    started = time.perf_counter()
    chunks = []
    first_chunk_s = None
    for chunk in synth.stream(request, report=report):
        if first_chunk_s is None:
            first_chunk_s = time.perf_counter() - started
        chunks.append(chunk)
    render_s = time.perf_counter() - started
    samples = np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)
    rate = synth.sample_rate
    entry.update(
        emotion=item.emotion,
        instruct=report.instruct,
        chunks=len(chunks),
        frames=report.frames,
        audio_s=round(len(samples) / rate, 3),
        first_chunk_s=round(first_chunk_s or 0.0, 3),
        render_s=round(render_s, 3),
    )
    if not len(samples):
        entry["error"] = "the engine produced no audio"
        return None
    if not np.all(np.isfinite(samples)):
        entry["error"] = "the engine produced NaN or infinite samples"
        return None
    entry["peak"] = round(float(np.max(np.abs(samples))), 4)
    if entry["peak"] == 0.0:
        entry["error"] = "the engine produced silence"
        return None
    if item.emotion.lower() not in report.instruct.lower():
        entry["error"] = f"the emotion {item.emotion!r} is missing from the instruct {report.instruct!r}"
        return None

    wav = workdir / "self-test.wav"
    sf.write(str(wav), samples, rate, subtype="PCM_16")
    back, back_rate = sf.read(str(wav), dtype="float32")
    entry["wav_frames"] = int(len(back))
    entry["soundfile"] = sf.__libsndfile_version__
    if back_rate != rate or len(back) != len(samples):
        entry["error"] = f"{wav.name} read back as {len(back)} frames at {back_rate} Hz, wrote {len(samples)} at {rate}"
        return None
    # 16-bit PCM quantisation bounds the round-trip difference at half a step (plus rounding).
    roundtrip = float(np.max(np.abs(back - samples)))
    if roundtrip > 2.0 / 32768:
        entry["error"] = f"{wav.name} read back with a difference of {roundtrip:g}"
        return None
    return wav


def _qt_child_environment(workdir: Path) -> tuple[dict[str, str], str | None]:
    from studio.ui.app import needs_offscreen

    env = dict(os.environ)
    note = None
    if needs_offscreen(env):
        # No screen (a server, a build machine): draw offscreen rather than fail for want of a display.
        env["QT_QPA_PLATFORM"] = "offscreen"
        note = "no display: drew offscreen"
    # Settings, recovery files and caches go to a scratch folder: a self-test leaves the user's alone.
    for key, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
        ("APPDATA", "appdata"),
        ("LOCALAPPDATA", "localappdata"),
    ):
        env[key] = str(workdir / sub)
    return env, note


def _check_qt(entry: dict[str, Any], workdir: Path, wav: Path | None) -> None:
    if wav is None:
        # The engine check failed; draw a tone instead so the Qt check still says something.
        import numpy as np
        import soundfile as sf

        from studio.core.plan import SAMPLE_RATE

        wav = workdir / "tone.wav"
        t = np.arange(SAMPLE_RATE) / SAMPLE_RATE  # one second
        sf.write(str(wav), (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SAMPLE_RATE)
        entry["audio"] = "a test tone (the engine check did not produce audio)"
    env, note = _qt_child_environment(workdir)
    if note:
        entry["note"] = note
    command = studio_command("--self-test-qt", str(wav))
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=QT_CHECK_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        entry["error"] = f"drawing the window did not finish within {QT_CHECK_TIMEOUT_S} s"
        return
    result = None
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                result = json.loads(line)
                break
    if result is None:
        # Qt aborted (or Python crashed) before reporting: its last words say why.
        why = [line for line in done.stderr.splitlines() if line.strip()]
        tail = " | ".join(why[-3:]) if why else "no output"
        entry["error"] = f"the window check exited with code {done.returncode}: {tail}"
        return
    entry.update(result)


def _changed_pixels(before, after) -> int:
    """How many pixels differ between two grabs of the same widget."""
    import numpy as np
    from PySide6.QtGui import QImage

    def pixels(image):
        image = image.convertToFormat(QImage.Format.Format_RGB32)
        raw = np.frombuffer(image.constBits(), dtype=np.uint32, count=image.sizeInBytes() // 4)
        # Copied while the converted image is alive: the buffer goes with it.
        return raw.reshape(image.height(), image.bytesPerLine() // 4)[:, : image.width()].copy()

    if before.size() != after.size():
        return after.width() * after.height()
    return int(np.count_nonzero(pixels(before) != pixels(after)))


def _draw_waveform(app, window, samples, rate: int):
    window.waveform.reset(rate)
    window.waveform.append(samples)
    window.waveform.flush()
    for _ in range(5):
        app.processEvents()
    return window.waveform.grab().toImage()


def run_qt_check(wav: Path, screenshot: Path | None = None) -> int:
    """The child half of the ``qt`` check: open the main window, draw ``wav`` in its waveform, report."""
    result: dict[str, Any] = {}
    with _stdout_to_stderr() as report_stream:
        try:
            import numpy as np
            import soundfile as sf

            from studio.ui.app import make_application
            from studio.ui.main_window import MainWindow

            samples, rate = sf.read(str(wav), dtype="float32", always_2d=False)
            app = make_application()
            window = MainWindow()
            try:
                window.resize(1280, 820)
                window.show()
                for _ in range(5):
                    app.processEvents()
                # Silence of the same length is the baseline: the same axis and labels, no trace.
                silence = _draw_waveform(app, window, np.zeros_like(samples), int(rate))
                drawn = _draw_waveform(app, window, samples, int(rate))
                ink = _changed_pixels(silence, drawn)
                whole = window.grab().toImage()
                if screenshot is not None:
                    whole.save(str(screenshot))
                result.update(
                    platform=app.platformName(),
                    qt=_qt_version(),
                    window=[whole.width(), whole.height()],
                    waveform=[drawn.width(), drawn.height()],
                    waveform_changed_px=ink,
                    audio_s=round(len(samples) / rate, 3),
                )
                if whole.isNull() or whole.width() < 400:
                    result["error"] = f"the main window drew as {whole.width()}x{whole.height()} pixels"
                elif ink < MIN_WAVEFORM_INK:
                    result["error"] = f"the waveform changed only {ink} pixels when audio went into it"
            finally:
                window.shutdown()
                window.undo_stack.setClean()
                window.setWindowModified(False)
                window.close()
        except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
            result["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        result["ok"] = not result.get("error")
        report_stream.write(json.dumps(result) + "\n")
    return 0 if result["ok"] else 1


def _qt_version() -> str:
    import PySide6
    from PySide6.QtCore import qVersion

    return f"Qt {qVersion()}, PySide6 {PySide6.__version__}"


def _check_audio(entry: dict[str, Any]) -> None:
    import sounddevice as sd

    entry["portaudio"] = sd.get_portaudio_version()[1]
    # The file the loader really opened (sounddevice only knows the name it asked for).
    entry["library"] = _loaded_library_path("libportaudio") or str(getattr(sd, "_libname", ""))
    devices = sd.query_devices()
    outputs = [d["name"] for d in devices if d["max_output_channels"] > 0]
    entry["devices"] = len(devices)
    entry["output_devices"] = outputs[:8]
    if not outputs:
        entry["note"] = "no output device (rendering and export still work; playback is disabled)"
    else:
        try:
            entry["default_output"] = sd.query_devices(kind="output")["name"]
        except sd.PortAudioError:
            entry["default_output"] = None
    asound = _loaded_library_path("libasound.so")
    if asound:
        # Which ALSA library PortAudio ended up with: a bundled copy would lose the system's
        # PulseAudio/PipeWire plugins, so the packaging test checks this is the system's.
        entry["libasound"] = asound


def _loaded_library_path(stem: str) -> str | None:
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.split()[-1] if line.split() else ""
        if Path(path).name.startswith(stem):
            return path
    return None


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[Any]:
    """Point file descriptor 1 (and sys.stdout) at stderr; yield a stream that writes to the real stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    real = os.fdopen(os.dup(saved), "w", encoding="utf-8")
    old_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield real
    finally:
        sys.stdout.flush()
        real.flush()
        sys.stdout = old_stdout
        os.dup2(saved, 1)
        os.close(saved)
        real.close()


def _check_audiobook(entry: dict[str, Any], workdir: Path, wav: Path | None) -> None:
    import numpy as np
    import soundfile as sf

    from studio.audio.audiobook import BookTags, ChapterMark, read_chapters, write_m4b, write_mp3
    from studio.engine.time_stretch import stretch_speech

    if wav is None:
        entry["error"] = "no audio to export: the engine check failed"
        return
    samples, rate = sf.read(str(wav), dtype="float32")
    slow = stretch_speech(samples, 0.85)
    entry["stretched_s"] = round(len(slow) / rate, 3)
    if len(slow) != round(len(samples) / 0.85):
        entry["error"] = f"the time stretch gave {len(slow)} samples for {len(samples)} at 0.85x"
        return
    program = np.concatenate([samples, slow])
    marks = [ChapterMark("One", 0), ChapterMark("Two", len(samples))]
    expected = [("One", 0.0), ("Two", len(samples) / rate)]
    for suffix, write in ((".m4b", write_m4b), (".mp3", write_mp3)):
        path = workdir / f"self-test{suffix}"
        write(path, program, rate, marks, BookTags(title="Self-test", author="Qwen3-TTS Studio"))
        found = read_chapters(path)
        entry[suffix[1:]] = {"bytes": path.stat().st_size, "chapters": found}
        if [title for title, _ in found] != ["One", "Two"] or abs(found[1][1] - expected[1][1]) > 0.05:
            entry["error"] = f"{path.name} lists the chapters {found}, expected {expected}"
            return


def run_self_test() -> int:
    report: dict[str, Any] = {"studio": __version__, "ok": False, "checks": {}}
    started = time.perf_counter()
    with _stdout_to_stderr() as report_stream:
        with tempfile.TemporaryDirectory(prefix="qwen-tts-studio-self-test-") as tmp:
            workdir = Path(tmp)
            _check("python", report, _check_python)
            _check("torch", report, _check_torch)
            wav = _check("engine", report, lambda entry: _check_engine(entry, workdir))
            _check("qt", report, lambda entry: _check_qt(entry, workdir, wav))
            _check("audiobook", report, lambda entry: _check_audiobook(entry, workdir, wav))
            _check("audio", report, _check_audio)
        report["ok"] = all(check["ok"] for check in report["checks"].values())
        report["failed"] = [name for name, check in report["checks"].items() if not check["ok"]]
        report["seconds"] = round(time.perf_counter() - started, 3)
        report_stream.write(json.dumps(report, indent=2) + "\n")
    return 0 if report["ok"] else 1
