"""Fuse a finished run's networks with the floor as `--fuse-linear` now defines it, without retraining.

A fused run's fold records keep the network member's probabilities (`network_proba`); a run trained without
fusion keeps them as its `proba`. Runs made before the floor member read its own maps (u, v, strain; code
a1a49d6 and earlier) fused a network that reads SS, LS or DT with a linear model of the network's inputs
instead. This script refits the floor on each fold's training clips (`tscnn.fold.fit_floor` on u, v, strain,
exactly what a run of the current code does), averages it with the stored network probabilities, and prints
and writes the figures: the recipe with `--fuse-linear` as it is defined now, on the same trained networks
(the network's training does not depend on the fusion). Nothing of the run folder is changed. The floor is
refitted as the run's own `centre_floor` says, or as `--centre-floor` / `--no-centre-floor` says: the same networks
fused with the other floor, the one setting the two recipes differ in. Likewise it fits each training clip's original
view, its mirror too, or every augmentation variant of it, as the run's `floor_views` or `--floor-views` says.

A results folder may not outlive its machine, so one recipe's seeds can end up in several folders: ``--update``
keeps the rows already in ``--json`` (a folder fused again replaces its row) and pools the rows' seeds, mean +-
std over their union, from each seed's figures. All rows of one file must be the same recipe: each row names
its run's recipe (model, preset, streams, protocol and every recipe setting), and a row of another recipe
is refused (rows written before rows named their recipe are taken on trust).

With ``--paired-bootstrap`` the folders' seeds together are compared, subject by subject
(`tscnn.metrics.paired_subject_bootstrap`: whole subjects resampled, both sides scored on the same draw), with the
same networks fused with the other floor (by default centred against uncentred; ``--paired-bootstrap
floor_views``: fitted on the run's or the given views against the original views only), with the network member
alone and with each floor alone: the difference in UF1 and its 95 % interval, so that a claim that one floor
helps can be checked from the stored folds alone.

    python benchmarks/refuse_with_floor.py results/casme2kf-tscnn-plus-fused [more folders] --cache data/cache \
        --json refused.json [--update] [--floor-views every] [--paired-bootstrap [floor_views]]
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np
import pandas as pd

from tscnn.config import FLOOR_FIELDS, FLOOR_VIEWS, RECIPE_FIELDS, RUN_IDENTITY_FIELDS, Config
from tscnn.datasets import Database
from tscnn.fold import FUSED_MEMBERS, floor_arrays, floor_proba
from tscnn.metrics import evaluate_predictions, over_seeds, paired_subject_bootstrap, seeds_together
from tscnn.models import get_model
from tscnn.models.linear import FLOOR_STREAMS
from tscnn.preprocessing.prepare import PrepSettings, prepare
from tscnn.run_facts import code_version, table_fingerprint
from tscnn.runner import config_database

_METRICS = ("accuracy", "uf1", "uar")
_READINGS = {"fused": "pred", "network": "network_pred", "floor": "floor_pred"}


def floor_settings(config: Config, **given: bool | str | None) -> dict[str, bool | str]:
    """Each floor setting (``FLOOR_FIELDS``: a refit may set each otherwise than the run did) as given, or, where
    None or not given, as the run's config has it."""
    return {name: getattr(config, name) if given.get(name) is None else given[name] for name in FLOOR_FIELDS}


def recipe(config: Config, floor: dict[str, bool | str]) -> dict:
    """The run's recipe as a row keeps it (JSON values), fused with the floor as ``floor`` sets it (centred or not,
    the views it fits) whether the run was or not (the row is the fused recipe): rows of one file must
    agree on it to be pooled."""
    values = {**config.to_dict(), "fuse_linear": True, **floor}
    return json.loads(json.dumps({key: values[key] for key in (*RUN_IDENTITY_FIELDS, *RECIPE_FIELDS)}))


