"""Speed on this machine: flow preparation per clip, training samples/s, inference latency per clip.

Usage: python benchmarks/speed.py [--out benchmarks/speed.json]
Prints a table and writes JSON. Frames come from a small synthetic database generated on the fly.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tscnn.config import Config
from tscnn.datasets import read_casme2
from tscnn.models.tscnn import TSCNN, stream_channels
from tscnn.predict import predict_clip as predict_new_clip
from tscnn.predict import save_model
from tscnn.preprocessing.prepare import PrepSettings, clip_inputs, prepare_clip
from tscnn.synth import SynthSettings, write_database
from tscnn.train import bf16_supported


def time_it(fn, repeat: int) -> float:
    """Median seconds of ``repeat`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def training_rate(batch: int, channels_last: bool, bf16: bool, steps: int = 4) -> float:
    """Training samples per second of the full three-stream network (forward + backward + SGD step)."""
    torch.manual_seed(0)
    model = TSCNN(5)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-5)
    x = {s: torch.rand(batch, stream_channels(s), 48, 48) for s in ("ss", "ls", "dt")}
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = {s: v.contiguous(memory_format=torch.channels_last) for s, v in x.items()}
    y = torch.randint(0, 5, (batch,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return batch / time_it(step, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/speed.json"))
    args = parser.parse_args()
    results: dict = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                     "torch": torch.__version__, "bf16_native": bf16_supported()}
    with tempfile.TemporaryDirectory() as tmp:
        write_database(tmp, SynthSettings(subjects=2, seed=11))
        rows = read_casme2(tmp).table.head(6)
        for method in ("tvl1", "dis", "farneback"):
            settings = PrepSettings(flow=method)
            results[f"flow_prep_ms_per_clip_{method}"] = 1000 * float(np.median(
                [time_it(lambda r=r, s=settings: clip_inputs(r, s), 1) for _, r in rows.iterrows()]))
        results["full_prep_ms_per_clip_tvl1_x10_aug"] = 1000 * float(np.median(
            [time_it(lambda r=r: prepare_clip(r, PrepSettings()), 1) for _, r in rows.iterrows()]))
        for name, cl, bf16 in (("fp32", False, False), ("channels_last", True, False),
                               ("channels_last_bf16", True, True)):
            if bf16 and not bf16_supported():
                continue
            results[f"train_samples_per_s_batch128_{name}"] = training_rate(128, cl, bf16)
        model = TSCNN(5).eval()
        one = {s: torch.rand(1, stream_channels(s), 48, 48) for s in ("ss", "ls", "dt")}
        with torch.no_grad():
            results["inference_ms_per_clip_network_fp32"] = 1000 * time_it(lambda: model(one), 20)
        config = Config()
        row = rows.iloc[0]

        def predict_clip() -> None:
            streams = prepare_clip(row, PrepSettings(augment=False))
            with torch.no_grad():
                model({s: torch.from_numpy(streams[s].astype(np.float32)) for s in config.streams})

        results["inference_ms_per_clip_with_tvl1_prep"] = 1000 * time_it(predict_clip, 5)
        # `tscnn predict` end to end: read the clip, (detect the face), spot the apex, TV-L1, network.
        model_file = save_model(Path(tmp) / "model.pt", TSCNN(5), config, tuple("abcde"), {})
        results["predict_ms_synthetic_frame_folder_spotted"] = 1000 * time_it(
            lambda: predict_new_clip(model_file, row.frames_dir, cropped=True), 3)
        video = Path(__file__).resolve().parents[2] / "shared" / "real" / "faces" / "single_face.mp4"
        if video.is_file():
            results["predict_ms_real_video_72_frames_face_detected_spotted"] = 1000 * time_it(
                lambda: predict_new_clip(model_file, video), 3)
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value:.1f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
