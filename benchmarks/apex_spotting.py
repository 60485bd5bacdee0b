"""Apex spotting error against known apexes, and its cost, on synthetic databases.

For the SMIC-HS layout (clips cut onset..offset, no apex annotation) and the CASME II layout
(annotated apex; the spotter is run on each clip's onset..offset frames as if it were missing),
the spotter's and the middle-frame rule's apex are compared with the rendered apex
(``ground_truth.csv``). Errors are in frames; both databases are generated at the same seed.

Usage: python benchmarks/apex_spotting.py [--subjects 12] [--seed 0] [--out benchmarks/apex_spotting.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tscnn.datasets import load_database
from tscnn.datasets.base import list_frames
from tscnn.preprocessing.apex import spot_apex
from tscnn.synth import SynthSettings, write_database


def errors(found: np.ndarray, truth: np.ndarray) -> dict:
    e = np.abs(found - truth)
    return {"mae_frames": float(e.mean()), "median_frames": float(np.median(e)), "exact": float((e == 0).mean()),
            "within_2": float((e <= 2).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/apex_spotting.json"))
    args = parser.parse_args()
    results = {}
    for layout in ("smic", "casme2"):
        root = args.data / f"synthetic-{layout}-s{args.subjects}-seed{args.seed}"
        if not (root / "ground_truth.csv").exists():
            write_database(root, SynthSettings(subjects=args.subjects, seed=args.seed, layout=layout))
        truth = pd.read_csv(root / "ground_truth.csv", dtype={"subject": str})
        table = load_database(layout, str(root), classes="3class" if layout == "smic" else "all",
                              apex_fallback="middle").table
        merged = table.merge(truth, on=["subject", "clip"], suffixes=("", "_true"))
        start = time.perf_counter()
        spotted = []
        for row in merged.itertuples():
            frames = list_frames(Path(row.frames_dir))
            span = [n for n in sorted(frames) if row.onset <= n <= row.offset]
            spotted.append(span[spot_apex([frames[n] for n in span], row.clip)])
        seconds = time.perf_counter() - start
        middle = ((merged.onset + merged.offset) // 2).to_numpy()
        results[layout] = {
            "clips": len(merged), "mean_clip_frames": float((merged.offset - merged.onset + 1).mean()),
            "spotter": errors(np.array(spotted), merged.apex_true.to_numpy()),
            "middle": errors(middle, merged.apex_true.to_numpy()),
            "spotter_ms_per_clip": 1000 * seconds / len(merged),
        }
    print(f"{'layout':<8}{'rule':<9}{'MAE':>7}{'median':>8}{'exact':>7}{'<=2':>7}   (frames; clips, mean length)")
    for layout, r in results.items():
        for rule in ("spotter", "middle"):
            e = r[rule]
            print(f"{layout:<8}{rule:<9}{e['mae_frames']:>7.2f}{e['median_frames']:>8.1f}{e['exact']:>7.2f}"
                  f"{e['within_2']:>7.2f}   ({r['clips']} clips, {r['mean_clip_frames']:.1f} frames)")
        print(f"{'':<8}spotter time: {r['spotter_ms_per_clip']:.0f} ms per clip")
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