def fused_predictions(folder: Path, cache: Path | None, database: Database | None = None, floors: dict | None = None,
                      centre_floor: bool | None = None, made: dict | None = None,
                      floor_views: str | None = None) -> tuple[pd.DataFrame, int, dict[str, bool | str]]:
    """Every test clip of every seed of a finished run: the stored network fused with the floor refitted per fold,
    its maps centred as ``centre_floor`` says and fitted on the views ``floor_views`` names (each by default as the
    run's own setting); the prediction (``pred``) and each member's (``network_pred``, ``floor_pred``), with
    the number of classes and the floor's settings used. ``database`` is the one the run read (by default the one
    its config names), checked by its fingerprint. The floor has no seed: one fit per clip set, inputs and floor
    settings, kept in ``floors`` for the next call; the result of each folder and floor is kept in ``made``, so
    that a later call for them reads nothing again."""
    config = Config.load(folder / "config.json")
    floor_setting = floor_settings(config, centre_floor=centre_floor, floor_views=floor_views)
    centre, views = floor_setting["centre_floor"], floor_setting["floor_views"]
    if made is not None and (folder, centre, views) in made:
        return made[(folder, centre, views)]
    network_key = "network_proba" if config.fuse_linear else "proba"  # the network member as the run stored it
    if not get_model(config.model).fuses_with_floor:  # what a run with --fuse-linear accepts
        raise SystemExit(f"error: {folder}: model {config.model} is a features model: it has no network to fuse")
    db = database or config_database(config)
    fingerprint = table_fingerprint(db.table)
    if fingerprint != json.loads((folder / "fingerprint.json").read_text())["table"]:
        raise SystemExit(f"error: {folder}: the database now differs from the one the run read (its fingerprint)")
    settings = PrepSettings.from_config(config)
    prepared = prepare(db.table, settings, cache, progress=False, streams=FLOOR_STREAMS)
    table, labels, classes = prepared.table, prepared.table["label"].to_numpy(), len(db.classes)
    subjects = table["subject"].astype(str).to_numpy()
    features, floors = floor_arrays(prepared), {} if floors is None else floors
    rows = []
    for seed_dir in sorted(folder.glob("seed_*")):
        for path in sorted((seed_dir / "folds").glob("*.json")):
            record = json.loads(path.read_text())
            test = np.asarray(record["rows"])
            fit = np.flatnonzero(np.isin(subjects, record["train_subjects"] + record["val_subjects"]))
            network = np.asarray(record[network_key])
            key = (fingerprint, repr(settings), centre, views, tuple(fit), tuple(test))
            if key not in floors:
                floors[key] = floor_proba(features, labels, fit, test, classes, centre=centre, views=views)
            floor = floors[key]
            part = table.iloc[test][["dataset", "subject", "clip", "label"]].copy()
            part["row"], part["fold"] = test, record["test_subject"]  # the clip table's row: one per clip and seed
            part["seed"] = int(seed_dir.name.removeprefix("seed_"))
            part["network_pred"], part["floor_pred"] = network.argmax(1), floor.argmax(1)
            part["pred"] = ((network + floor) / 2).argmax(1)
            rows.append(part)
    if not rows:
        raise SystemExit(f"error: {folder}: no finished fold to fuse (no seed_*/folds/*.json)")
    result = pd.concat(rows, ignore_index=True), classes, floor_setting
    if made is not None:
        made[(folder, centre, views)] = result
    return result


def refuse(folder: Path, cache: Path | None, database: Database | None = None, floors: dict | None = None,
           centre_floor: bool | None = None, made: dict | None = None, floor_views: str | None = None) -> dict:
    """Figures per seed (and their mean +- std) of the stored network fused with the floor refitted per fold
    (`fused_predictions`, whose arguments these are), each member's beside them."""
    config = Config.load(folder / "config.json")
    predictions, classes, floor = fused_predictions(folder, cache, database, floors, centre_floor, made, floor_views)
    per_seed = {}
    for seed, part in predictions.groupby("seed", sort=True):
        per_seed[str(seed)] = {name: evaluate_predictions(part.assign(pred=part[column]), classes)
                               for name, column in _READINGS.items()}
    info = json.loads((folder / "run_info.json").read_text()) if (folder / "run_info.json").exists() else {}
    versions = sorted({json.loads(p.read_text()).get("code_version", "") for p in folder.glob("seed_*/folds/*.json")})
    return {"folder": folder.name, "recipe": recipe(config, floor),
            "fused": over_seeds([m["fused"] for m in per_seed.values()]),
            "per_seed_uf1": {seed: m["fused"]["uf1"] for seed, m in per_seed.items()},
            "members": {m: over_seeds([figures[m] for figures in per_seed.values()]) for m in FUSED_MEMBERS},
            "per_seed": {seed: {name: {k: m[name][k] for k in _METRICS} for name in _READINGS}
                         for seed, m in per_seed.items()},
            "code_version": ", ".join(v for v in versions if v), "cpu": info.get("cpu"), "bf16": info.get("bf16"),
            "fusion_code_version": code_version(), "fused_on": datetime.date.today().isoformat()}


