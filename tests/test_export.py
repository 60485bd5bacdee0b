"""ONNX export (``tscnn export``), the fast clip-to-label path and the latency benchmark's quick mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tscnn.cli import main
from tscnn.config import Config
from tscnn.predict import load_saved_model, predict_frames, read_clip, save_model
from tscnn.train import build_model

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'tscnn[onnx]')")
pytest.importorskip("onnxscript", reason="the onnx extra is not installed (pip install 'tscnn[onnx]')")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A three-stream TSCNN model file (untrained: export and latency do not depend on training) at 28 px."""
    config = Config(size=28)
    torch.manual_seed(0)
    model = build_model(config, 3, None)
    return save_model(tmp_path_factory.mktemp("model") / "model.pt", model, config, ("neg", "pos", "sur"), {})


def test_export_matches_pytorch_within_tolerance(tiny_model, tmp_path, capsys):
    import onnx
    import onnxruntime as ort

    from tscnn.export import export_onnx

    info = export_onnx(tiny_model, tmp_path / "model.onnx")
    assert info["max_abs_diff"] <= info["tolerance"] == 1e-4
    assert info["inputs"] == {"ss": ["batch", 1, 28, 28], "ls": ["batch", 9, 28, 28], "dt": ["batch", 4, 28, 28]}
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(tmp_path / "model.onnx")).metadata_props}
    assert meta["tscnn_classes"] == ["neg", "pos", "sur"] and meta["tscnn_streams"] == ["ss", "ls", "dt"]
    assert meta["tscnn_tta_flip"] is False
    # Our own check, at another batch size (the batch is free): logits and probabilities as PyTorch's.
    saved = load_saved_model(tiny_model)
    rng = np.random.default_rng(1)
    feed = {s: rng.random((5, c, 28, 28), dtype=np.float32) for s, c in (("ss", 1), ("ls", 9), ("dt", 4))}
    logits, proba = ort.InferenceSession(str(tmp_path / "model.onnx")).run(["logits", "probabilities"], feed)
    with torch.no_grad():
        want = saved.model({s: torch.from_numpy(x) for s, x in feed.items()}).numpy()
    assert np.abs(logits - want).max() < 1e-4
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    # The command prints the difference.
    assert main(["export", str(tiny_model), str(tmp_path / "cli.onnx")]) == 0
    out = capsys.readouterr().out
    assert "max abs diff" in out and (tmp_path / "cli.onnx").is_file()
    # One self-contained file per export: no external-weights file (.onnx.data), no temporary file left.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.onnx", "model.onnx"]


def test_a_peer_network_exports(tmp_path):
    from tscnn.export import export_onnx

    config = Config(model="ststnet", streams=("uvs",), size=28)
    path = save_model(tmp_path / "ststnet.pt", build_model(config, 3, None), config, ("a", "b", "c"), {})
    info = export_onnx(path, tmp_path / "ststnet.onnx")
    assert info["inputs"] == {"uvs": ["batch", 3, 28, 28]} and info["max_abs_diff"] < 1e-5


def test_export_fails_loudly_above_the_tolerance(tiny_model, tmp_path):
    from tscnn.export import export_onnx

    with pytest.raises(ValueError, match="differs from PyTorch"):
        export_onnx(tiny_model, tmp_path / "model.onnx", tolerance=1e-12)
    assert not (tmp_path / "model.onnx").exists()


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_export_of_a_missing_bad_or_features_model_is_one_line(tmp_path, capsys):
    out = str(tmp_path / "x.onnx")
    assert "does not exist" in one_line_error(capsys, ["export", str(tmp_path / "missing.pt"), out])
    (tmp_path / "junk.pt").write_text("not a model")
    assert "not a tscnn model file" in one_line_error(capsys, ["export", str(tmp_path / "junk.pt"), out])
    torch.save({"state_dict": {}, "config": Config(model="hoof", streams=("uvs",)).to_dict(), "classes": ["a", "b"],
                "channels": {"uvs": 3}}, tmp_path / "hoof.pt")
    assert "features model" in one_line_error(capsys, ["export", str(tmp_path / "hoof.pt"), out])
    assert not Path(out).exists()


