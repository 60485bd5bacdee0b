"""Experiments in the shape of the paper's tables, run with this project's honest protocol.

* ``blocks`` (the paper's Table 3): TSCNN with k = 2, 3, 4 blocks in the local-spatial stream.
* ``streams`` (the paper's Table 4): every single stream, every pair, and all three.
* ``methods`` (the paper's Tables 1 and 2): TSCNN beside the hand-crafted baselines those tables list,
  LBP-TOP and HOOF (each + linear SVM), the linear floor, and the peer networks STSTNet, Off-ApexNet and
  SSSNet, on the same folds and seeds; each peer trains with its own recipe (its registry entry's preset).

Each variant is an ordinary LOSO run in its own results folder (``<out>/<variant>/``, resumable);
the table (``table.md``, ``table.json``) puts accuracy, UF1 and UAR (mean +- std over seeds, pooled
over folds) beside the paper's published figures for the same database. The paper's figures come
from its own protocol, whose epoch selection is unclear (SPEC section 3), so they are a reference,
not a target.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from pathlib import Path

from tscnn.backends import ray_cluster
from tscnn.config import Config, with_recipe
from tscnn.datasets import Database
from tscnn.metrics import format_mean_std
from tscnn.models import get_model
from tscnn.preprocessing.prepare import givable_streams
from tscnn.pretrain import with_pretrained_file
from tscnn.results_folder import atomic_write_text, writes_results_folder
from tscnn.runner import check_config, config_database, model_inputs, run_experiment

PAPER_MODEL = "tscnn"  # the paper's tables are about TSCNN: the configuration they are run with

TABLES: dict[str, dict[str, dict]] = {
    "blocks": {"k=2": {"blocks": 2}, "k=3": {"blocks": 3}, "k=4": {"blocks": 4}},
    "streams": {"SS": {"streams": ("ss",)}, "LS": {"streams": ("ls",)}, "DT": {"streams": ("dt",)},
                "SS+LS": {"streams": ("ss", "ls")}, "LS+DT": {"streams": ("ls", "dt")},
                "DT+SS": {"streams": ("ss", "dt")}, "TSCNN": {"streams": ("ss", "ls", "dt")}},
    # A row naming a model reads that model's own streams and input size (its registry entry); TSCNN is the
    # configuration the table is run with.
    "methods": {"LBP-TOP": {"model": "lbptop"}, "HOOF": {"model": "hoof"}, "linear": {"model": "linear"},
                "STSTNet": {"model": "ststnet"}, "Off-ApexNet": {"model": "offapexnet"}, "SSSNet": {"model": "sssnet"},
                "TSCNN": {}},
}
# The paper's Tables 3 and 4 (and 1, 2): (accuracy %, mean F1) per database and variant.
PAPER: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "blocks": {"casme2": {"k=2": (77.33, 0.7706), "k=3": (80.97, 0.8070), "k=4": (75.67, 0.7529)},
               "samm": {"k=2": (63.46, 0.5965), "k=3": (71.76, 0.6942), "k=4": (62.13, 0.5808)}},
    "streams": {"casme2": {"SS": (60.20, 0.5919), "LS": (50.36, 0.4861), "DT": (73.85, 0.7288),
                           "SS+LS": (63.73, 0.6160), "LS+DT": (76.15, 0.7551), "DT+SS": (73.68, 0.7344),
                           "TSCNN": (80.97, 0.8070)},
                "samm": {"SS": (49.27, 0.4087), "LS": (47.43, 0.3827), "DT": (70.88, 0.6760),
                         "SS+LS": (50.44, 0.4327), "LS+DT": (59.63, 0.5376), "DT+SS": (66.77, 0.6444),
                         "TSCNN": (71.76, 0.6942)}},
    # Tables 1 (CASME II) and 2 (SAMM): the rows this project also runs. The baselines' figures are those the
    # paper quotes from their own papers, each with its own protocol.
    "methods": {"casme2": {"LBP-TOP": (43.78, 0.3337), "HOOF": (76.60, 0.5500), "TSCNN": (80.97, 0.8070)},
                "samm": {"LBP-TOP": (34.56, 0.3456), "TSCNN": (71.76, 0.6942)}},
}


def table_variant(config: Config, overrides: dict) -> Config:
    """The table's configuration with one variant's changes; a variant naming a model takes that model's
    streams and input size from the registry, and a network its own training recipe (the preset of its
    registry entry: the table's recipe is TSCNN's)."""
    if "model" not in overrides:
        return replace(config, **overrides)
    spec = get_model(overrides["model"])
    if spec.trains_by_epochs:
        config = with_recipe(config, spec.preset)
    return replace(config, **{**model_inputs(spec.name), **overrides})


def variant_folder(variant: str) -> str:
    return variant.replace("=", "").replace("+", "-").lower()


@writes_results_folder()
def run_table(name: str, config: Config, out: str | Path, cache_dir: str | Path | None = None,
              database: Database | None = None, progress: bool = True, jobs: int = 1, ray: str | None = None) -> Path:
    """Run (or resume) every variant of table ``name`` and write ``table.md`` / ``table.json`` in ``out``
    (each variant's folds in ``jobs`` worker processes, or on the Ray cluster at ``ray``)."""
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; expected one of {sorted(TABLES)}")
    if name == "methods" and config.model != PAPER_MODEL:
        raise ValueError(f"the methods table puts TSCNN beside the baselines: run it with --model tscnn, not "
                         f"{config.model}")
    out = Path(out)
    rows = {}
    for overrides in TABLES[name].values():
        check_config(table_variant(config, overrides), local_device=not ray)
    database = database or config_database(config)  # read once for every variant, before a long pre-training
    config = with_pretrained_file(config, cache_dir, jobs, progress)  # a named pre-training: its file, made once
    variants = {variant: table_variant(config, overrides) for variant, overrides in TABLES[name].items()}
    skipped: dict[str, str] = {}
    if name == "methods":  # a baseline the data cannot feed (LBP-TOP reads frames) is left out, and said so
        givable = givable_streams(database.table)
        for variant, settings in list(variants.items()):
            missing = [s for s in settings.streams if s not in givable]
            if missing:
                skipped[variant] = f"needs the {', '.join(missing)} stream, which this database cannot give"
                print(f"table {name}: {variant} skipped: {skipped[variant]}")
                del variants[variant]
    with ray_cluster(ray) if ray else contextlib.nullcontext():  # one cluster session for every variant
        for variant, variant_config in variants.items():
            result = run_experiment(variant_config, out / variant_folder(variant), cache_dir, database=database,
                                    progress=progress, jobs=jobs, ray=ray)
            rows[variant] = result.metrics["mean_std_over_seeds"]
    paper = PAPER[name].get(config.dataset, {})
    atomic_write_text(out / "table.json", json.dumps({"table": name, "dataset": config.dataset,
                                                      "seeds": list(config.seeds), "selection": config.selection,
                                                      "rows": rows, "paper": paper, "skipped": skipped}, indent=2))
    leaky = " LEAKY (epoch chosen on the test subject)" if config.leaky else ""
    title = {"blocks": "Table 3: block mode k", "streams": "Table 4: network structure",
             "methods": "Tables 1 and 2: TSCNN, hand-crafted baselines and peer networks"}[name]
    lines = [f"# {title} on "
             f"{config.dataset}{leaky}", "",
             f"LOSO, predictions pooled over folds; "
             f"{'mean +- std over seeds' if len(config.seeds) > 1 else 'seed'} {list(config.seeds)}; preset "
             f"`{config.preset}`, selection `{config.selection}`.", "",
             "| variant | accuracy | UF1 (pooled F1) | F1, mean over folds | UAR | paper: accuracy | paper: mean F1 |",
             "|---|---|---|---|---|---|---|"]
    for variant, m in rows.items():
        cells = [format_mean_std(m[k], len(config.seeds)) if k in m else "-"
                 for k in ("accuracy", "uf1", "fold_mean_f1", "uar")]
        published = paper.get(variant)
        cells += [f"{published[0] / 100:.4f}", f"{published[1]:.4f}"] if published else ["-", "-"]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += [f"| {variant} | skipped: {why} | | | | | |" for variant, why in skipped.items()]
    own = [f"{variant} `{settings.preset}`" for variant, settings in variants.items()
           if settings.preset != config.preset and get_model(settings.model).trains_by_epochs]
    if own:
        lines += ["", f"Peer networks train with their own recipes (preset): {', '.join(own)}; "
                  "hand-crafted baselines and the floor are fitted on each fold's training subjects."]
    lines += ["", "The paper's figures come from its own protocol (epoch selection unclear); they are a "
              "reference, not a target. It does not say how its mean F1 is pooled: UF1 pools every fold's "
              "predictions, the fold mean averages each fold's macro F1; both are given."]
    path = out / "table.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