_FLOOR_NAMES = {"centre_floor": {True: "centred floor", False: "uncentred floor"},
                "floor_views": {"original": "floor fitted on original views",
                                "mirror": "floor fitted on original and mirrored views",
                                "every": "floor fitted on every variant"}}


def _other_floor(vary: str, mine: bool | str) -> bool | str:
    """The value of ``vary`` the paired bootstrap compares against: the other centring, or the original views."""
    if vary == "centre_floor":
        return not mine
    if mine == "original":
        raise SystemExit("error: --paired-bootstrap floor_views compares a floor fitted on more views with the "
                         "original views: give --floor-views mirror or every (or a run that set it)")
    return "original"


def paired_bootstrap(folders: list[Path], cache: Path | None, database: Database | None = None,
                     floors: dict | None = None, centre_floor: bool | None = None, made: dict | None = None,
                     floor_views: str | None = None, vary: str = "centre_floor") -> dict:
    """The folders' seeds together (distinct seeds of one recipe), fused with the floor as ``centre_floor`` and
    ``floor_views`` set it, against the same networks fused with the floor that differs in ``vary`` alone (the
    other centring, or the original views: `_other_floor`), the network member alone and each floor alone: each a
    paired subject bootstrap of the UF1 difference (fused minus the other). ``floors`` and ``made`` as
    `fused_predictions` keeps them (what `refuse` already made for these folders is not made again)."""
    floors = {} if floors is None else floors
    given = floor_settings(Config.load(folders[0] / "config.json"), centre_floor=centre_floor,
                           floor_views=floor_views)
    mine, theirs, name = given[vary], _other_floor(vary, given[vary]), _FLOOR_NAMES[vary]
    sides = {}
    for value in (mine, theirs):
        setting = {**given, vary: value}
        parts = [fused_predictions(f, cache, database, floors, setting["centre_floor"], made,
                                   setting["floor_views"]) for f in folders]
        sides[value] = pd.concat([p for p, _, _ in parts], ignore_index=True)
        classes = parts[0][1]
    if sides[mine].duplicated(["seed", "row"]).any():  # a row of the clip table, once per seed
        raise SystemExit(f"error: {', '.join(str(f) for f in folders)}: the folders share a seed; a paired bootstrap "
                         "pools distinct seeds only")
    ours, other = sides[mine], sides[theirs]
    against = {f"fused with the {name[theirs]}": other, "network member": ours.assign(pred=ours["network_pred"]),
               f"{name[mine]} alone": ours.assign(pred=ours["floor_pred"]),
               f"{name[theirs]} alone": other.assign(pred=other["floor_pred"])}
    return {"fused": f"fused with the {name[mine]}", "seeds": sorted(int(s) for s in ours["seed"].unique()),
            "against": {label: paired_subject_bootstrap(ours, b, classes) for label, b in against.items()}}


def _seed_figures(row: dict) -> dict:
    """A row's figures for each of its seeds: kept per seed, or, for a row of one seed, its means (exact)."""
    if row.get("per_seed"):
        return row["per_seed"]
    if len(row["per_seed_uf1"]) != 1:
        raise SystemExit(f"error: {row['folder']}: a row of several seeds without each seed's figures cannot be pooled")
    blocks = {"fused": row["fused"], **row["members"]}
    return {next(iter(row["per_seed_uf1"])): {name: {k: block[k]["mean"] for k in _METRICS}
                                               for name, block in blocks.items()}}


def pool(rows: list[dict]) -> dict:
    """The rows' seeds together: mean +- (population) std over the union of their seeds, as a single run of all
    those seeds reports them. The same seed in two rows is one seed fused twice, not two seeds: refused."""
    try:
        by_seed = seeds_together([_seed_figures(row) for row in rows])
    except ValueError as error:
        folders = ", ".join(row["folder"] for row in rows)
        raise SystemExit(f"error: {folders}: {error}; pool distinct seeds only") from None
    return {"folders": [row["folder"] for row in rows], "seeds": sorted(int(s) for s in by_seed),
            "fused": over_seeds([f["fused"] for f in by_seed.values()], _METRICS),
            "members": {m: over_seeds([f[m] for f in by_seed.values()], _METRICS) for m in ("network", "floor")},
            "per_seed_uf1": {s: by_seed[s]["fused"]["uf1"] for s in sorted(by_seed, key=int)}}


