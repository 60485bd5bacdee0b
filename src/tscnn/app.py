"""The application verbs that write reports and model files: ``tscnn run`` (run and report), the demo's
synthetic database and settings, and ``tscnn train`` (one final model for prediction)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from tscnn.action_units import au_targets, require_action_units
from tscnn.backends import import_ray
from tscnn.config import Config
from tscnn.datasets import Database
from tscnn.fold import fit_floor, floor_arrays
from tscnn.models import get_model
from tscnn.models.linear import floor_tensors, with_floor_streams
from tscnn.predict import save_model
from tscnn.preprocessing.prepare import PrepSettings, prepare
from tscnn.pretrain import with_pretrained_file
from tscnn.protocols import validation_subjects
from tscnn.report import write_report
from tscnn.results_folder import writes_results_folder
from tscnn.run_facts import ExperimentResult, code_version
from tscnn.runner import check_config, config_database, config_for, default_out, run_experiment
from tscnn.synth import SynthSettings, write_database
from tscnn.synth.database import CASME2_CODING
from tscnn.train import Trainer


def run_and_report(config: Config, out: str | Path | None = None, cache_dir: str | Path | None = None,
                   max_new_folds: int | None = None, allow_code_change: bool = False,
                   progress: bool = True, jobs: int = 1,
                   ray: str | None = None) -> tuple[ExperimentResult, Path | None]:
    """What ``tscnn run`` does: check the Config, run (or resume) it, and write the report when complete."""
    check_config(config, local_device=not ray)
    if ray:
        import_ray()
    database = config_database(config)  # a bad database is named before a pre-training that takes long
    config = with_pretrained_file(config, cache_dir, jobs, progress)
    result = run_experiment(config, out or default_out(config), cache_dir, database=database, progress=progress,
                            max_new_folds=max_new_folds, allow_code_change=allow_code_change, jobs=jobs,
                            ray=ray)
    report = write_report(result, config, database.table) if result.complete else None
    return result, report


DEMO_DATA_STAMP = "tscnn-synth.json"


def ensure_demo_data(data: str | Path, data_seed: int = 0) -> Path:
    """The demo's synthetic database: generated when absent; an error when the folder holds another seed's."""
    data = Path(data)
    stamp = data / DEMO_DATA_STAMP
    if (data / CASME2_CODING).exists():
        seed = json.loads(stamp.read_text()).get("seed") if stamp.exists() else 0
        if seed != data_seed:
            raise ValueError(f"{data} holds the synthetic database of seed {seed}, not {data_seed}: "
                             "use another --data folder or delete it")
        return data
    print(f"generating the default synthetic database in {data} ...")
    write_database(data, SynthSettings(seed=data_seed))
    stamp.write_text(json.dumps({"seed": data_seed}))
    return data


def demo_config(data: str | Path, seeds: tuple[int, ...] = (0,), data_seed: int = 0) -> Config:
    """The main job's settings: TSCNN, all three streams, the ``demo`` preset, on the synthetic CASME II layout."""
    return config_for("tscnn", "demo", dataset="casme2", root=str(data), classes="5class", seeds=seeds,
                      data_seed=data_seed)


@writes_results_folder()
def train_final_model(config: Config, out: str | Path, cache_dir: str | Path | None = None,
                      database: Database | None = None, progress: bool = True) -> Path:
    """One model on every subject of the database, for prediction on new clips (``tscnn predict``).

    Early stopping uses held-out subjects as in LOSO (``val_fraction``); there is no test subject,
    so this model has no evaluation figure of its own: LOSO (``tscnn run``) measures the recipe.
    """
    if not get_model(config.model).trains_by_epochs:
        raise ValueError(f"model {config.model!r} is a features model: it is fitted per LOSO fold (tscnn run), "
                         "not saved for prediction; train a network (tscnn, ststnet, offapexnet)")
    if config.train_fraction < 1:
        raise ValueError(f"train_fraction {config.train_fraction} draws a share of each LOSO fold's training "
                         "subjects (a learning curve, tscnn run); the final model learns from every subject")
    if config.threads:
        torch.set_num_threads(config.threads)
    db = database or config_database(config)
    config = with_pretrained_file(config, cache_dir, progress=progress)
    if config.au_weight:
        require_action_units(db.table["action_units"], config.root or config.dataset)
    prepared = prepare(db.table, PrepSettings.from_config(config), cache_dir, progress=progress,
                       streams=with_floor_streams(config.streams, config.fuse_linear))
    subjects = prepared.table["subject"].astype(str).to_numpy()
    val_subjects = validation_subjects(sorted(set(subjects)), config.val_fraction,
                                       np.random.default_rng([config.seeds[0], 17]))
    val = np.flatnonzero(np.isin(subjects, val_subjects))
    train = np.flatnonzero(~np.isin(subjects, val_subjects))
    arrays = {s: prepared.arrays[s] for s in config.streams}
    labels = prepared.table["label"].to_numpy()
    trainer = Trainer(config, len(db.classes), seed=config.seeds[0])
    units = au_targets(prepared.table["action_units"], train) if config.au_weight else None
    result = trainer.fit(arrays, labels, train, val, desc="final model", progress=progress, action_units=units)
    meta = {"database": db.name, "clips": int(len(db.table)), "train_subjects": sorted(set(subjects[train])),
            "val_subjects": val_subjects, "chosen_epoch": result.chosen_epoch, "code_version": code_version(),
            "history": result.history}
    # --fuse-linear: the floor learns from every clip the network saw (as in each LOSO fold) and travels with it.
    floor = floor_tensors(fit_floor(floor_arrays(prepared), labels, np.sort(np.concatenate([train, val])),
                                    config.centre_floor, config.floor_views)[0]) \
        if config.fuse_linear else None
    return save_model(Path(out) / "model.pt", result.model, config, db.classes, meta, floor)
