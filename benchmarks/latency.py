"""Clip-to-label latency on ONE core: per stage and end to end, the reference path and the fast path.

Paths: ``tvl1`` is what ``tscnn predict`` does (``tscnn.predict.predict_frames``: Haar face detection on
the full-resolution onset frame, every frame of the clip cropped, TV-L1 flow, all streams built, the
network in fp32); ``dis`` and ``farneback`` are ``tscnn.fast.FastPredictor`` with that flow (face found
on a shrunk onset frame, only onset / apex / offset cropped, only the streams the network reads,
channels-last network in bf16 where the CPU has it natively).

Stages: decode (the video file to grey frames), face (detection on the onset frame), crop (crop and
resize to the work size), flow (onset->apex and apex->offset), streams (the network's input tensors),
forward (network and softmax); end to end from frames in memory (apex given), the same with the face
box of the previous clip reused, and from the video file. Apex spotting (when no apex is given) is
timed on its own. Median and 90th percentile over repeats, after one warm-up call.

The clip is ../shared/real/faces/single_face.mp4 (72 frames, 640x360, a real face going from neutral
to a smile) when present, else a synthetic clip written to a temporary video. The model is an
untrained TSCNN (three streams, 5 classes, inputs of --size pixels: 48 the paper's, 28 the tscnn-plus
recipe's) unless --model names a file: the network's cost does not depend on its training.

Usage: python benchmarks/latency.py [--model model.pt | --size 48] [--video clip.mp4] [--repeats 30] [--quick]
       [--out benchmarks/latency.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from tscnn.config import Config
from tscnn.fast import FastPredictor
from tscnn.models.tscnn import TSCNN
from tscnn.predict import SavedModel, load_saved_model, predict_frames, read_clip, save_model
from tscnn.preprocessing.apex import spot_apex_frames
from tscnn.preprocessing.face import crop, detect_face
from tscnn.preprocessing.flow import compute_flow
from tscnn.preprocessing.prepare import PrepSettings
from tscnn.preprocessing.streams import make_streams
from tscnn.run_facts import cpu_name
from tscnn.train import bf16_supported

REAL_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "real" / "faces" / "single_face.mp4"
TARGET_MS = 20.0
PATHS = ("tvl1", "dis", "farneback")
STAGES = ("decode", "face", "crop", "flow", "streams", "forward", "end to end (frames in memory)",
          "end to end, face box reused", "end to end (video file)", "apex spotting (no apex given)",
          "forward, onnxruntime fp32")


def timings(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    """Median and 90th percentile wall-clock milliseconds of ``repeats`` calls after one warm-up call (none for
    a single call: the quick mode is a smoke test), and the median CPU time of this process per call
    (``cpu_median_ms``: on one thread, what the wall time would be on a machine nothing else uses)."""
    if repeats > 1:
        fn()
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.process_time() - start_cpu))
    return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)),
            "cpu_median_ms": float(np.median(cpu)), "repeats": repeats}


def synthetic_video(folder: Path) -> Path:
    """A synthetic micro-expression clip (already a face crop) written as an .avi file."""
    from tscnn.datasets import read_casme2
    from tscnn.synth import SynthSettings, write_database

    write_database(folder / "db", SynthSettings(subjects=1, seed=5))
    frames, _ = read_clip(read_casme2(folder / "db").table.iloc[0].frames_dir)
    path = folder / "clip.avi"
    h, w = frames[0].shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (w, h))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def reference_stages(saved: SavedModel, images: list[np.ndarray], apex: int, cropped: bool, video: Path,
                     repeats: int, slow: int) -> dict[str, dict]:
    """The stages of ``predict_frames`` (TV-L1), each run as it does."""
    model, settings = saved.model, PrepSettings.from_config(saved.config)
    last, out = len(images) - 1, {}
    box = None if cropped else detect_face(images[0])
    if not cropped:
        out["face"] = timings(lambda: detect_face(images[0]), repeats)

    def crops() -> list[np.ndarray]:
        span = images if box is None else [crop(f, box) for f in images]
        size = (settings.work_size, settings.work_size)
        return [cv2.resize(span[i], size, interpolation=cv2.INTER_AREA) for i in (0, apex, last)]

    out["crop"] = timings(crops, repeats)
    on, ap, off = crops()
    out["flow"] = timings(lambda: (compute_flow(on, ap, "tvl1"), compute_flow(ap, off, "tvl1")), slow)
    flow1, flow2 = compute_flow(on, ap, "tvl1"), compute_flow(ap, off, "tvl1")

    def streams() -> dict[str, torch.Tensor]:
        arrays = make_streams(ap, flow1, flow2, settings.size, settings.blocks)
        return {s: torch.from_numpy(arrays[s][None].astype(np.float32)) for s in model.streams}

    out["streams"] = timings(streams, repeats)
    batch = streams()

    def forward() -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(model(batch), dim=1)[0].numpy()

    out["forward"] = timings(forward, repeats)
    numbers = list(range(len(images)))
    out["end to end (frames in memory)"] = timings(
        lambda: predict_frames(saved, images, numbers, "clip", 0, apex, last, cropped), slow)
    out["end to end (video file)"] = timings(
        lambda: predict_frames(saved, *read_clip(video), "clip", 0, apex, last, cropped), slow)
    return out


def fast_stages(saved: SavedModel, images: list[np.ndarray], apex: int, cropped: bool, video: Path, flow: str,
                repeats: int, few: int) -> tuple[dict[str, dict], FastPredictor]:
    """The stages of ``FastPredictor.predict`` with ``flow``."""
    fast = FastPredictor(saved, flow=flow)
    last, out = len(images) - 1, {}
    keys = [images[0], images[apex], images[last]]
    cut = None if cropped else fast.face_cut(images[0])
    if not cropped:
        out["face"] = timings(lambda: fast.face_cut(images[0]), repeats)
    out["crop"] = timings(lambda: fast.key_crops(keys, cut), repeats)
    on, ap, off = fast.key_crops(keys, cut)
    out["flow"] = timings(lambda: fast.flows(on, ap, off), repeats)
    flow1, flow2 = fast.flows(on, ap, off)
    out["streams"] = timings(lambda: fast.inputs(ap, flow1, flow2), repeats)
    batch = fast.inputs(ap, flow1, flow2)
    out["forward"] = timings(lambda: fast.forward(batch), repeats)
    out["end to end (frames in memory)"] = timings(lambda: fast.predict(images, 0, apex, last, cropped=cropped),
                                                   repeats)
    if not cropped:
        out["end to end, face box reused"] = timings(lambda: fast.predict(images, 0, apex, last, reuse_box=True),
                                                     repeats)
    out["end to end (video file)"] = timings(
        lambda: fast.predict(read_clip(video)[0], 0, apex, last, cropped=cropped), few)
    return out, fast


def onnx_forward(saved_path: Path, saved: SavedModel, folder: Path, repeats: int) -> dict | None:
    """The network's forward by onnxruntime on one thread (fp32), when the onnx packages are installed."""
    from tscnn.export import MissingPackageError, export_onnx, onnx_session

    try:
        info = export_onnx(saved_path, folder / "model.onnx")
    except MissingPackageError:
        return None
    session = onnx_session(folder / "model.onnx", threads=1)
    rng = np.random.default_rng(0)
    feed = {s: rng.random((1, *shape[1:]), dtype=np.float32) for s, shape in info["inputs"].items()}
    return timings(lambda: session.run(["probabilities"], feed), repeats)