def update(stored: dict, figures: dict) -> dict:
    """The stored JSON with ``figures`` as a row: a file of one fused folder (its figures at the top) becomes a
    file of rows, a folder fused again replaces its row, and the rows are pooled when there are several."""
    if "rows" in stored:
        rows, top = stored["rows"], {k: v for k, v in stored.items() if k not in ("rows", "pooled")}
    else:
        rows, top = [stored], {"data": stored["data"]} if "data" in stored else {}
    rows = [row for row in rows if row["folder"] != figures["folder"]] + [figures]
    named = [row for row in rows if "recipe" in row]
    default = recipe(Config(), floor_settings(Config()))  # a setting added after a row was written: its default
    for row in named[1:]:
        first, this = named[0]["recipe"], row["recipe"]
        differ = sorted(key for key in {*first, *this}
                        if first.get(key, default.get(key)) != this.get(key, default.get(key)))
        if differ:
            raise SystemExit(f"error: {row['folder']}: not the recipe of {named[0]['folder']} (it differs in "
                             f"{', '.join(differ)}); one recipe per file")
    return {**top, "rows": rows, **({"pooled": pool(rows)} if len(rows) > 1 else {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="finished run folders (each its own row)")
    parser.add_argument("--cache", type=Path, default=Path("data/cache"), help="the prepared-input cache")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--update", action="store_true",
                        help="keep the rows already in --json and pool their seeds with this folder's")
    parser.add_argument("--centre-floor", action=argparse.BooleanOptionalAction, default=None,
                        help="refit the floor on each map centred on its own median (or not); default: as the run did")
    parser.add_argument("--floor-views", choices=FLOOR_VIEWS,
                        help="refit the floor on these views of each training clip (original, with its mirror, or "
                             "every augmentation variant); default: as the run did")
    parser.add_argument("--paired-bootstrap", nargs="?", const="centre_floor", choices=FLOOR_FIELDS,
                        help="compare the folders' seeds together, subject by subject, with the floor that differs in "
                             "this setting (default centre_floor) and each member alone (written under "
                             "'paired_bootstrap' with --json)")
    args = parser.parse_args(argv)
    if len(args.folders) > 1 and args.json and not args.update:
        raise SystemExit("error: several folders go into one --json only with --update")
    floors: dict = {}  # shared: the same folds of the same clips need the floor fitted once
    made: dict = {}  # and each folder's fused predictions are read and made once for each floor
    for folder in args.folders:
        figures = refuse(folder, args.cache, floors=floors, centre_floor=args.centre_floor, made=made,
                         floor_views=args.floor_views)
        print(folder.name)
        for name, block in (("fused", figures["fused"]), *figures["members"].items()):
            print(f"  {name:<8}" + "  ".join(f"{k} {block[k]['mean']:.4f} +- {block[k]['std']:.4f}"
                                             for k in _METRICS))
        written = figures
        if args.json and args.update and args.json.exists():
            written = update(json.loads(args.json.read_text()), figures)
            if "pooled" in written:
                pooled = written["pooled"]["fused"]
                print(f"  pooled over seeds {written['pooled']['seeds']}: " + "  ".join(
                    f"{k} {pooled[k]['mean']:.4f} +- {pooled[k]['std']:.4f}" for k in _METRICS))
        if args.json:
            args.json.write_text(json.dumps(written, indent=2) + "\n")
    if args.paired_bootstrap:
        paired = paired_bootstrap(args.folders, args.cache, floors=floors, centre_floor=args.centre_floor, made=made,
                                  floor_views=args.floor_views, vary=args.paired_bootstrap)
        print(f"{paired['fused']}, seeds {paired['seeds']}, against (UF1 difference, 95 % interval over subjects):")
        for label, b in paired["against"].items():
            print(f"  {label:<31} {b['uf1_difference']:+.4f} [{b['ci_low']:+.4f}, {b['ci_high']:+.4f}], above zero "
                  f"in {b['share_above_zero']:.0%} of {b['resamples']} resamples of {b['subjects']} subjects")
        if args.json:
            stored = json.loads(args.json.read_text())
            args.json.write_text(json.dumps({**stored, "paired_bootstrap": paired}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
