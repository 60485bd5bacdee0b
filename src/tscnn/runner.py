"""Leave-one-subject-out (or cross-database) experiment: database -> prepared tensors -> folds -> backend ->
predictions -> metrics.

Every finished fold is written to ``<out>/seed_<s>/folds/<subject>.json`` at once, so an
interrupted run resumes from the last finished fold and gives the same pooled predictions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch

from tscnn.action_units import require_action_units
from tscnn.backends import import_ray, run_fold_jobs
from tscnn.checkpoints import SYNTHETIC_MICRO, read_pretrained
from tscnn.config import FLOOR_VIEW_WORDS, PRESETS, Config, changed_floor_settings, from_preset
from tscnn.datasets import Database, load_database
from tscnn.datasets.apeximages import attach_apex_images
from tscnn.fold import FUSED_MEMBERS, FoldJob, check_stored_fold, fold_predictions, make_folds
from tscnn.metrics import evaluate_predictions, over_seeds
from tscnn.models import get_model
from tscnn.models.linear import with_floor_streams
from tscnn.preprocessing.prepare import ALL_STREAMS, VOLUME_STREAM, PrepSettings, check_streams, prepare
from tscnn.protocol_specs import get_protocol
from tscnn.results_folder import atomic_write_text, writes_results_folder
from tscnn.run_facts import ExperimentResult, check_or_store_run, machine_info


def config_database(config: Config) -> Database:
    """The database a Config names, read with its class set and apex rule (and a flow folder's apex images)."""
    db = load_database(config.dataset, config.root, config.coding, config.classes, config.apex_fallback)
    return attach_apex_images(db, config.apex_root) if config.apex_root else db


def model_inputs(model: str) -> dict:
    """A registered model's own input settings: its streams, and its input size when it has one."""
    spec = get_model(model)
    return {"streams": spec.streams, **({"size": spec.size} if spec.size else {})}


def config_for(model: str = "tscnn", preset: str | None = None, **overrides) -> Config:
    """A Config for a registered model: its own recipe preset unless one is named, its input streams and
    size unless given (``None`` overrides are ignored)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return from_preset(preset or get_model(model).preset, model=model, **{**model_inputs(model), **given})


@writes_results_folder()
def run_experiment(config: Config, out: str | Path, cache_dir: str | Path | None = None,
                   database: Database | None = None, progress: bool = True,
                   max_new_folds: int | None = None, allow_code_change: bool = False,
                   jobs: int = 1, ray: str | None = None) -> ExperimentResult:
    """Run (or resume) the Config's protocol over every seed; write predictions and metrics under ``out``.

    ``max_new_folds`` stops after that many newly trained folds (work in chunks; tests use it to
    simulate an interruption). ``jobs`` > 1 trains that many folds at once in worker processes;
    ``ray`` (an address, or ``local`` / ``auto``) sends them to a Ray cluster instead (see ``RayBackend``).
    """
    out = Path(out)
    if ray:
        import_ray()  # a missing package is named before any work
    if config.threads:
        torch.set_num_threads(config.threads)
    get_model(config.model)
    db = database or config_database(config)
    streams = with_floor_streams(config.streams, config.fuse_linear)  # a fused run's floor reads u, v, strain
    check_streams(db.table, streams)
    if config.au_weight:
        require_action_units(db.table["action_units"], config.root or config.dataset)
    check_or_store_run(config, out, db.table, allow_code_change)
    prepared = prepare(db.table, PrepSettings.from_config(config), cache_dir, progress=progress, streams=streams,
                       jobs=jobs)
    labels = prepared.table["label"].to_numpy()
    num_classes = len(db.classes)
    complete, pending, finished, stored = True, [], [], {}
    for seed in config.seeds:
        folds = make_folds(config, prepared.table, seed)
        fold_dir = out / f"seed_{seed}" / "folds"
        fold_dir.mkdir(parents=True, exist_ok=True)
        for index, fold in enumerate(folds):
            path = fold_dir / f"{fold.test_subject}.json"
            finished.append((seed, path))
            if path.exists():
                stored[path] = check_stored_fold(path, fold, prepared.table, seed)
            else:
                if max_new_folds is not None and len(pending) >= max_new_folds:
                    complete = False
                    break
                pending.append(FoldJob(seed, index, fold, path))
    failed = run_fold_jobs(pending, config, prepared, labels, num_classes, progress, jobs, ray)
    if failed:
        raise RuntimeError("; ".join(failed) + f" (every other fold is saved in {out}: run again to retry)")
    all_predictions = [fold_predictions(stored.get(path) or json.loads(path.read_text()), prepared.table, seed,
                                        db.classes) for seed, path in finished if path.exists()]
    predictions = pd.concat(all_predictions, ignore_index=True) if all_predictions else pd.DataFrame()
    if len(predictions):
        predictions["selection"] = config.selection + (" (LEAKY)" if config.leaky else "")  # each row says how
    metrics = summarise(predictions, config, db, num_classes) if complete else {}
    if complete:
        atomic_write_text(out / "predictions.csv", predictions.to_csv(index=False))
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
        atomic_write_text(out / "run_info.json", json.dumps(machine_info(config, num_classes, jobs, ray), indent=2))
    return ExperimentResult(out, predictions, metrics, complete)


def seed_ensemble(predictions: pd.DataFrame) -> pd.DataFrame:
    """One prediction per clip from the class probabilities averaged over the seeds."""
    proba_columns = [c for c in predictions if c.startswith("p_")]
    keys = ["dataset", "subject", "clip"]
    mean = predictions.groupby(keys, sort=False)[proba_columns].mean()
    first = predictions.groupby(keys, sort=False)[["label"]].first()
    ensemble = first.join(mean).reset_index()
    ensemble["pred"] = ensemble[proba_columns].to_numpy().argmax(1)
    return ensemble


_SEED_METRICS = ("accuracy", "uf1", "uar", "fold_mean_f1", "fold_mean_accuracy")


def summarise(predictions: pd.DataFrame, config: Config, db: Database, num_classes: int) -> dict:
    """Metrics per seed (pooled over folds), their mean +- std over seeds, the seed ensemble, and the
    leaky shadow (what choosing each fold's epoch on the test subject would have claimed)."""
    per_seed = {int(seed): evaluate_predictions(part, num_classes) for seed, part in predictions.groupby("seed")}
    leaky = {int(seed): evaluate_predictions(part.assign(pred=part.leaky_pred), num_classes)
             for seed, part in predictions.groupby("seed")}
    names = sorted(next(iter(per_seed.values())).get("per_dataset", {}))
    per_dataset = {name: over_seeds([m["per_dataset"][name] for m in per_seed.values()]) for name in names}
    leaky_per_dataset = {name: over_seeds([m["per_dataset"][name] for m in leaky.values()]) for name in names}
    return {
        "dataset": db.name, "classes": list(db.classes), "clips": int(len(db.table)),
        "subjects": int(db.table.subject.nunique()), "model": config.model,
        "protocol": get_protocol(config.protocol).title(config)
        + (f", learning curve: each fold learns from a share {config.train_fraction:g} of its training subjects"
           if config.train_fraction < 1 else ""),
        **({"fusion": "each clip's class probabilities are the mean of the network's and the linear floor's "
                      f"(fitted on the same training clips{FLOOR_VIEW_WORDS[config.floor_views]}); the "
                      "fold records keep both members' probabilities"}
           if config.fuse_linear else {}),
        "selection": config.selection, "leaky": config.leaky,
        "f1": "UF1 = macro F1 over classes present, on predictions pooled over all folds; fold_mean_f1 = the mean "
              "over folds of each fold's macro F1 (classes present in that fold), the other reading of a 'mean F1'",
        "mean_std_over_seeds": over_seeds(list(per_seed.values()), _SEED_METRICS),
        "per_seed": per_seed, "quirks": db.quirks, "left_out": db.left_out,
        **({"per_dataset_mean_std_over_seeds": per_dataset} if per_dataset else {}),
        "seed_ensemble": evaluate_predictions(seed_ensemble(predictions), num_classes),
        **({"fused_members": {
            "what": "each member of the fusion alone, from the probabilities the fold records keep "
                    "(the network's honest epoch; the floor fitted on the same training clips)",
            **fused_member_metrics(predictions, num_classes)}}
           if all(f"{member}_pred" in predictions for member in FUSED_MEMBERS) else {}),
        "leaky_shadow": {
            "what": "the same training runs, each fold's epoch chosen by its best test-subject accuracy "
                    "(the common leaky practice); reported to measure the inflation, never used",
            "mean_std_over_seeds": over_seeds(list(leaky.values())),
            **({"per_dataset_mean_std_over_seeds": leaky_per_dataset} if leaky_per_dataset else {}),
        },
    }


def fused_member_metrics(predictions: pd.DataFrame, num_classes: int) -> dict[str, dict]:
    """Each member of a fused run alone (columns ``network_pred``, ``floor_pred``), mean +- std over seeds."""
    return {member: over_seeds([evaluate_predictions(part.assign(pred=part[f"{member}_pred"]), num_classes)
                                for _, part in predictions.groupby("seed")])
            for member in FUSED_MEMBERS}


def default_out(config: Config, kind: str = "results") -> Path:
    """Where a run writes unless told: ``results/<dataset>-<model>-<streams>[-k<blocks>]-<preset>[-LEAKY]``."""
    parts = [config.dataset, config.model, "-".join(config.streams)]
    if "ls" in config.streams:
        parts.append(f"k{config.blocks}")
    protocol_part = get_protocol(config.protocol).folder(config)
    if protocol_part:
        parts.append(protocol_part)
    if config.train_fraction < 1:
        parts.append(f"train{config.train_fraction:g}")
    if config.fuse_linear and not PRESETS.get(config.preset, {}).get("fuse_linear"):  # the preset's name says it
        parts.append("fused-linear")
    return Path(kind) / "-".join([*parts, config.preset, *(["LEAKY"] if config.leaky else [])])


def check_config(config: Config, local_device: bool = True) -> None:
    """Every setting checked before any work (and before a results folder is made): the model and its
    streams, the device (here, unless ``local_device`` is false: folds sent to a Ray cluster use its
    GPUs, checked when it is joined), and a block grid the face can hold."""
    spec = get_model(config.model)
    if not config.streams:
        raise ValueError("no input stream given: name at least one of ss, ls, dt, uvs")
    unknown = [s for s in config.streams if s not in ALL_STREAMS]
    if unknown:
        raise ValueError(f"unknown stream {', '.join(map(repr, unknown))}; expected some of {', '.join(ALL_STREAMS)} "
                         "(lower case)")
    if VOLUME_STREAM in config.streams and VOLUME_STREAM not in spec.streams:
        raise ValueError(f"the {VOLUME_STREAM} stream (the face volume) feeds hand-crafted features (lbptop); "
                         f"model {config.model} does not read it")
    if not spec.any_streams and tuple(config.streams) != spec.streams:
        raise ValueError(f"model {config.model} reads the stream(s) {', '.join(spec.streams)}, "
                         f"not {', '.join(config.streams)}")
    if config.device not in ("cpu", "auto") and not (config.device.startswith("cuda")
                                                     and (torch.cuda.is_available() or not local_device)):
        raise ValueError(f"device {config.device!r} is not available here (cpu, auto, or cuda on a machine with "
                         "a CUDA GPU)")
    if config.blocks > config.work_size // 8:
        raise ValueError(f"blocks (k = {config.blocks}) must leave face blocks of at least 8 px: at most "
                         f"{config.work_size // 8} for a {config.work_size}-px face crop")
    if config.size < 8 or config.size > config.work_size:
        raise ValueError(f"size {config.size} must be between 8 and work_size ({config.work_size})")
    if config.pretrained and not spec.pretrained_weights:
        raise ValueError(f"--pretrained loads `tscnn pretrain` weights (input convolutions and a trunk); model "
                         f"{config.model} has none to load them into")
    if config.pretrained and config.pretrained != SYNTHETIC_MICRO:  # refused before any preparation if it cannot fit
        read_pretrained(config.pretrained, config.streams, config.share_trunk, config.centre_flow, config.scale_flow,
                        config.pretrained_dense)
    if config.teacher and not (spec.pretrained_weights and "ss" in config.streams):
        raise ValueError("teacher distils into TSCNN's static-spatial stream: it needs --model tscnn with the ss "
                         f"stream (model {config.model}, streams {', '.join(config.streams)})")
    if config.scale_flow and not config.centre_flow:
        raise ValueError("scale_flow divides the centred flow maps: give --centre-flow with --scale-flow")
    if config.au_weight and not spec.auxiliary_targets:
        raise ValueError(f"au_weight trains an auxiliary head on TSCNN's super feature vector; model {config.model} "
                         "has none (use --model tscnn)")
    does = {"centre_floor": "centres the linear floor's maps",
            "floor_views": "fits the linear floor on augmentation variants"}
    for setting in changed_floor_settings(config.to_dict()):
        if not (spec.centred_features or config.fuse_linear):
            raise ValueError(f"{setting} {does[setting]}; model {config.model} has no floor: run --model linear or "
                             "fuse a network with the floor (--fuse-linear)")
    if config.fuse_linear and not spec.fuses_with_floor:
        raise ValueError(f"fuse_linear averages a network's probabilities with the linear floor's; model "
                         f"{config.model} is a features model (run --model linear for the floor alone)")
