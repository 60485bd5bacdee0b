"""Results folder -> pictures and a Markdown report people read.

Pictures: the pooled confusion matrix (rows normalised, as the paper's Fig. 4), per-fold training
curves, and one clip's onset / key / offset frames with its four flow maps (as the paper's Fig. 3).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import cv2  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tscnn.config import Config  # noqa: E402
from tscnn.experiment import ExperimentResult, code_version  # noqa: E402
from tscnn.preprocessing.prepare import clip_inputs  # noqa: E402


def plot_confusion(confusion: list[list[int]], classes: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix with counts."""
    matrix = np.asarray(confusion, float)
    rates = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(classes) + 2, 1.0 * len(classes) + 1.5))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{rates[i, j]:.2f}\n({int(matrix[i, j])})", ha="center", va="center", fontsize=8,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curves(fold_records: list[dict], path: Path) -> pd.DataFrame:
    """Training and validation loss per epoch of every fold; returns the history as a table."""
    rows = [{"fold": r["test_subject"], **h} for r in fold_records for h in r["history"]]
    history = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for fold, part in history.groupby("fold"):
        axes[0].plot(part.epoch, part.train_loss, alpha=0.6, lw=1)
        if "val_loss" in part:
            axes[1].plot(part.epoch, part.val_loss, alpha=0.6, lw=1, label=str(fold))
    axes[0].set_title("training loss (x10-augmented set), one line per fold")
    axes[1].set_title("validation loss (held-out training subjects)")
    for ax in axes:
        ax.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return history


