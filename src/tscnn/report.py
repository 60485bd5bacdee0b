"""Results folder -> pictures, a Markdown report people read and a self-contained report.html.

Pictures: the pooled confusion matrix (rows normalised, as the paper's Fig. 4), training curves
summarised over folds, and one clip's onset / key / offset frames with its four flow maps (as the paper's Fig. 3).
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
from matplotlib.ticker import MaxNLocator  # noqa: E402

from tscnn.config import FLOOR_VIEW_WORDS, Config  # noqa: E402
from tscnn.datasets.base import left_out_line  # noqa: E402
from tscnn.datasets.flowfolder import read_flow_image  # noqa: E402
from tscnn.html_report import leaky_shadow_to_show, no_curves_reason, write_html_report  # noqa: E402
from tscnn.metrics import format_mean_std  # noqa: E402
from tscnn.models import get_model  # noqa: E402
from tscnn.preprocessing.prepare import PrepSettings, clip_inputs  # noqa: E402
from tscnn.run_facts import ExperimentResult, code_version  # noqa: E402


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
    """Training and validation loss over epochs, summarised over folds (median line, min-max band) with each
    fold's chosen epoch marked, so a reader sees the typical fold and the spread rather than a tangle of
    lines; returns the per-fold history as a table (empty for a features model). No picture where there is no
    curve: a features model, or one epoch per fold (``no_curves_reason``)."""
    rows = [{"fold": r["test_subject"], **h} for r in fold_records for h in r["history"]]
    history = pd.DataFrame(rows)
    if no_curves_reason(fold_records):
        path.unlink(missing_ok=True)
        return history
    chosen = {r["test_subject"]: r.get("chosen_epoch") for r in fold_records if r.get("chosen_epoch")}
    panels = [("train_loss", "training loss")]
    if "val_loss" in history and history["val_loss"].notna().any():
        panels.append(("val_loss", "validation loss (held-out training subjects)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(max(7.5, 5.2 * len(panels)), 3.9), squeeze=False)
    folds = history["fold"].nunique()
    for ax, (column, title) in zip(axes[0], panels, strict=True):
        stats = history.groupby("epoch")[column].agg(["median", "min", "max", "count"]).dropna()
        ax.fill_between(stats.index, stats["min"], stats["max"], color="tab:blue", alpha=0.2, lw=0,
                        label=f"min-max over {folds} folds")
        ax.plot(stats.index, stats["median"], color="tab:blue", lw=2, marker="." if len(stats) < 15 else None,
                label="median over folds")
        marks = [(epoch, history[(history.fold == fold) & (history.epoch == epoch)][column])
                 for fold, epoch in chosen.items()]
        marks = [(e, float(v.iloc[0])) for e, v in marks if len(v) and np.isfinite(v.iloc[0])]
        if marks:
            epochs = np.array([e for e, _ in marks], float)
            spread = 0.15 if len(marks) > 1 else 0.0
            epochs += np.linspace(-spread, spread, len(marks))
            ax.scatter(epochs, [v for _, v in marks], marker="o", s=22, facecolor="none", edgecolor="tab:red",
                       zorder=3, label="a fold's chosen epoch (its loss there)")
            ax.plot(epochs, np.zeros_like(epochs), "|", color="tab:red", ms=12, mew=1.2,
                    transform=ax.get_xaxis_transform(), clip_on=False)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.set_xlim(history["epoch"].min() - 0.5, history["epoch"].max() + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    epochs = sorted(chosen.values())
    summary = (f"chosen epoch: median {np.median(epochs):g}, range {epochs[0]}-{epochs[-1]} (red ticks)"
               if epochs else "no chosen epochs recorded")
    lengths = history.groupby("fold")["epoch"].max()
    if lengths.nunique() > 1:  # early stopping: the band and median stand on fewer folds at later epochs
        summary += f"; folds trained {lengths.min()}-{lengths.max()} epochs"
    fig.suptitle(f"{folds} folds: median line, min-max band;{' ' if len(panels) > 1 else chr(10)}{summary}",
                 fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return history


def plot_flow_maps(row: pd.Series, path: Path) -> None:
    """The u, v and optical-strain maps of one clip of a flow folder (each min-max normalised)."""
    maps = read_flow_image(row["flow_path"], f"{row['subject']}/{row['clip']}")
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.9))
    for ax, channel, title in zip(axes, range(3), ("u (horizontal)", "v (vertical)", "optical strain"), strict=True):
        ax.imshow(maps[..., channel], cmap="RdBu_r" if channel < 2 else "magma", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{row['dataset']} {row['subject']}/{row['clip']}: {row['emotion']} (onset->apex flow, "
                 "each map min-max normalised)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_flow_example(row: pd.Series, config: Config, path: Path) -> None:
    """Onset, key and offset frames of a clip and its flows X1, Y1 (onset->key), X2, Y2 (key->offset);
    for a flow folder, its u, v and strain maps."""
    if isinstance(row.get("flow_path"), str) and row["flow_path"]:
        plot_flow_maps(row, path)
        return
    prep = PrepSettings.from_config(config)
    key, flow1, flow2 = clip_inputs(row, prep)
    frames = [cv2.resize(cv2.imread(row[c], cv2.IMREAD_GRAYSCALE), (prep.work_size,) * 2)
              for c in ("onset_path", "apex_path", "offset_path")]
    fig, axes = plt.subplots(2, 4, figsize=(10, 5.8))
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
    fig.tight_layout(h_pad=1.5)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pretraining_note(config: Config) -> str:
    """Whether TSCNN started from pre-trained weights: the paper pre-trains its static stream on FER2013, which
    ``--preset paper`` alone does not do (it is the separate ``tscnn pretrain`` step)."""
    if not get_model(config.model).pretrained_weights:
        return ""
    if config.pretrained:
        dense = " and their Dense 1 layers" if config.pretrained_dense else ""
        return (f"Input convolutions of the pre-trained streams{dense} and the trunk started from "
                f"`{config.pretrained}`. ")
    if "ss" not in config.streams:
        return ""
    return "Static stream from random weights (no FER2013 pre-training; the paper's is `tscnn pretrain`, then " \
           "`--pretrained FILE`). "


def write_report(result: ExperimentResult, config: Config, table: pd.DataFrame | None = None) -> Path:
    """Pictures, ``report.md`` and the self-contained ``report.html`` in the results folder; returns the
    Markdown report's path."""
    out, metrics = result.out, result.metrics
    classes = metrics["classes"]
    leaky = " (LEAKY: epoch chosen on the test subject)" if metrics["leaky"] else ""
    first_seed = sorted(metrics["per_seed"])[0]
    plot_confusion(metrics["per_seed"][first_seed]["confusion"], classes, out / "confusion.png",
                   f"{metrics['dataset']}, {metrics.get('protocol', 'leave-one-subject-out')}, seed {first_seed}"
                   f"{chr(10) if leaky else ''}{leaky.strip()}")
    records = [json.loads(p.read_text()) for p in sorted((out / f"seed_{first_seed}" / "folds").glob("*.json"))]
    history = plot_curves(records, out / "curves.png")
    history.to_csv(out / "history.csv", index=False)
    if table is not None and len(table):
        try:
            plot_flow_example(table.iloc[0], config, out / "flow_example.png")
        except Exception as err:  # a picture must not lose a finished run
            print(f"warning: flow picture not drawn: {err}")
    ms = metrics["mean_std_over_seeds"]
    several = len(metrics["per_seed"]) > 1
    model = get_model(config.model)
    shadow = leaky_shadow_to_show(metrics)
    ensemble = metrics.get("seed_ensemble")
    variants = FLOOR_VIEW_WORDS[config.floor_views]
    fusion = ("; each clip predicted by the mean of the network's class probabilities and the linear floor's, "
              f"fitted on the same training clips{variants} (late fusion, --fuse-linear)" if config.fuse_linear else "")
    recipe = (f"preset `{config.preset}` (optimizer {config.optimizer}, batch {config.batch_size}, lr {config.lr}, "
              f"{config.schedule} schedule, max {config.max_epochs} epochs, selection `{config.selection}`"
              f"{', class-balanced loss' if config.class_balanced else ''}"
              f"{f', weights averaged over the last {config.average_last} epochs' if config.average_last else ''}"
              f"{f', action units as an auxiliary target (weight {config.au_weight})' if config.au_weight else ''})"
              f"{fusion}. "
              if model.trains_by_epochs else "fitted on each fold's training subjects (no epochs, no recipe). ")
    lines = [
        f"# {model.description.split(':')[0]}, {metrics.get('protocol', 'leave-one-subject-out')}, on "
        f"{metrics['dataset']}{leaky}",
        "",
        f"{metrics['clips']} clips, {metrics['subjects']} subjects, classes: {', '.join(classes)}. "
        f"Model `{config.model}` ({model.description}). "
        f"Streams: {'+'.join(s.upper() for s in config.streams)} at {config.size} px; k = {config.blocks}; "
        f"flow {config.flow}; {recipe}{_pretraining_note(config)}Seeds: {list(config.seeds)}. Code {code_version()}.",
        "",
        "| metric | " + ("mean | std over seeds | seed ensemble |" if several else "value |")
        + (" leaky shadow (not a result) |" if shadow else ""),
        "|---|---|" + ("---|---|" if several else "") + ("---|" if shadow else ""),
        *[f"| {k} | {ms[k]['mean']:.4f} | " + (f"{ms[k]['std']:.4f} | {ensemble[k]:.4f} |" if several else "")
          + (f" {shadow[k]['mean']:.4f} |" if shadow else "") for k in ("accuracy", "uf1", "uar")],
        "",
        "Std over seeds is the population standard deviation (ddof 0) of the per-seed pooled figures. "
        if several else "",
        "The leaky shadow is what the same training runs would have claimed had each fold's epoch been chosen "
        "on its test subject (the common leaky practice); it measures the inflation and is never a result."
        if shadow else "",
        "",
        _members_line(metrics),
        "",
        f"F1: {metrics['f1']}. Epoch selection: "
        + ("early stopping on the validation loss of held-out training subjects (never the test subject)."
           if config.selection == "val_loss" else
           (f"fixed epoch budget (weights averaged over the last {config.average_last} epochs)."
            if config.average_last else "fixed epoch budget (last epoch).") if config.selection == "fixed" else
           "**LEAKY**: best test-subject accuracy per fold, only to reproduce published numbers."),
        "",
        "| fold | train clips | val subjects | chosen epoch | seconds |",
        "|---|---|---|---|---|",
        *[f"| {r['test_subject']} | {r['n_train_clips']} | {', '.join(r['val_subjects'])} | {r['chosen_epoch']} | "
          f"{r['seconds']:.0f} |" for r in records],
        "",
        "![confusion matrix](confusion.png)",
        "",
        "![training curves](curves.png)" if (out / "curves.png").exists() else (no_curves_reason(records) or ""),
        "",
        "![flow example](flow_example.png)" if (out / "flow_example.png").exists() else "",
    ]
    if metrics.get("left_out"):
        lines += ["", left_out_line(metrics["left_out"])]
    if metrics.get("quirks"):
        lines += ["", "Quirks found in the database and how they were resolved:", ""]
        lines += [f"- {q}" for q in metrics["quirks"]]
    lines += apex_rule_section(table, out)
    if metrics.get("per_dataset_mean_std_over_seeds"):
        seeds = len(metrics["per_seed"])
        lines += ["", f"Per dataset, {'mean +- std over seeds' if seeds > 1 else 'one seed'} (pooled within each "
                  "seed):", "", "| dataset | accuracy | UF1 | UAR |", "|---|---|---|---|"]
        for name, values in metrics["per_dataset_mean_std_over_seeds"].items():
            cells = [format_mean_std(values[k], seeds) for k in ("accuracy", "uf1", "uar")]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for seed, m in metrics["per_seed"].items():
        if "per_dataset" in m:
            lines += ["", f"Per dataset (seed {seed}):", "", "| dataset | n | accuracy | UF1 | UAR |",
                      "|---|---|---|---|---|"]
            lines += [f"| {d} | {v['n']} | {v['accuracy']:.4f} | {v['uf1']:.4f} | {v['uar']:.4f} |"
                      for d, v in m["per_dataset"].items()]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    write_html_report(result, config, table)
    return path


