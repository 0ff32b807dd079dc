"""Playback through a real PortAudio/ALSA stream, and the ring buffer it is fed through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from studio.audio.buffers import GrowingAudio, RingBuffer

REPO = Path(__file__).resolve().parents[2]


def test_ring_buffer_wraps_and_pads_with_zeros():
    ring = RingBuffer(8)
    assert ring.write(np.arange(1, 7, dtype=np.float32)) == 6
    out = np.empty(4, dtype=np.float32)
    assert ring.read_into(out) == 4 and out.tolist() == [1, 2, 3, 4]
    assert ring.write(np.arange(7, 14, dtype=np.float32)) == 6  # only 6 free
    out = np.empty(10, dtype=np.float32)
    assert ring.read_into(out) == 8
    assert out.tolist() == [5, 6, 7, 8, 9, 10, 11, 12, 0, 0]


def test_growing_audio_keeps_every_sample_across_reallocations():
    audio = GrowingAudio(24000, capacity=4)
    chunks = [np.full(n, i, dtype=np.float32) for i, n in enumerate((3, 5, 17, 1))]
    ranges = [audio.append(c) for c in chunks]
    assert ranges == [(0, 3), (3, 8), (8, 25), (25, 26)]
    np.testing.assert_array_equal(audio.view(), np.concatenate(chunks))
    assert not audio.view().flags.writeable


@pytest.mark.slow
def test_a_real_output_stream_receives_exactly_the_rendered_samples(tiny_checkpoints, tmp_path):
    # ALSA's `file` plugin writes whatever the application plays to a file (its `null` slave discards
    # it afterwards), so this goes through sounddevice, PortAudio and libasound for real.
    home = tmp_path / "home"
    home.mkdir()
    capture = tmp_path / "played.raw"
    (home / ".asoundrc").write_text(
        f'pcm.!default {{\n  type file\n  slave.pcm "null"\n  file "{capture}"\n  format "raw"\n}}\n'
    )
    env = {**os.environ, "HOME": str(home)}
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "audio" / "alsa_capture_player.py"),
         str(tiny_checkpoints["voice_design"]), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    events = (tmp_path / "events.txt").read_text().splitlines()
    # Playback started after the first segment and before the second was generated.
    assert events[:4] == ["rendered 0", "play", "rendered 1", "finished"]
    expected = np.load(tmp_path / "expected.npy")
    played = np.fromfile(capture, dtype="<f4")
    # The null device has no clock, so PortAudio pulls blocks as fast as it can and the callback
    # pads with zeros whenever the ring is momentarily empty. What was played is therefore the
    # rendered audio with runs of zeros inserted; everything else must match bit for bit, in order.
    np.testing.assert_array_equal(played[played != 0], expected[expected != 0])
    assert int(events[4].split()[1]) == len(expected)


def test_the_feeder_survives_the_end_of_the_source_while_the_device_still_plays(tmp_path):
    # On a real (clocked) device the ring still holds the last half second when the feeder passes the
    # end of the source to the resampler; the feeder must not feed the resampler again after that.
    # soxr refuses ("Input after last input"), which killed the feeder thread and left the stream
    # playing silence with the Pause button lit. The stream is opened but not started here, so nothing
    # drains the ring, as on a slow device.
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text('pcm.!default {\n  type null\n}\n')
    code = """
import numpy as np
from studio.audio.buffers import GrowingAudio
from studio.audio.playback import Player
audio = GrowingAudio(24000)
audio.append(np.full(2400, 0.25, dtype=np.float32))
player = Player(audio, device_rate=44100)
player.rendering_done = True
player._playing = True  # as play() sets it, without starting the device
for _ in range(5):
    player._feed_once()
print(player._ring.available(), player.underruns)
player.close()
"""
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "HOME": str(home)}, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    fill, underruns = map(int, result.stdout.split())
    assert fill == 4410 and underruns == 0  # 0.1 s at 44.1 kHz, queued once, nothing fed twice


def test_a_seek_right_after_the_end_of_playback_is_not_undone_by_the_feeders_pause(tmp_path):
    # At the end of the audio the feeder pauses the player: it marks it not playing, stops the stream (which
    # takes a while on a real device) and then settles the playhead at the end. A click on the waveform in
    # between (the UI sees "not playing" at once) used to be overwritten by that settling: the playhead
    # jumped back to the end. Here the stream's stop is made slow so the click always lands in between.
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text('pcm.!default {\n  type null\n}\n')
    code = """
import threading, time
import numpy as np
from studio.audio.buffers import GrowingAudio
from studio.audio.playback import Player
audio = GrowingAudio(24000)
audio.append(np.full(2400, 0.25, dtype=np.float32))
player = Player(audio, device_rate=24000)
player.rendering_done = True
# Played to the end: the whole source was fed and heard, the ring is empty.
player._source_pos = player._seek_origin = len(audio)
player._flushed = True
player._playing = True
real_stop = player._stream.stop
player._stream.stop = lambda: (time.sleep(0.3), real_stop())
feeder = threading.Thread(target=player._feed_once)
feeder.start()
while player.playing:
    time.sleep(0.001)