def test_a_missing_onnx_package_names_the_pip_command(tiny_model, tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    err = one_line_error(capsys, ["export", str(tiny_model), str(tmp_path / "x.onnx")])
    assert "onnxruntime" in err and "pip install" in err


def test_fast_path_gives_the_reference_inputs_and_leaves_the_reference_unchanged(tiny_model, tmp_path):
    from tscnn.datasets import read_casme2
    from tscnn.fast import FastPredictor
    from tscnn.synth import SynthSettings, write_database

    write_database(tmp_path, SynthSettings(subjects=1, seed=4))
    saved = load_saved_model(tiny_model)
    row = read_casme2(tmp_path).table.iloc[0]
    images, numbers = read_clip(row.frames_dir)
    apex = len(images) // 2
    before = predict_frames(saved, images, numbers, "clip", numbers[0], numbers[apex], numbers[-1], cropped=True)
    fast = FastPredictor(saved, flow="dis", bf16=False)
    got = fast.predict(images, 0, apex, len(images) - 1, cropped=True)
    assert (got.onset, got.apex, got.offset, got.apex_rule) == (0, apex, len(images) - 1, "given")
    assert set(got.probabilities) == set(saved.classes)
    assert abs(sum(got.probabilities.values()) - 1) < 1e-3
    again = predict_frames(saved, images, numbers, "clip", numbers[0], numbers[apex], numbers[-1], cropped=True)
    assert again == before  # the fast predictor works on its own copy of the network
    # Its stages give what the reference preparation gives with the same flow (DIS) and no face box.
    from dataclasses import replace

    from tscnn.preprocessing.prepare import PrepSettings, frames_to_inputs
    from tscnn.preprocessing.streams import make_streams

    settings = replace(PrepSettings.from_config(saved.config), flow="dis")
    key, flow1, flow2 = frames_to_inputs(images[0], images[apex], images[-1], True, settings, "c", "c")
    reference = make_streams(key, flow1, flow2, settings.size, settings.blocks)
    on, ap, off = fast.key_crops([images[0], images[apex], images[-1]], None)
    for stream, tensor in fast.inputs(ap, *fast.flows(on, ap, off)).items():
        assert np.array_equal(tensor.numpy()[0], reference[stream]), stream


def test_fast_path_finds_the_face_on_a_real_video(tiny_model, real_faces):
    from tscnn.fast import FastPredictor, predict_clip_fast
    from tscnn.preprocessing.face import detect_face

    images, _ = read_clip(real_faces / "single_face.mp4")
    fast = FastPredictor(load_saved_model(tiny_model))
    x, y, w, h = fast.face_box(images[0])
    rx, ry, rw, rh = detect_face(images[0])
    overlap = max(0, min(x + w, rx + rw) - max(x, rx)) * max(0, min(y + h, ry + rh) - max(y, ry))
    assert overlap / (w * h + rw * rh - overlap) > 0.7
    result = predict_clip_fast(tiny_model, real_faces / "single_face.mp4", apex=30)
    assert (result.onset, result.apex, result.offset) == (0, 30, len(images) - 1)


def test_the_fast_path_uses_the_flow_the_model_was_trained_with(tiny_model, tmp_path):
    """A model trained with DIS (or Farneback) gets its own flow; a TV-L1 model gets DIS and a warning that
    its network sees another flow than in training; an explicit flow is kept."""
    import warnings

    from tscnn.fast import FastPredictor

    tvl1 = load_saved_model(tiny_model)
    with pytest.warns(UserWarning, match="trained on tvl1 flow; the fast path computes DIS"):
        assert FastPredictor(tvl1).settings.flow == "dis"
    for flow in ("dis", "farneback"):
        config = Config(size=28, flow=flow)
        path = save_model(tmp_path / flow / "model.pt", build_model(config, 3, None), config, ("a", "b", "c"), {})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert FastPredictor(load_saved_model(path)).settings.flow == flow
    assert FastPredictor(tvl1, flow="farneback").settings.flow == "farneback"
    with pytest.raises(ValueError, match="fast flows"):
        FastPredictor(tvl1, flow="tvl1")


def test_latency_benchmark_quick_mode(tmp_path):
    out = tmp_path / "latency.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "latency.py"), "--quick", "--size", "28",
                           "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| forward |" in done.stdout and "frames in memory to label" in done.stdout
    results = json.loads(out.read_text())
    for path in ("tvl1", "dis", "farneback"):
        for stage in ("decode", "crop", "flow", "streams", "forward", "end to end (frames in memory)"):
            assert results["stages"][path][stage]["median_ms"] > 0
    assert {"cpu", "bf16_native", "avx512", "fast_bf16"} <= set(results)
    assert results["model"]["input_size"] == 28 and results["model"]["streams"] == ["ss", "ls", "dt"]
    refused = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "latency.py"), "--quick", "--size", "28",
                              "--model", str(tmp_path / "model.pt")], capture_output=True, text=True, timeout=60,
                             cwd=ROOT)
    assert refused.returncode == 2 and "a --model file has its own" in refused.stderr


def test_a_model_with_flow_centring_and_test_time_flip_exports(tmp_path):
    """centre_flow and scale_flow (a per-map median and quantile inside the network) survive the export;
    tscnn_tta_flip says to average."""
    import onnx

    from tscnn.export import export_onnx

    config = Config(size=28, streams=("uvs",), centre_flow=True, scale_flow=True, tta_flip=True)
    torch.manual_seed(0)
    path = save_model(tmp_path / "model.pt", build_model(config, 3, None), config, ("neg", "pos", "sur"), {})
    info = export_onnx(path, tmp_path / "model.onnx")
    assert info["max_abs_diff"] <= info["tolerance"]
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(tmp_path / "model.onnx")).metadata_props}
    assert meta["tscnn_tta_flip"] is True


def test_fast_flow_accuracy_benchmark_quick_mode(tmp_path):
    """The benchmark of what fast flow costs runs end to end on tiny databases (a smoke test of the script: two
    epochs measure nothing) and writes every part under OUT/quick, never into the real results."""
    script = ROOT / "benchmarks" / "fast_flow_accuracy.py"
    done = subprocess.run([sys.executable, str(script), "--quick", "--seeds", "0", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "quick" / "fast_flow_accuracy.json").read_text())
    assert results["quick"] is True
    assert list(results["training"]["flows"]) == ["tvl1", "dis", "farneback"]
    assert list(results["training_casme2"]["flows"]) == ["tvl1", "dis"]
    for part in ("training", "training_casme2"):
        assert "against_tvl1" in results[part]["flows"]["dis"] and "against_tvl1" not in results[part]["flows"]["tvl1"]
    for model in results["prediction"]["models"].values():
        assert model["paths"]["reference"]["agrees_with_reference"] == 1.0
        assert all(0 <= path["uf1"] <= 1 for path in model["paths"].values())
    assert [m["flow_in_training"] for m in results["prediction"]["models"].values()] == ["tvl1", "dis"]