def box_iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / float(aw * ah + bw * bh - inter)


def run(model_path: Path | None, video: Path | None, repeats: int, slow: int, with_onnx: bool, size: int = 48) -> dict:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    results: dict = {"cpu": cpu_name(), "machine": platform.machine(), "threads": 1,
                     "cpu_capability": torch.backends.cpu.get_cpu_capability(), "bf16_native": bf16_supported(),
                     "torch": torch.__version__, "opencv": cv2.__version__, "target_ms": TARGET_MS}
    results["avx512"] = "AVX512" in results["cpu_capability"]
    results["cpus"] = os.cpu_count()
    results["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else [float("nan")] * 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if video is None:
            video = REAL_VIDEO if REAL_VIDEO.is_file() else synthetic_video(folder)
        cropped = video != REAL_VIDEO and video.suffix == ".avi" and video.parent == folder
        if model_path is None:
            torch.manual_seed(0)
            model_path = save_model(folder / "model.pt", TSCNN(5, input_size=size), Config(size=size),
                                    tuple("abcde"), {})
        saved = load_saved_model(model_path)
        images, _ = read_clip(video)
        last = len(images) - 1
        span = images if cropped else [crop(f, detect_face(images[0])) for f in images]
        apex = spot_apex_frames(span)
        results["clip"] = {"video": video.name, "frames": len(images), "size": list(images[0].shape[::-1]),
                           "apex": apex, "face_crop_already": cropped}
        results["model"] = {"name": saved.config.model, "streams": list(saved.model.streams),
                            "input_size": saved.config.size,
                            "parameters": sum(p.numel() for p in saved.model.parameters())}
        stages: dict[str, dict[str, dict]] = {}
        few = slow if slow == 1 else max(3, repeats // 5)  # calls of the stages that read the whole clip
        decode = timings(lambda: read_clip(video), few)
        stages["tvl1"] = {"decode": decode, **reference_stages(saved, images, apex, cropped, video, repeats, slow)}
        spot = timings(lambda: spot_apex_frames(span), few)
        stages["tvl1"]["apex spotting (no apex given)"] = spot
        answers = {"tvl1": predict_frames(saved, images, list(range(len(images))), "clip", 0, apex, last, cropped)}
        for flow in ("dis", "farneback"):
            timed, fast = fast_stages(saved, images, apex, cropped, video, flow, repeats, few)
            stages[flow] = {"decode": decode, **timed, "apex spotting (no apex given)": spot}
            answers[flow] = fast.predict(images, 0, apex, last, cropped=cropped)
            results["fast_bf16"] = fast.bf16
        if with_onnx:
            onnx = onnx_forward(Path(model_path), saved, folder, repeats)
            if onnx is not None:
                for path in PATHS:
                    stages[path]["forward, onnxruntime fp32"] = onnx
        if not cropped:
            results["face_box"] = {"reference": [int(v) for v in detect_face(images[0])],
                                   "fast": [int(v) for v in FastPredictor(saved, flow="dis").face_box(images[0])]}
            results["face_box"]["iou"] = box_iou(results["face_box"]["reference"], results["face_box"]["fast"])
        results["answers"] = {path: {"predicted": a.predicted, "probabilities": a.probabilities}
                              for path, a in answers.items()}
        results["stages"] = stages
        fast = stages["dis"]["end to end (frames in memory)"]
        results["fast_frames_to_label_ms"] = fast["median_ms"]
        results["fast_frames_to_label_cpu_ms"] = fast["cpu_median_ms"]
        results["meets_target"] = fast["median_ms"] < TARGET_MS
    return results


def table(results: dict) -> str:
    """The stage table as markdown: wall-clock median / p90 ms per path, CPU-time median in brackets."""
    lines = ["| stage (ms: median / p90 [CPU time]) | " + " | ".join(
        ["TV-L1 (`tscnn predict`)", "fast, DIS", "fast, Farneback"]) + " |", "|---|---:|---:|---:|"]
    for stage in STAGES:
        cells = []
        for path in PATHS:
            t = results["stages"][path].get(stage)
            cells.append("-" if t is None else f"{t['median_ms']:.1f} / {t['p90_ms']:.1f} [{t['cpu_median_ms']:.1f}]")
        if any(c != "-" for c in cells):
            lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a model file (default: an untrained three-stream TSCNN)")
    parser.add_argument("--size", type=int, help="input side of the default untrained TSCNN (default 48, the paper's; "
                        "28 = the tscnn-plus recipe's)")
    parser.add_argument("--video", type=Path, help="a face video (default: the real one in ../shared, else synthetic)")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per fast stage (default 30)")
    parser.add_argument("--slow-repeats", type=int, default=5, help="timed calls per TV-L1 flow / end to end (5)")
    parser.add_argument("--quick", action="store_true", help="2 repeats, 1 for TV-L1, no ONNX (a smoke test)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/latency.json"))
    args = parser.parse_args()
    if args.model is not None and args.size is not None:
        parser.error("--size sets the default untrained model's input; a --model file has its own")
    repeats, slow = (2, 1) if args.quick else (args.repeats, args.slow_repeats)
    results = run(args.model, args.video, repeats, slow, with_onnx=not args.quick, size=args.size or 48)
    results["quick"] = args.quick
    clip = results["clip"]
    print(f"{results['cpu']} ({results['cpu_capability']}), 1 thread; fast path bf16: {results['fast_bf16']}; "
          f"clip {clip['video']}: {clip['frames']} frames {clip['size'][0]}x{clip['size'][1]}, apex {clip['apex']}")
    print(table(results))
    verdict = "meets" if results["meets_target"] else "misses"
    print(f"fast path (DIS), frames in memory to label: {results['fast_frames_to_label_ms']:.1f} ms median wall "
          f"clock ({results['fast_frames_to_label_cpu_ms']:.1f} ms CPU time): {verdict} the {TARGET_MS:.0f} ms target "
          f"(load average at the start {results['load_average'][0]:.1f} on {results['cpus']} CPUs)")
    if "face_box" in results:
        print(f"face box: reference {results['face_box']['reference']}, fast {results['face_box']['fast']} "
              f"(IoU {results['face_box']['iou']:.2f})")
    for path, answer in results["answers"].items():
        print(f"answer {path}: {answer['predicted']} {answer['probabilities']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
