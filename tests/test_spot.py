"""Spotting in long videos: the MEGC metric by hand, intervals found in a synthetic long video, the
`tscnn spot` / `tscnn predict` commands on real videos, the low-frame-rate warning and bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from test_predict import model_path  # noqa: F401  (the tiny synthetic model, reused)

from tscnn.cli import SPOT_Z, main
from tscnn.spot import SpotSettings, SpotWarning, iou, memory_source, spot, spotting_metrics
from tscnn.synth.long_video import LongVideoSettings, render_long_video


def test_iou_by_hand():
    assert iou((0, 9), (5, 14)) == pytest.approx(5 / 15)  # frames 5..9 shared, 15 frames in all
    assert iou((10, 19), (10, 19)) == 1.0
    assert iou((0, 9), (10, 19)) == 0.0  # touching is not overlapping (inclusive frame intervals)
    assert iou((0, 9), (0, 4)) == 0.5


def test_megc_metric_by_hand():
    truth = [[(10, 29), (100, 119)], [(50, 59)], [(0, 9)]]
    spotted = [[(12, 31), (14, 33), (200, 210)],  # IoU 18/22: TP; 16/24 with the same GT: FP (matched once); FP
               [(50, 54), (52, 61)],  # IoU 5/10 and 8/12 with one GT: one TP (the better), one FP
               []]  # one ground truth missed
    m = spotting_metrics(spotted, truth)
    assert (m["videos"], m["ground_truth"], m["spotted"], m["tp"]) == (3, 4, 5, 2)
    assert m["precision"] == pytest.approx(2 / 5) and m["recall"] == pytest.approx(2 / 4)
    assert m["f1"] == pytest.approx(2 * 2 / (5 + 4))
    # Best overlap first: (52, 61) has the higher IoU with (50, 59), so it is the TP there, not (50, 54).
    assert spotting_metrics([[(50, 54), (52, 61)]], [[(50, 59), (45, 54)]])["tp"] == 2
    # One spotted interval can match only one of two overlapping ground truths.
    assert spotting_metrics([[(0, 9)]], [[(0, 9), (0, 10)]])["tp"] == 1
    assert spotting_metrics([[(0, 4)]], [[(0, 9)]])["tp"] == 1  # IoU exactly 0.5 counts (>=)
    assert spotting_metrics([[(0, 3)]], [[(0, 9)]])["tp"] == 0  # IoU 0.4 does not
    # Pooled, not averaged: a perfect video and an empty-handed one.
    pooled = spotting_metrics([[(0, 9)], []], [[(0, 9)], [(5, 9), (20, 29), (40, 49)]])
    assert (pooled["tp"], pooled["precision"], pooled["recall"]) == (1, 1.0, 0.25)
    assert spotting_metrics([[]], [[]])["f1"] == 0.0
    with pytest.raises(ValueError, match="2 spotted lists for 1 videos"):
        spotting_metrics([[], []], [[]])


def test_spot_finds_the_embedded_micro_expressions():
    video = render_long_video(LongVideoSettings(seed=7, fps=60, seconds=5, expressions=2, head_moves=1, gap_s=0.6))
    assert len(video.events) == 2 and len(video.head_moves) == 1 and len(video.frames) == 300
    for e in video.events:  # the ground truth is a micro-expression
        assert e.onset < e.apex < e.offset and (e.offset - e.onset) / video.fps < 0.5
    result = spot(memory_source(video.frames, video.fps), cropped=True)
    found = [(iv.onset, iv.offset) for iv in result.intervals]
    metrics = spotting_metrics([found], [video.intervals])
    assert metrics["tp"] == 2 and metrics["spotted"] <= 3, (found, video.intervals)
    for iv in result.intervals:
        assert iv.onset <= iv.apex <= iv.offset and iv.onset_s == pytest.approx(iv.onset / 60, abs=1e-3)
        assert iv.score >= SpotSettings().z
    # A neutral recording with a head movement: nothing to spot.
    neutral = render_long_video(LongVideoSettings(seed=8, fps=60, seconds=4, expressions=0, head_moves=1, gap_s=0.6))
    assert spot(memory_source(neutral.frames, neutral.fps), cropped=True).intervals == []


def test_low_frame_rate_warns_but_runs():
    video = render_long_video(LongVideoSettings(seed=9, fps=25, seconds=3, expressions=1, head_moves=0, gap_s=0.8))
    with pytest.warns(SpotWarning, match="25 fps is below 60 fps"):
        result = spot(memory_source(video.frames, video.fps), cropped=True)
    assert result.low_fps and result.frames == 75
    fast = render_long_video(LongVideoSettings(seed=9, fps=60, seconds=2, expressions=1, head_moves=0, gap_s=0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpotWarning)
        assert not spot(memory_source(fast.frames, fast.fps), cropped=True).low_fps


def test_spot_command_on_a_real_video(model_path, real_faces, tmp_path, capsys):  # noqa: F811
    video = real_faces / "WolfgangLanger_Pexels.mp4"  # 472 frames at 23.976 fps, several expressions
    out = tmp_path / "intervals.json"
    assert main(["spot", str(video), "--model", str(model_path), "--save-json", str(out)]) == 0
    printed = capsys.readouterr()
    assert f"warning: {video}: 23.98 fps is below 60 fps" in printed.err  # one plain line, no Python location
    assert "onset" in printed.out and "472 frames" in printed.out
    saved = json.loads(out.read_text())
    assert saved["fps"] == pytest.approx(23.976, abs=1e-3) and saved["frames"] == 472 and saved["low_fps"]
    classes = saved["model_card"]["classes"]
    for iv in saved["intervals"]:
        assert 0 <= iv["onset"] <= iv["apex"] <= iv["offset"] < 472
        assert iv["offset_s"] == pytest.approx(iv["offset"] / saved["fps"], abs=1e-3)
        assert list(iv["probabilities"]) == classes and sum(iv["probabilities"].values()) == pytest.approx(1, abs=1e-3)
        assert iv["predicted"] == max(iv["probabilities"], key=iv["probabilities"].get)
        assert f"{iv['onset']:>7} {iv['apex']:>7} {iv['offset']:>7}" in printed.out
    assert main(["spot", str(real_faces / "single_face.mp4")]) == 0  # spotting alone, no model
    assert "72 frames at 30 fps" in capsys.readouterr().out


def test_predict_on_a_long_video_points_at_spot(model_path, real_faces, capsys):  # noqa: F811
    video = real_faces / "WolfgangLanger_Pexels.mp4"
    assert main(["predict", str(model_path), str(video)]) == 0
    err = capsys.readouterr().err
    assert "19.7 s long" in err and "classified as ONE clip" in err and f"tscnn spot {video}" in err
    assert err.count("\n") == err.count("warning: ")  # each warning is one line


def test_bad_input_is_one_line_naming_the_file(tmp_path, capsys):
    missing = tmp_path / "missing.mp4"
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(np.random.default_rng(0).bytes(2048))
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "img1.jpg").write_bytes(b"")
    for path, reason in ((missing, "no such file or folder"), (notes, "not a frame folder or a video file"),
                         (fake, "no frames could be decoded"), (folder, "a frame folder has no frame rate")):
        assert main(["spot", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}: {reason}") and err.count("\n") == 1, err


def test_the_command_line_default_is_the_library_default():
    assert SPOT_Z == SpotSettings().z


def test_spot_command_on_a_written_synthetic_video(tmp_path, capsys):
    from tscnn.synth.long_video import write_long_video

    video = render_long_video(LongVideoSettings(seed=7, fps=60, seconds=5, expressions=2, head_moves=1, gap_s=0.6))
    path = write_long_video(tmp_path / "long", video)
    truth = json.loads(path.with_suffix(".json").read_text())
    assert [(e["onset"], e["offset"]) for e in truth["events"]] == video.intervals and truth["frames"] == 300
    out = tmp_path / "found.json"
    assert main(["spot", str(path), "--cropped", "--save-json", str(out), "--json"]) == 0
    printed = capsys.readouterr()
    assert "below 60 fps" not in printed.err
    assert json.loads(printed.out) == json.loads(out.read_text())  # --json: the same intervals, alone on stdout
    found = [(iv["onset"], iv["offset"]) for iv in json.loads(out.read_text())["intervals"]]
    assert spotting_metrics([found], [video.intervals])["tp"] == 2, (found, video.intervals)