def plot_flow_example(row: pd.Series, config: Config, path: Path) -> None:
    """Onset, key and offset frames of a clip and its flows X1, Y1 (onset->key), X2, Y2 (key->offset)."""
    prep = config.prep()
    key, flow1, flow2 = clip_inputs(row, prep)
    frames = [cv2.resize(cv2.imread(row[c], cv2.IMREAD_GRAYSCALE), (prep.work_size,) * 2)
              for c in ("onset_path", "apex_path", "offset_path")]
    fig, axes = plt.subplots(2, 4, figsize=(10, 5.4))
    titles = [f"onset {row.onset}", f"key (apex) {row.apex}", f"offset {row.offset}"]
    for ax, image, title in zip(axes[0], frames, titles, strict=False):
        ax.imshow(image, cmap="gray")
        ax.set_title(title, fontsize=9)
    axes[0, 3].imshow(np.hypot(flow1[..., 0], flow1[..., 1]), cmap="magma")
    axes[0, 3].set_title("|flow| onset->key (px)", fontsize=9)
    for ax, (name, flow, channel) in zip(axes[1], [("X1", flow1, 0), ("Y1", flow1, 1), ("X2", flow2, 0),
                                                   ("Y2", flow2, 1)], strict=True):
        limit = max(float(np.abs(flow[..., channel]).max()), 1e-3)
        ax.imshow(flow[..., channel], cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(f"{name} (+-{limit:.2f} px)", fontsize=9)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(f"{row['dataset']} {row['subject']}/{row['clip']}: {row['emotion']} "
                 f"(AUs {row['action_units']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(result: ExperimentResult, config: Config, table: pd.DataFrame | None = None) -> Path:
    """Pictures and ``report.md`` in the results folder; returns the report's path."""
    out, metrics = result.out, result.metrics
    classes = metrics["classes"]
    leaky = " (LEAKY: epoch chosen on the test subject)" if metrics["leaky"] else ""
    first_seed = sorted(metrics["per_seed"])[0]
    plot_confusion(metrics["per_seed"][first_seed]["confusion"], classes, out / "confusion.png",
                   f"{metrics['dataset']} LOSO, seed {first_seed}{leaky}")
    records = [json.loads(p.read_text()) for p in sorted((out / f"seed_{first_seed}" / "folds").glob("*.json"))]
    history = plot_curves(records, out / "curves.png")
    history.to_csv(out / "history.csv", index=False)
    if table is not None and len(table):
        try:
            plot_flow_example(table.iloc[0], config, out / "flow_example.png")
        except Exception as err:  # a picture must not lose a finished run
            print(f"warning: flow picture not drawn: {err}")
    ms = metrics["mean_std_over_seeds"]
    lines = [
        f"# TSCNN leave-one-subject-out on {metrics['dataset']}{leaky}",
        "",
        f"{metrics['clips']} clips, {metrics['subjects']} subjects, classes: {', '.join(classes)}. "
        f"Streams: {'+'.join(s.upper() for s in config.streams)}; k = {config.blocks}; flow {config.flow}; "
        f"preset `{config.preset}` (batch {config.batch_size}, lr {config.lr}, max {config.max_epochs} epochs, "
        f"selection `{config.selection}`). Seeds: {list(config.seeds)}. Code {code_version()}.",
        "",
        "| metric | mean | std over seeds |",
        "|---|---|---|",
        *[f"| {k} | {ms[k]['mean']:.4f} | {ms[k]['std']:.4f} |" for k in ("accuracy", "uf1", "uar")],
        "",
        f"F1: {metrics['f1']}. Epoch selection: "
        + ("early stopping on the validation loss of held-out training subjects (never the test subject)."
           if config.selection == "val_loss" else
           "fixed epoch budget (last epoch)." if config.selection == "fixed" else
           "**LEAKY**: best test-subject accuracy per fold, only to reproduce published numbers."),
        "",
        "| fold | train clips | val subjects | chosen epoch | seconds |",
        "|---|---|---|---|---|",
        *[f"| {r['test_subject']} | {r['n_train_clips']} | {', '.join(r['val_subjects'])} | {r['chosen_epoch']} | "
          f"{r['seconds']:.0f} |" for r in records],
        "",
        "![confusion matrix](confusion.png)",
        "",
        "![training curves](curves.png)",
        "",
        "![flow example](flow_example.png)" if (out / "flow_example.png").exists() else "",
    ]
    if metrics.get("quirks"):
        lines += ["", "Quirks found in the database and how they were resolved:", ""]
        lines += [f"- {q}" for q in metrics["quirks"]]
    lines += apex_rule_section(table, out)
    if metrics.get("per_dataset_mean_std_over_seeds"):
        lines += ["", "Per dataset, mean +- std over seeds (pooled within each seed):", "",
                  "| dataset | accuracy | UF1 | UAR |", "|---|---|---|---|"]
        for name, values in metrics["per_dataset_mean_std_over_seeds"].items():
            cells = [f"{values[k]['mean']:.4f} +- {values[k]['std']:.4f}" for k in ("accuracy", "uf1", "uar")]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for seed, m in metrics["per_seed"].items():
        if "per_dataset" in m:
            lines += ["", f"Per dataset (seed {seed}):", "", "| dataset | n | accuracy | UF1 | UAR |",
                      "|---|---|---|---|---|"]
            lines += [f"| {d} | {v['n']} | {v['accuracy']:.4f} | {v['uf1']:.4f} | {v['uar']:.4f} |"
                      for d, v in m["per_dataset"].items()]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def apex_rule_section(table: pd.DataFrame | None, out: Path) -> list[str]:
    """Report lines listing every clip whose apex is not the annotated one (also written to apex_rules.csv)."""
    if table is None or "apex_rule" not in table or (table.apex_rule == "annotated").all():
        return ["", "Apex rule: every clip used its annotated apex."]
    ruled = table[table.apex_rule != "annotated"][["dataset", "subject", "clip", "onset", "apex", "offset",
                                                    "apex_rule"]]
    ruled.to_csv(out / "apex_rules.csv", index=False)
    counts = ", ".join(f"{rule} {n}" for rule, n in ruled.apex_rule.value_counts().items())
    lines = ["", f"Apex rule (annotated apex when valid, else the spotter, else the middle frame) applied to "
             f"{len(ruled)} clips ({counts}); also in `apex_rules.csv`:", "",
             "| dataset | subject | clip | onset | apex | offset | rule |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.dataset} | {r.subject} | {r.clip} | {r.onset} | {r.apex} | {r.offset} | {r.apex_rule} |"
              for r in ruled.itertuples()]
    return lines


def metrics_table(metrics: dict) -> str:
    """A short plain-text metrics table for the terminal."""
    ms = metrics["mean_std_over_seeds"]
    head = f"{metrics['dataset']} LOSO ({metrics['clips']} clips, {metrics['subjects']} subjects)"
    if metrics["leaky"]:
        head += "  LEAKY SELECTION"
    rows = [head, f"{'metric':<10}{'mean':>8}{'std':>8}"]
    rows += [f"{k:<10}{ms[k]['mean']:>8.4f}{ms[k]['std']:>8.4f}" for k in ("accuracy", "uf1", "uar")]
    return "\n".join(rows)
