"""Results folder -> ``report.html``: one self-contained page to read or send around.

The Markdown report links its pictures, so it falls apart when copied alone; this page embeds them
(base64 PNG data URIs) with inline CSS, no JavaScript and no external links, so the one file opens
anywhere, offline, and shows the same run: metrics, per-class F1, per-database figures, the
pictures, the apex rules, the settings and the machine.
"""

from __future__ import annotations

import base64
import json
import re
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from tscnn.config import Config
from tscnn.metrics import format_mean_std
from tscnn.models import get_model
from tscnn.run_facts import ExperimentResult, code_version

NUMBER = re.compile(r"^-?[0-9.]+( &plusmn; [0-9.]+)?$")
LEAKY_BADGE = ' <span class="leaky">LEAKY</span>'
METRICS = (("accuracy", "accuracy"), ("uf1", "UF1 (macro F1)"), ("uar", "UAR (macro recall)"))

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 64rem;
       padding: 0 1rem; color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2rem; }
.leaky { background: #b42318; color: white; padding: 0.1rem 0.5rem; border-radius: 4px; }
.banner { background: #fef3f2; border: 1px solid #b42318; padding: 0.6rem 0.8rem; border-radius: 6px; }
.sub { color: #57606a; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.shadow, th.shadow { color: #6e7781; font-style: italic; background: #fafafa; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: 0.88rem; }
.note { color: #57606a; font-size: 0.9rem; }
code { background: #f6f8fa; padding: 0 0.2rem; border-radius: 3px; }
"""


def png_data_uri(path: Path) -> str | None:
    """A PNG file as a data URI (None when absent), so the page needs no file beside it."""
    if not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def per_class_f1(confusion: list[list[int]], classes: list[str]) -> list[dict]:
    """Precision, recall and F1 of each class from a pooled confusion matrix (rows = truth); a class absent
    from the truth gets None for recall and F1 (UF1 averages only the classes present)."""
    matrix = np.asarray(confusion, float)
    rows = []
    for c, name in enumerate(classes):
        tp, truth, predicted = matrix[c, c], matrix[c].sum(), matrix[:, c].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / truth if truth else None
        f1 = (2 * tp / (truth + predicted) if truth + predicted else 0.0) if truth else None
        rows.append({"class": name, "n": int(truth), "predicted": int(predicted), "precision": float(precision),
                     "recall": recall, "f1": f1})
    return rows


def fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def html_table(header: list[str], rows: list[list[str]], table_id: str = "", shadow_column: int | None = None) -> str:
    """A table of already-escaped cells; numbers are right-aligned."""
    def cell(tag: str, i: int, text: str) -> str:
        classes = [c for c, on in (("num", tag == "td" and NUMBER.match(text) is not None),
                                   ("shadow", i == shadow_column)) if on]
        attribute = f' class="{" ".join(classes)}"' if classes else ""
        return f"<{tag}{attribute}>{text}</{tag}>"

    head = "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>"
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(r)) + "</tr>" for r in rows)
    identifier = f' id="{table_id}"' if table_id else ""
    return f"<table{identifier}><thead>{head}</thead><tbody>{body}</tbody></table>"


def figure(path: Path, alt: str, caption: str) -> str:
    uri = png_data_uri(path)
    if uri is None:
        return ""
    return f'<figure><img src="{uri}" alt="{escape(alt)}"><figcaption>{escape(caption)}</figcaption></figure>'


def no_curves_reason(fold_records: list[dict]) -> str | None:
    """Why a run has no training-curves figure, or None when it has one: a features model has no epochs, and
    where every fold trained one epoch each curve would be one point (nothing to learn from a picture)."""
    epochs = {h.get("epoch") for r in fold_records for h in r.get("history", [])}
    if not epochs:
        return "No training curves: this model has no epochs (fixed features and a fitted classifier)."
    if len(epochs) == 1:
        return ("No training curves: every fold trained one epoch, so each curve would be a single point "
                "(nothing to draw); the folds' losses are in history.csv.")
    return None


def leaky_shadow_to_show(metrics: dict) -> dict | None:
    """The leaky shadow's mean +- std over seeds, as every report shows it; None for a features model, which has
    no epochs to choose, so its shadow is its honest figure and says nothing."""
    if not get_model(metrics.get("model", "tscnn")).trains_by_epochs:
        return None
    return metrics.get("leaky_shadow", {}).get("mean_std_over_seeds")


def metrics_section(metrics: dict) -> str:
    """Accuracy, UF1, UAR: the mean over seeds, and with several seeds the std and the seed ensemble; the
    leaky shadow in a greyed column that says it is not a result."""
    ms = metrics["mean_std_over_seeds"]
    several = len(metrics["per_seed"]) > 1
    ensemble = metrics.get("seed_ensemble") if several else None
    shadow = leaky_shadow_to_show(metrics)
    header = ["metric", "mean over seeds" if several else "value"]
    if several:
        header += ["std over seeds"] + (["seed ensemble"] if ensemble else [])
    if shadow:
        header.append("leaky shadow (not a result)")
    rows = []
    for key, label in METRICS:
        row = [escape(label), fmt(ms[key]["mean"])]
        if several:
            row += [fmt(ms[key]["std"])] + ([fmt(ensemble[key])] if ensemble else [])
        if shadow:
            row.append(fmt(shadow[key]["mean"]))
        rows.append(row)
    parts = [html_table(header, rows, "metrics", shadow_column=len(header) - 1 if shadow else None)]
    seeds = sorted(metrics["per_seed"], key=int)
    parts.append(f'<p class="note">{escape(metrics.get("f1", "UF1 = macro F1"))}; '
                 f"seeds {', '.join(map(str, seeds))}"
                 + ("; the seed ensemble averages the class probabilities over the seeds" if several else "")
                 + ".</p>")
    if shadow:
        parts.append('<p class="note">The leaky shadow is what the same training runs would have claimed had each '
                     "fold's epoch been chosen on its test subject (the common leaky practice): it measures the "
                     "inflation and is never a result.</p>")
    return "".join(parts)


def per_class_section(metrics: dict, classes: list[str]) -> str:
    first = sorted(metrics["per_seed"], key=int)[0]
    rows = [[escape(r["class"]), str(r["n"]), str(r["predicted"]), fmt(r["precision"]), fmt(r["recall"]),
             fmt(r["f1"])] for r in per_class_f1(metrics["per_seed"][first]["confusion"], classes)]
    return (html_table(["class", "clips", "predicted", "precision", "recall", "F1"], rows, "per-class-f1")
            + f'<p class="note">From the confusion matrix pooled over all folds, seed {escape(str(first))}; UF1 is '
            "the mean of the F1 column over the classes present (n/a: class absent from the truth).</p>")


def per_dataset_section(metrics: dict) -> str:
    """Composites: mean +- std over seeds per database, and each seed's pooled figures with clip counts."""
    parts = []
    over = metrics.get("per_dataset_mean_std_over_seeds")
    if over:
        seeds = len(metrics["per_seed"])
        rows = [[escape(name)] + [format_mean_std(v[k], seeds).replace(" +- ", " &plusmn; ") for k, _ in METRICS]
                for name, v in over.items()]
        parts.append(html_table(["database", "accuracy", "UF1", "UAR"], rows, "per-dataset"))
        parts.append(f'<p class="note">{"Mean &plusmn; std over seeds" if seeds > 1 else "One seed"}, each '
                     "pooled over the folds within the database.</p>")
    for seed, m in sorted(metrics["per_seed"].items(), key=lambda kv: int(kv[0])):
        if "per_dataset" in m:
            rows = [[escape(d), str(v["n"])] + [fmt(v[k]) for k, _ in METRICS] for d, v in m["per_dataset"].items()]
            parts.append(f"<h3>Seed {escape(str(seed))}</h3>"
                         + html_table(["database", "clips", "accuracy", "UF1", "UAR"], rows))
    return "".join(parts)


def apex_section(table: pd.DataFrame | None, out: Path) -> str:
    """Every clip whose apex is not the annotated one (the same list as ``apex_rules.csv``)."""
    if table is not None and "apex_rule" in table and (table.apex_rule == "n/a").all():
        return "<p>Not applicable: the clips are precomputed onset&rarr;apex flows.</p>"
    if table is not None and "apex_rule" in table:
        ruled = table[table.apex_rule != "annotated"]
    elif (out / "apex_rules.csv").is_file():
        ruled = pd.read_csv(out / "apex_rules.csv")
    else:
        return "<p>Every clip used its annotated apex.</p>"
    if ruled.empty:
        return "<p>Every clip used its annotated apex.</p>"
    columns = ["dataset", "subject", "clip", "onset", "apex", "offset", "apex_rule"]
    rows = [[escape(str(r[c])) for c in columns] for _, r in ruled[columns].iterrows()]
    counts = ", ".join(f"{escape(str(rule))} {n}" for rule, n in ruled.apex_rule.value_counts().items())
    return (f"<p>The annotated apex is used when valid, else the spotter's, else the middle frame: {len(ruled)} "
            f"clips ({counts}) did not use an annotated apex.</p>"
            + html_table(["database", "subject", "clip", "onset", "apex", "offset", "rule"], rows))


def folds_section(records: list[dict]) -> str:
    rows = [[escape(str(r["test_subject"])), str(r["n_train_clips"]), escape(", ".join(r["val_subjects"]) or "-"),
             escape(str(r["chosen_epoch"])), f"{r['seconds']:.1f}"] for r in records]
    return html_table(["fold (test subject)", "training clips", "validation subjects", "chosen epoch", "seconds"],
                      rows, "folds")


def settings_section(config: Config) -> str:
    rows = [[escape(k), escape(json.dumps(v) if not isinstance(v, str) else v)] for k, v in config.to_dict().items()]
    return html_table(["setting", "value"], rows, "settings")


def machine_section(out: Path) -> str:
    path = out / "run_info.json"
    info = json.loads(path.read_text()) if path.is_file() else {"code_version": code_version()}
    labels = {"cpu": "CPU", "threads": "threads", "bf16": "bf16 autocast", "device": "device", "torch": "torch",
              "python": "python", "machine": "architecture", "code_version": "code version", "seeds": "seeds"}
    keys = [k for k in labels if k in info] + [k for k in info if k not in labels]
    rows = [[escape(labels.get(k, k)), escape(str(info[k]))] for k in keys]
    return html_table(["item", "value"], rows, "machine")


def write_html_report(result: ExperimentResult, config: Config, table: pd.DataFrame | None = None) -> Path:
    """``report.html`` beside ``report.md`` (whose pictures must already be drawn); returns its path."""
    out, metrics = Path(result.out), result.metrics
    info_path = out / "run_info.json"
    version = json.loads(info_path.read_text()).get("code_version") if info_path.is_file() else None
    classes = list(metrics["classes"])
    spec = get_model(config.model)
    protocol = metrics.get("protocol", "leave-one-subject-out")
    first = sorted(metrics["per_seed"], key=int)[0]
    records = [json.loads(p.read_text()) for p in sorted((out / f"seed_{first}" / "folds").glob("*.json"))]
    title = f"{spec.description.split(':')[0]}, {protocol}, on {metrics['dataset']}"
    leaky = metrics.get("leaky")
    selection = {"val_loss": "early stopping on the validation loss of held-out training subjects (never the test "
                             "subject)",
                 "fixed": "a fixed epoch budget" + (f" (weights averaged over the last {config.average_last} epochs)"
                                                    if config.average_last else " (last epoch)"),
                 "test_leaky": "LEAKY: the best test-subject accuracy per fold, only to reproduce published numbers"}
    body = [
        f"<h1>{escape(title)}{LEAKY_BADGE if leaky else ''}</h1>",
        f'<p class="sub">Model <code>{escape(config.model)}</code> ({escape(spec.description)}); '
        f"{metrics['clips']} clips, {metrics['subjects']} subjects; classes: {escape(', '.join(classes))}; "
        f"streams {escape('+'.join(s.upper() for s in config.streams))} at {config.size} px; preset "
        f"<code>{escape(config.preset)}</code>; code {escape(version or code_version())}.</p>",
    ]
    if leaky:
        body.append('<p class="banner"><b>LEAKY</b>: each fold\'s epoch was chosen on its test subject. These figures '
                    "are inflated and only reproduce the common leaky practice.</p>")
    if "fusion" in metrics:
        body.append(f"<p>Late fusion (<code>--fuse-linear</code>): {escape(metrics['fusion'])}.</p>")
    body += [f"<p>Epoch selection: {escape(selection.get(config.selection, config.selection))}.</p>",
             "<h2>Metrics</h2>", metrics_section(metrics),
             "<h2>Per-class F1</h2>", per_class_section(metrics, classes)]
    if metrics.get("per_dataset_mean_std_over_seeds") or any("per_dataset" in m for m in metrics["per_seed"].values()):
        body += ["<h2>Per database</h2>", per_dataset_section(metrics)]
    body += ["<h2>Confusion matrix</h2>",
             figure(out / "confusion.png", "confusion matrix",
                    f"Pooled over all folds, seed {first}; rows (truth) normalised, counts in brackets.")]
    body.append("<h2>Training</h2>")
    curves = figure(out / "curves.png", "training curves",
                    f"Seed {first}: median over folds (line), min-max over folds (band), and each fold's chosen "
                    "epoch (markers).")
    body.append(curves or f"<p>{escape(no_curves_reason(records) or 'No training curves.')}</p>")
    if records:
        body.append(folds_section(records))
    example = figure(out / "flow_example.png", "flow example", "One clip's inputs: the frames and flows the "
                     "streams are built from.")
    if example:
        body += ["<h2>Flow example</h2>", example]
    body += ["<h2>Apex rule</h2>", apex_section(table, out)]
    if metrics.get("quirks"):
        body += ["<h2>Database quirks</h2>",
                 "<ul>" + "".join(f"<li>{escape(str(q))}</li>" for q in metrics["quirks"]) + "</ul>"]
    body += ["<h2>Settings</h2>", settings_section(config), "<h2>Machine</h2>", machine_section(out)]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}{' (LEAKY)' if leaky else ''}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(part for part in body if part) + "\n</body></html>\n")
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