player.seek(1200)  # the user's click, while the feeder's pause is still stopping the stream
feeder.join()
print(player.position)
player._stream.stop = real_stop
player.close()
"""
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "HOME": str(home)}, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == 1200


def test_pause_keeps_the_sound_the_device_played_while_stopping(tmp_path):
    # PortAudio's stop() plays out the buffers it holds, so the callback keeps reading the ring during the
    # stop. The paused playhead must include those frames, or resuming plays them a second time (heard as a
    # short repeat after every Space-Space). Here the stream's stop drains 512 frames, as a real device does.
    out = _run_player_script(tmp_path, """
player.rendering_done = False
player._playing = True  # as play() sets it, without starting the device
heard = pull(1000)
drained = np.empty((512, 1), dtype=np.float32)
real_stop = player._stream.stop
player._stream.stop = lambda: (player._callback(drained, 512, None, None), real_stop())
player.pause()
paused_at = player.position
player._stream.stop = real_stop
player._playing = True  # resume, again without the device
after = pull(4)
print(paused_at, int(drained[-1, 0]), int(after[0]))
""")
    paused_at, last_heard, first_after_resume = map(int, out.split())
    assert paused_at == 1512 and last_heard == 1511 and first_after_resume == 1512

def _run_player_script(tmp_path, body: str, device_rate: int = 24000) -> str:
    """Run `body` in a subprocess with a Player over a ramp (sample i has value i) on ALSA's null device,
    the stream never started: the test pulls frames through the callback itself, as PortAudio would."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / ".asoundrc").write_text('pcm.!default {\n  type null\n}\n')
    code = """
import numpy as np
from studio.audio.buffers import GrowingAudio
from studio.audio.playback import Player
audio = GrowingAudio(24000)
audio.append(np.arange(24000, dtype=np.float32))
player = Player(audio, device_rate=DEVICE_RATE)
player.rendering_done = True
def pull(frames):
    out = np.zeros((frames, 1), dtype=np.float32)
    player._feed_once()
    player._callback(out, frames, None, None)
    return out[:, 0]
""".replace("DEVICE_RATE", str(device_rate)) + body + "\nplayer.close()\n"
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "HOME": str(home)}, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_playing_to_the_end_after_a_resume_settles_exactly_at_the_end(tmp_path):
    # Resuming at 12345 on a 44.1 kHz device: soxr makes 21416 frames of the rest, which count back to
    # 11654 source samples, one short. The playhead used to stop at 23999, so the time readout never showed
    # the end and Play went on from the last sample instead of starting over.
    out = _run_player_script(tmp_path, """
player.seek(12345)
player._playing = True
while not (player._source_exhausted() and player._ring.available() == 0):
    pull(1024)
player._feed_once()  # sees the audio played out: pauses at its end
print(player.position, player.playing)
""", device_rate=44100)
    assert out.split() == ["24000", "False"]


def test_a_range_plays_exactly_its_samples_and_stops_at_its_end(tmp_path):
    out = _run_player_script(tmp_path, """
player.set_range(1000, 1500)
player._playing = True
heard = np.concatenate([pull(128) for _ in range(6)])
player._feed_once()  # sees the range played out: pauses
print(player.position, player.playing, " ".join(str(int(v)) for v in heard[heard != 0]))
""").split()
    position, playing, heard = int(out[0]), out[1], [int(v) for v in out[2:]]
    assert heard == list(range(1000, 1500))  # nothing before the line, nothing after it
    assert position == 1500 and playing == "False"


def test_a_looped_range_wraps_without_a_gap_and_its_playhead_stays_inside(tmp_path):
    out = _run_player_script(tmp_path, """
player.set_range(1000, 1500, loop=True)
player._playing = True
heard = np.concatenate([pull(100) for _ in range(12)])
print(player.position, " ".join(str(int(v)) for v in heard))
""").split()
    position, heard = int(out[0]), [int(v) for v in out[1:]]
    assert heard == list(range(1000, 1500)) * 2 + list(range(1000, 1200))
    assert position == 1200


def test_a_seek_out_of_the_range_ends_it(tmp_path):
    out = _run_player_script(tmp_path, """
player.set_range(1000, 1500, loop=True)
player.seek(5000)
print(player.play_range, player.looping, player.position)
""")
    assert out.split() == ["None", "False", "5000"]


def test_timeline_audio_reads_its_runs_at_their_places_and_silence_between():
    from studio.audio.buffers import TimelineAudio

    compact = GrowingAudio(24000)
    compact.append(np.arange(1, 11, dtype=np.float32))  # two lines' audio: 1..4 and 5..10
    timeline = TimelineAudio(compact, 30, [(3, 0, 4), (20, 4, 6)])
    assert len(timeline) == 30
    expected = np.zeros(30, np.float32)
    expected[3:7] = [1, 2, 3, 4]
    expected[20:26] = [5, 6, 7, 8, 9, 10]
    np.testing.assert_array_equal(timeline.view(), expected)
    for start, end in ((0, 5), (5, 22), (6, 21), (24, 40), (7, 20)):
        np.testing.assert_array_equal(timeline.view(start, end), expected[start:min(end, 30)])
    assert list(timeline.runs_overlapping(7, 20)) == [] and list(timeline.runs_overlapping(6, 21)) == [0, 1]
