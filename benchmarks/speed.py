"""Speed on this machine: where the time goes, flow preparation per clip, training samples/s, inference.

Where the time goes: FLOPs per training sample counted from the model (``torch.utils.flop_counter``),
the achieved GFLOP/s of the bare network's training step against the peak measured in the same run
(a large matrix product), in fp32 and bf16, and the bare network against the real training loop
(``Trainer.fit``: data, augmentation variants, validation and the leaky shadow's test pass included).

Usage: python benchmarks/speed.py [--out benchmarks/speed.json] [--quick]
Prints a table and writes JSON. Frames come from a small synthetic database generated on the fly.

Training throughput (the GPU path, runs on the CPU too):
    python benchmarks/speed.py --throughput --device cuda [--concurrent 4] [--clips 512] [--epochs 3]
trains the three-stream network with the real loop (``Trainer.fit``: prepared tensors of the x10 variants
resident on the device, batches and variants indexed there, bf16 autocast, channels-last, batch 128)
and reports training samples/s after a warm-up epoch; ``--concurrent N`` trains N folds at once in N
processes on the same device (what ``tscnn run --jobs N --device cuda`` does) and adds their rates.
The target on one H100 is >= 20,000 samples/s.

First preparation in worker processes (what ``--jobs`` does before training, and ``tscnn pretrain --jobs``):
    python benchmarks/speed.py --prepare [--prep-clips 40] [--prep-jobs 1 2]
prepares the same synthetic clips without a cache (face crop, TV-L1, x10 variants) in each number of
processes (OpenCV's own threads in one process; one OpenCV thread in each worker), and in one process with
one OpenCV thread as the baseline; reports clips/s and checks that the tensors equal the baseline's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from tscnn.config import Config
from tscnn.datasets import read_casme2
from tscnn.models.tscnn import TSCNN, stream_channels
from tscnn.predict import predict_clip as predict_new_clip
from tscnn.predict import save_model
from tscnn.preprocessing.prepare import PrepSettings, clip_inputs, prepare, prepare_clip
from tscnn.run_facts import code_version, cpu_name
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


def matmul_peak_gflops(bf16: bool, n: int = 2048, repeat: int = 5) -> float:
    """GFLOP/s of a large square matrix product: the practical peak of this CPU for dense arithmetic."""
    dtype = torch.bfloat16 if bf16 else torch.float32
    a, b = torch.rand(n, n, dtype=dtype), torch.rand(n, n, dtype=dtype)
    return 2 * n ** 3 / time_it(lambda: a @ b, repeat) / 1e9


def training_flops_per_sample(streams: tuple[str, ...] = ("ss", "ls", "dt"), size: int = 48) -> float:
    """FLOPs of one training sample (forward + backward) of TSCNN, counted by PyTorch from the model."""
    from torch.utils.flop_counter import FlopCounterMode

    model = TSCNN(5, streams, input_size=size)
    x = {s: torch.rand(8, stream_channels(s), size, size) for s in streams}
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), torch.zeros(8, dtype=torch.long)).backward()
    return counter.get_total_flops() / 8


def loop_rate(bf16: bool, clips: int = 96, epochs: int = 2) -> float:
    """Training samples/s of the real loop (Trainer.fit on prepared arrays of the three streams, x10 variants
    expanded, batch 128, validation and the leaky shadow's test pass each epoch)."""
    from tscnn.train import Trainer

    rng = np.random.default_rng(0)
    arrays = {s: rng.random((clips, 10, stream_channels(s), 48, 48)).astype(np.float16) for s in ("ss", "ls", "dt")}
    labels = rng.integers(0, 5, clips)
    config = Config(max_epochs=epochs, selection="fixed", val_fraction=0.0, bf16=bf16)
    train, val, test = np.arange(0, clips - 16), np.arange(clips - 16, clips - 8), np.arange(clips - 8, clips)
    start = time.perf_counter()
    Trainer(config, 5, seed=0).fit(arrays, labels, train, val, test, progress=False)
    return len(train) * 10 * epochs / (time.perf_counter() - start)


_BARRIER = None


def _start_together(barrier) -> None:
    global _BARRIER
    _BARRIER = barrier


def fold_throughput(device: str = "cpu", clips: int = 256, epochs: int = 3, batch: int = 128,
                    threads: int = 0) -> dict:
    """Training samples/s of one fold of the three-stream network in the real loop on random prepared
    tensors (clips x 10 variants), timed over ``epochs`` epochs after a warm-up one."""
    from tscnn.train import Trainer

    if threads:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    arrays = {s: rng.random((clips, 10, stream_channels(s), 48, 48), dtype=np.float32).astype(np.float16)
              for s in ("ss", "ls", "dt")}
    labels = rng.integers(0, 5, clips)
    config = Config(device=device, batch_size=batch, max_epochs=epochs + 1, selection="fixed", val_fraction=0.0)
    trainer = Trainer(config, 5, seed=0)
    trainer.data(arrays)  # prepared tensors to the device once, before the clock
    if _BARRIER is not None:
        _BARRIER.wait()
    history = trainer.fit(arrays, labels, np.arange(clips), np.array([], int), progress=False).history[1:]
    seconds = sum(h["seconds"] for h in history)  # each epoch's training time (ends with a device sync)
    return {"samples_per_s": sum(h["samples"] for h in history) / seconds, "bf16": trainer.autocast,
            "resident": trainer.resident, "channels_last": config.channels_last,
            "threads": torch.get_num_threads()}


def throughput(device: str, concurrent: int, clips: int, epochs: int, batch: int) -> dict:
    """One fold, or ``concurrent`` folds at once in spawned processes sharing the device."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    results: dict = {"device": device, "device_name": torch.cuda.get_device_name(0) if device.startswith("cuda")
                     else cpu_name(), "clips": clips, "epochs_timed": epochs, "batch": batch,
                     "concurrent_folds": concurrent}
    if concurrent <= 1:
        one = fold_throughput(device, clips, epochs, batch)
        results.update(one, train_samples_per_s=one["samples_per_s"])
        return results
    context = multiprocessing.get_context("spawn")
    threads = max(1, torch.get_num_threads() // concurrent)
    with ProcessPoolExecutor(concurrent, mp_context=context, initializer=_start_together,
                             initargs=(context.Barrier(concurrent),)) as pool:
        futures = [pool.submit(fold_throughput, device, clips, epochs, batch, threads) for _ in range(concurrent)]
        folds = [future.result() for future in futures]
    results.update({k: v for k, v in folds[0].items() if k != "samples_per_s"})
    results["per_fold_samples_per_s"] = [f["samples_per_s"] for f in folds]
    results["train_samples_per_s"] = sum(results["per_fold_samples_per_s"])
    return results


def preparation_rates(clips: int, jobs: list[int]) -> dict:
    """Clips/s of a first preparation (no cache) of the same synthetic clips in each number of worker processes,
    against one process with one OpenCV thread, and whether every run gave the baseline's tensors."""
    results: dict = {"measured": time.strftime("%Y-%m-%d %H:%M"), "code_version": code_version(), "cpu": cpu_name(),
                     "cpus": os.cpu_count(), "settings": "PrepSettings() (TV-L1, 48 px, x10 variants)"}
    with tempfile.TemporaryDirectory() as tmp:
        write_database(tmp, SynthSettings(subjects=max(2, clips // 8), seed=11))
        rows = read_casme2(tmp).table.head(clips)
        cv2.setNumThreads(1)  # the baseline: one process, one OpenCV thread
        start = time.perf_counter()
        first = prepare(rows, PrepSettings(), None, progress=False).arrays
        results["clips_per_s_jobs1_one_opencv_thread"] = len(rows) / (time.perf_counter() - start)
        cv2.setNumThreads(-1)  # OpenCV's default: its own threads over every core
        for n in jobs:
            start = time.perf_counter()
            arrays = prepare(rows, PrepSettings(), None, progress=False, jobs=n).arrays
            results[f"clips_per_s_jobs{n}"] = len(rows) / (time.perf_counter() - start)
            results[f"same_tensors_jobs{n}"] = all(np.array_equal(arrays[k], first[k]) for k in first)
        results["clips"] = len(rows)
    return results


def where_time_goes(results: dict) -> None:
    flops = training_flops_per_sample()
    results["cpu"] = cpu_name()
    results["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    results["training_gflop_per_sample"] = flops / 1e9
    for bf16 in (False, True):
        if bf16 and not bf16_supported():
            results["path_bf16"] = "not taken: this CPU has no native bf16 (autocast would be slower than fp32)"
            continue
        tag = "bf16" if bf16 else "fp32"
        peak = matmul_peak_gflops(bf16)
        bare = training_rate(128, True, bf16)
        loop = loop_rate(bf16)
        results[f"matmul_peak_gflops_{tag}"] = peak
        results[f"bare_network_samples_per_s_{tag}"] = bare
        results[f"bare_network_gflops_{tag}"] = bare * flops / 1e9
        results[f"bare_network_share_of_peak_{tag}"] = bare * flops / 1e9 / peak
        results[f"training_loop_samples_per_s_{tag}"] = loop
        results[f"training_loop_vs_bare_{tag}"] = loop / bare
    results["path_taken_by_training"] = "channels-last + bf16 autocast" if bf16_supported() else "channels-last fp32"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/speed.json"))
    parser.add_argument("--quick", action="store_true", help="only where the time goes (no flow, no predict)")
    parser.add_argument("--throughput", action="store_true", help="only training samples/s of the real loop "
                        "(the GPU path with --device cuda)")
    parser.add_argument("--device", default="cpu", help="with --throughput: cpu, cuda or cuda:N")
    parser.add_argument("--concurrent", type=int, default=1, help="with --throughput: folds at once on the device")
    parser.add_argument("--clips", type=int, default=256, help="with --throughput: clips (x10 variants) per fold")
    parser.add_argument("--epochs", type=int, default=3, help="with --throughput: epochs timed after a warm-up one")
    parser.add_argument("--batch", type=int, default=128, help="with --throughput: mini-batch size")
    parser.add_argument("--prepare", action="store_true", help="only a first preparation's clips/s in worker "
                        "processes")
    parser.add_argument("--prep-clips", type=int, default=40, help="with --prepare: synthetic clips prepared")
    parser.add_argument("--prep-jobs", type=int, nargs="+", default=[1, 2], help="with --prepare: worker processes")
    args = parser.parse_args()
    if args.prepare:
        _print_and_write({"torch": torch.__version__, **preparation_rates(args.prep_clips, args.prep_jobs)}, args.out)
        return
    if args.throughput:
        result = throughput(args.device, args.concurrent, args.clips, args.epochs, args.batch)
        _print_and_write({"torch": torch.__version__, **result}, args.out)
        return
    results: dict = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                     "torch": torch.__version__, "bf16_native": bf16_supported()}
    where_time_goes(results)
    if args.quick:
        _print_and_write(results, args.out)
        return
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
    _print_and_write(results, args.out)


def _print_and_write(results: dict, out: Path) -> None:
    width = max(map(len, results))
    for key, value in results.items():
        text = f"{value:.3f}" if isinstance(value, float) and abs(value) < 10 else (
            f"{value:.1f}" if isinstance(value, float) else str(value))
        print(f"{key:<{width}}  {text}")
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