def apex_rule_section(table: pd.DataFrame | None, out: Path) -> list[str]:
    """Report lines listing every clip whose apex is not the annotated one (also written to apex_rules.csv)."""
    if table is not None and "apex_rule" in table and (table.apex_rule == "n/a").all():
        return ["", "Apex rule: not applicable (precomputed onset->apex flows)."]
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


def _members_line(metrics: dict) -> str:
    """What each member of a fused run scores alone (empty for a run that is not fused)."""
    members = metrics.get("fused_members")
    if not members:
        return ""
    return "Each member alone (mean over seeds): " + "; ".join(
        f"{name} accuracy {members[name]['accuracy']['mean']:.4f}, UF1 {members[name]['uf1']['mean']:.4f}, "
        f"UAR {members[name]['uar']['mean']:.4f}" for name in ("network", "floor")) + "."


def metrics_table(metrics: dict) -> str:
    """A short plain-text metrics table for the terminal."""
    ms = metrics["mean_std_over_seeds"]
    protocol = metrics.get("protocol", "leave-one-subject-out")
    head = f"{metrics.get('model', 'tscnn')} on {metrics['dataset']}, {protocol} ({metrics['clips']} clips, " \
           f"{metrics['subjects']} subjects)"
    if "fusion" in metrics:
        head += ", fused with the linear floor"
    if metrics["leaky"]:
        head += "  LEAKY SELECTION"
    several = len(metrics["per_seed"]) > 1
    rows = [head, f"{'metric':<10}{'mean':>8}" + (f"{'std':>8}{'ensemble':>10}" if several else "")]
    rows += [f"{k:<10}{ms[k]['mean']:>8.4f}" + (f"{ms[k]['std']:>8.4f}{metrics['seed_ensemble'][k]:>10.4f}"
                                                   if several else "") for k in ("accuracy", "uf1", "uar")]
    members = metrics.get("fused_members")
    if members:
        rows.append("members alone: " + "; ".join(
            f"{name} UF1 {members[name]['uf1']['mean']:.4f}, UAR {members[name]['uar']['mean']:.4f}"
            for name in ("network", "floor")))
    shadow = leaky_shadow_to_show(metrics)
    if shadow and not metrics["leaky"]:
        rows.append(f"leaky shadow (epoch chosen on the test subject; not a result): UF1 {shadow['uf1']['mean']:.4f}, "
                    f"UAR {shadow['uar']['mean']:.4f}")
    return "\n".join(rows)
