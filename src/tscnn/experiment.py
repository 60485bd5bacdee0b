"""Leave-one-subject-out experiment: database -> prepared tensors -> folds -> trainer -> predictions -> metrics.

Every finished fold is written to ``<out>/seed_<s>/folds/<subject>.json`` at once, so an
interrupted run resumes from the last finished fold and gives the same pooled predictions.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import multiprocessing
import os
import platform
import subprocess
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from tscnn import __version__
from tscnn.config import PRESETS, Config, from_preset
from tscnn.console import bars_disabled
from tscnn.datasets import Database, load_database
from tscnn.errors import one_line
from tscnn.metrics import evaluate_predictions, over_seeds
from tscnn.models import get_model
from tscnn.preprocessing.prepare import ALL_STREAMS, VOLUME_STREAM, Prepared, PrepSettings, check_streams, prepare
from tscnn.protocols import Fold, cross_dataset_fold, loso_folds
from tscnn.results_folder import atomic_write_text, writes_results_folder
from tscnn.train import Trainer


@dataclass
class ExperimentResult:
    """What a run produced: pooled predictions of every seed and their metrics."""

    out: Path
    predictions: pd.DataFrame
    metrics: dict
    complete: bool


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit (and '+dirty') when run from a checkout: the code this process
    imported, asked of git once (every fold record carries it)."""
    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    return f"{__version__}" + (f"+g{commit}" if commit else "") + ("-dirty" if dirty else "")


def config_database(config: Config) -> Database:
    """The database a Config names, read with its class set and apex rule."""
    return load_database(config.dataset, config.root, config.coding, config.classes, config.apex_fallback)


def model_inputs(model: str) -> dict:
    """A registered model's own input settings: its streams, and its input size when it has one."""
    spec = get_model(model)
    return {"streams": spec.streams, **({"size": spec.size} if spec.size else {})}


def config_for(model: str = "tscnn", preset: str | None = None, **overrides) -> Config:
    """A Config for a registered model: its own recipe preset unless one is named, its input streams and
    size unless given (``None`` overrides are ignored)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return from_preset(preset or get_model(model).preset, model=model, **{**model_inputs(model), **given})


def table_fingerprint(table: pd.DataFrame) -> str:
    """A hash of what decides a run's data: clip ids, labels, phases and the contents of the key frames and
    flow images the table names (contents, not times: a copied or re-mounted database is the same data)."""
    columns = [c for c in ("dataset", "subject", "clip", "label", "emotion", "onset", "apex", "offset", "onset_path",
                           "apex_path", "offset_path", "flow_path") if c in table]
    digest = hashlib.sha1(table[columns].astype(str).to_csv(index=False).encode())
    for column in ("onset_path", "apex_path", "offset_path", "flow_path"):
        for path in table[column] if column in table else []:
            digest.update(_file_digest(path) + b";")
    return digest.hexdigest()[:16]


def _file_digest(path: str | Path | None) -> bytes:
    """SHA-1 of a file's bytes (``-`` when absent); key frames and flow images are small, so this is cheap."""
    if not path or not Path(path).is_file():
        return b"-"
    return hashlib.sha1(Path(path).read_bytes()).hexdigest().encode()


def check_or_store_run(config: Config, out: Path, table: pd.DataFrame, allow_code_change: bool = False) -> None:
    """Store the config and the data fingerprint in a new results folder; refuse to resume one made with
    other settings, another clip table, or (unless allowed) another code version."""
    path, stamp = out / "config.json", out / "fingerprint.json"
    current = {"table": table_fingerprint(table), "clips": int(len(table)), "code_version": code_version()}
    if path.exists():
        # Seeds are not compared: each seed's folds live in their own folder, so a run may add seeds. A field
        # added to the Config after the folder was made takes its default (which keeps the earlier behaviour).
        saved = json.loads(json.dumps(Config.load(path).to_dict()))
        stored = {k: v for k, v in saved.items() if k != "seeds"}
        wanted = {k: v for k, v in json.loads(json.dumps(config.to_dict())).items() if k != "seeds"}
        if stored != wanted:
            changed = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
            raise ValueError(f"{out} holds a run with other settings ({', '.join(changed)}); "
                             "use another --out or delete it to start over")
        if stamp.exists():
            before = json.loads(stamp.read_text())
            if before["table"] != current["table"]:
                raise ValueError(f"{out} holds folds of another clip table ({before['clips']} clips then, "
                                 f"{current['clips']} now, or the same clips with other labels, phases or frames): "
                                 "its folds would be stale; use another --out or delete it to start over")
            if before["code_version"] != current["code_version"] and not allow_code_change:
                raise ValueError(f"{out} was made by code {before['code_version']}, this is {current['code_version']}; "
                                 "use another --out, delete it, or allow resuming across code versions "
                                 "(--resume-any-code) if the change cannot alter results")
            config.save(path)  # the seeds of the latest run
            return
    out.mkdir(parents=True, exist_ok=True)
    config.save(path)
    atomic_write_text(stamp, json.dumps(current, indent=2))


def make_folds(config: Config, table: pd.DataFrame, seed: int) -> list[Fold]:
    """The folds of the Config's protocol: one per subject (LOSO), or one cross-database fold; with
    ``train_fraction`` < 1 each learns from a seeded share of its training subjects (a learning curve).

    The leaky selection (``test_leaky``) holds out no validation subjects: the practice it reproduces
    trains on every training subject and picks the epoch on the test subject."""
    val_fraction = 0.0 if config.leaky else config.val_fraction
    if config.protocol == "cross":
        return [cross_dataset_fold(table, config.train_datasets, config.test_datasets, val_fraction, seed,
                                   train_fraction=config.train_fraction)]
    return loso_folds(table, val_fraction, seed, train_fraction=config.train_fraction)


def run_fold(config: Config, prepared: Prepared, labels: np.ndarray, num_classes: int, fold: Fold, seed: int,
             fold_index: int, progress: bool) -> dict:
    """Train (or fit) and test one fold; a JSON-ready record of its predictions, the leaky shadow and history."""
    spec = get_model(config.model)
    arrays = {s: prepared.arrays[s] for s in config.streams}
    start = time.perf_counter()
    if spec.kind == "features":
        features = spec.features({s: a[:, 0].astype(np.float32) for s, a in arrays.items()})
        # No epochs to choose: every training subject fits, in table order (a solver's result depends on it).
        fit_rows = np.sort(np.concatenate([fold.train, fold.val]))
        classifier = spec.classifier()
        with contextlib.suppress(ValueError):
            classifier.set_params(**{k: seed for k in classifier.get_params() if k.endswith("random_state")})
        classifier.fit(features[fit_rows], labels[fit_rows])
        pred = classifier.predict(features[fold.test])
        proba = np.eye(num_classes)[pred]
        history, chosen, leaky_epoch, leaky_proba = [], 0, 0, proba
    else:
        trainer = Trainer(config, num_classes, seed=seed * 1000 + fold_index)
        result = trainer.fit(arrays, labels, fold.train, fold.val, fold.test, desc=f"fold {fold.test_subject}",
                             progress=progress)
        proba = trainer.predict_proba(result.model, arrays, fold.test)
        history, chosen, leaky_epoch, leaky_proba = (result.history, result.chosen_epoch, result.leaky_epoch,
                                                     result.leaky_proba)
    fused = {}
    if config.fuse_linear:
        floor = floor_proba(arrays, labels, np.sort(np.concatenate([fold.train, fold.val])), fold.test, num_classes)
        fused = {"network_proba": np.round(proba, 6).tolist(), "floor_proba": np.round(floor, 6).tolist()}
        proba, leaky_proba = (proba + floor) / 2, (leaky_proba + floor) / 2
    table = prepared.table
    return {
        "test_subject": fold.test_subject,
        "val_subjects": sorted(set(table.subject.iloc[fold.val])),
        "train_subjects": sorted(set(table.subject.iloc[fold.train])),
        "n_train_clips": int(len(fold.train)),
        "chosen_epoch": chosen,
        "leaky_epoch": leaky_epoch,
        "seconds": time.perf_counter() - start,
        "code_version": code_version(),
        "history": history,
        "rows": fold.test.tolist(),
        "proba": np.round(proba, 6).tolist(),
        "leaky_proba": np.round(leaky_proba, 6).tolist(),
        **fused,
    }


def fit_floor(arrays: dict[str, np.ndarray], labels: np.ndarray, fit_rows: np.ndarray) -> tuple[object, np.ndarray]:
    """The linear floor (the ``linear`` model: standardised pixels of every stream's original variant + logistic
    regression) fitted on ``fit_rows``, and the feature matrix of every clip: the second member of ``fuse_linear``."""
    linear = get_model("linear")
    features = linear.features({s: a[:, 0].astype(np.float32) for s, a in arrays.items()})
    return linear.classifier().fit(features[fit_rows], labels[fit_rows]), features


def floor_proba(arrays: dict[str, np.ndarray], labels: np.ndarray, fit_rows: np.ndarray, test_rows: np.ndarray,
                num_classes: int) -> np.ndarray:
    """Class probabilities of the floor fitted on ``fit_rows`` (``fit_floor``) for ``test_rows``; a class absent
    from the fitted rows gets probability 0."""
    classifier, features = fit_floor(arrays, labels, fit_rows)
    proba = np.zeros((len(test_rows), num_classes))
    proba[:, classifier.classes_] = classifier.predict_proba(features[test_rows])
    return proba


@dataclass
class FoldJob:
    """One fold of one seed still to train, and where its record goes."""

    seed: int
    index: int
    fold: Fold
    path: Path


@dataclass
class FoldContext:
    """What every fold job reads: the settings and the prepared data (sent to each worker once)."""

    config: Config
    prepared: Prepared
    labels: np.ndarray
    num_classes: int

    def run(self, job: FoldJob, progress: bool = False) -> dict:
        return run_fold(self.config, self.prepared, self.labels, self.num_classes, job.fold, job.seed, job.index,
                        progress)


def _save_record(path: Path, record: dict) -> None:
    atomic_write_text(path, json.dumps(record))


class MissingDependencyError(ValueError):
    """An optional package a setting needs is not installed (a one-line error naming the pip install)."""


class FoldBackend:
    """Where fold jobs run: ``submit`` returns a ``concurrent.futures.Future`` of the fold's record.

    ``run_fold_jobs`` is the one loop over every backend (in process, worker processes, a Ray cluster):
    it keeps at most ``capacity`` jobs submitted, saves each record as it arrives, tries a failed job
    once more and names what fails twice. A backend is a context manager (start and stop its workers).
    """

    description = "in process"
    parallel = False
    capacity = 1

    def submit(self, job: FoldJob) -> Future:
        raise NotImplementedError

    def __enter__(self) -> FoldBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class SequentialBackend(FoldBackend):
    """Each fold in this process, one after the other, with its epoch progress bar. An error stops the run
    at once with its traceback (no retry: in process a failure is a bug to see, not a flaky worker)."""

    def __init__(self, context: FoldContext, progress: bool = False) -> None:
        self.context, self.progress = context, progress

    def submit(self, job: FoldJob) -> Future:
        future: Future = Future()
        future.set_result(self.context.run(job, self.progress))
        return future


_WORKER: dict = {}


def _init_worker(context: FoldContext, threads: int, slots: object | None = None) -> None:
    """A worker process keeps the prepared data once, not once per fold. With ``device cuda`` (no index) on
    a machine with several GPUs, the workers are spread over them in turn."""
    torch.set_num_threads(threads)
    device = context.config.device
    if slots is not None and device == "cuda" and torch.cuda.device_count() > 1:
        with slots.get_lock():  # type: ignore[attr-defined]
            slot, slots.value = slots.value, slots.value + 1  # type: ignore[attr-defined]
        context = replace(context, config=replace(context.config, device=f"cuda:{slot % torch.cuda.device_count()}"))
    _WORKER["context"] = context


def _run_job(job: FoldJob) -> dict:
    return _WORKER["context"].run(job)


class ProcessBackend(FoldBackend):
    """``jobs`` worker processes on this machine (spawned, so CUDA works in them), the CPU threads split
    between them. With ``device cuda`` the workers share the GPU(s): ``jobs`` folds train on it at once,
    for a network too small to fill one alone."""

    parallel = True
    capacity = 1 << 30

    def __init__(self, context: FoldContext, jobs: int) -> None:
        self.context, self.jobs = context, jobs
        self.threads = context.config.threads or max(1, (os.cpu_count() or 1) // jobs)
        self.description = f"{jobs} processes x {self.threads} threads"
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ProcessBackend:
        mp = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(self.jobs, mp_context=mp, initializer=_init_worker,
                                        initargs=(self.context, self.threads, mp.Value("i", 0)))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def submit(self, job: FoldJob) -> Future:
        assert self.pool is not None, "use the backend as a context manager"
        return self.pool.submit(_run_job, job)


def _ray_fold(context: FoldContext, job: FoldJob, threads: int) -> dict:
    """One fold in a Ray worker (the prepared data arrives from the object store, put there once)."""
    torch.set_num_threads(threads)
    return context.run(job)


def import_ray() -> ModuleType:
    """The ``ray`` module, or a one-line error naming the install."""
    try:
        import ray
    except ImportError as err:
        raise MissingDependencyError("--ray needs the optional package ray: pip install 'tscnn[ray]' "
                                     f"(or pip install ray); {one_line(err)}") from None
    return ray


def ray_init_options(address: str) -> dict:
    """``ray.init`` options for ``address``. A cluster given by its address (not ``local`` / ``auto``, this
    machine) may have other machines whose Python lacks this tscnn: the package is shipped to them with the
    job (Ray's ``runtime_env`` ``py_modules``), so every node runs this very code; the libraries it uses
    (torch, OpenCV, ...) must be installed there."""
    import tscnn

    options: dict = {"include_dashboard": False, "log_to_driver": False}
    if address not in ("local", "auto"):
        options["runtime_env"] = {"py_modules": [tscnn]}
    return options


@contextlib.contextmanager
def ray_cluster(address: str) -> Iterator[ModuleType]:
    """Joined to the Ray cluster at ``address`` for the block (``local``: a new local instance; ``auto``: the
    cluster running on this machine, else a new local one; any other address: that cluster, with this tscnn
    shipped to its nodes, ``ray_init_options``); a cluster this started is shut down after it, one that was
    already joined (``ray.init`` called before) is left as it was."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        options = ray_init_options(address)
        if address == "auto":
            try:
                ray.init(address="auto", **options)
            except ConnectionError:
                ray.init(address="local", **options)
        else:
            ray.init(address=address, **options)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


class RayBackend(FoldBackend):
    """Fold jobs as Ray tasks on a cluster (``ray.init(address=...)``; ``local`` starts a new local instance,
    ``auto`` joins the cluster running on this machine or starts a local one). Records come back to this
    process, which writes them: the cluster needs no shared filesystem; a cluster given by its address gets
    this tscnn shipped with the job (``ray_init_options``), its nodes need only the libraries. Ray's own task
    retries are off: the shared loop retries once and names what fails twice.

    CPU threads per fold (Ray's ``num_cpus``): ``config.threads`` when set, else the cluster's CPUs shared
    among ``jobs`` (when > 1) or among the pending folds, at most one node's CPUs. With ``device cuda``
    each fold takes one CPU and 1 / ``jobs`` of a GPU, so ``jobs`` folds share each GPU.
    """

    parallel = True
    capacity = 1 << 30

    def __init__(self, context: FoldContext, address: str, jobs: int = 1, pending: int = 1) -> None:
        import_ray()
        self.context, self.address, self.jobs, self.pending = context, address, jobs, pending
        self.session = contextlib.ExitStack()

    def __enter__(self) -> RayBackend:
        ray = self.session.enter_context(ray_cluster(self.address))
        try:
            self._plan(ray)
        except BaseException:
            self.session.close()
            raise
        return self

    def _plan(self, ray: ModuleType) -> None:
        """Threads and GPU share per fold from the cluster's resources; the prepared data put once."""
        config = self.context.config
        total = int(ray.cluster_resources().get("CPU", 1))
        node_cpus = max([int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")] or [total]) or 1
        if config.device.startswith("cuda"):
            if not ray.cluster_resources().get("GPU"):
                raise ValueError(f"device {config.device!r}, but the Ray cluster ({self.address}) has no GPU")
            self.threads, gpus = config.threads or 1, 1.0 / max(1, self.jobs)
        else:
            share = self.jobs if self.jobs > 1 else min(self.pending, total)
            self.threads, gpus = config.threads or max(1, min(node_cpus, total // max(1, share))), 0.0
        if self.threads > node_cpus:
            raise ValueError(f"threads {self.threads}: no node of the Ray cluster ({self.address}) has that many CPUs "
                             f"(at most {node_cpus})")
        self.task = ray.remote(_ray_fold).options(num_cpus=self.threads, num_gpus=gpus, max_retries=0)
        self.data = ray.put(self.context)
        self.description = f"Ray {self.address}: {self.threads} thread{'s' if self.threads > 1 else ''} per fold"

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def submit(self, job: FoldJob) -> Future:
        return self.task.remote(self.data, job, self.threads).future()


def fold_backend(context: FoldContext, jobs: int = 1, ray: str | None = None, progress: bool = False,
                 pending: int = 1) -> FoldBackend:
    """The backend for ``jobs`` / ``ray``: a Ray cluster when an address is given, else worker processes when
    ``jobs`` > 1 and there is more than one fold to train, else this process."""
    if ray:
        return RayBackend(context, ray, jobs, pending)
    if jobs > 1 and pending > 1:
        return ProcessBackend(context, jobs)
    return SequentialBackend(context, progress)


def _failure(error: BaseException) -> str:
    cause = getattr(error, "cause", None)  # a Ray task error carries the worker's exception
    return one_line(cause if isinstance(cause, BaseException) else error, 300)


def run_fold_jobs(pending: list[FoldJob], config: Config, prepared: Prepared, labels: np.ndarray,
                  num_classes: int, progress: bool, jobs: int = 1, ray: str | None = None,
                  backend: FoldBackend | None = None) -> list[str]:
    """Train every pending fold and save each record as soon as it is done, on one backend: this process,
    ``jobs`` worker processes (threads split between them), or a Ray cluster (``ray``: its address), or
    the ``backend`` given. A fold that fails in a worker is tried once more; what still fails is returned
    by name, never dropped silently. Each fold's result depends only on its seed and fold (and the thread
    count), so the order, the backend and the number of workers do not change the predictions."""
    if not pending:
        return []
    context = FoldContext(config, prepared, labels, num_classes)
    backend = backend or fold_backend(context, jobs, ray, progress, len(pending))
    failed: list[str] = []
    queue = deque((job, 1) for job in pending)
    with backend:
        # "folds k/N [elapsed<time left]" over every backend; in process each fold's epoch bar sits below it.
        bar = tqdm(total=len(pending), desc=f"folds ({backend.description})", unit="fold",
                   disable=bars_disabled(progress))
        running: dict[Future, tuple[FoldJob, int]] = {}
        while queue or running:
            while queue and len(running) < backend.capacity:
                job, attempt = queue.popleft()
                running[backend.submit(job)] = (job, attempt)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job, attempt = running.pop(future)
                try:
                    record = future.result()
                except Exception as err:  # noqa: BLE001 - retried once, then reported by name
                    if attempt == 1:
                        queue.append((job, 2))
                    else:
                        failed.append(f"fold {job.fold.test_subject} of seed {job.seed} failed twice: "
                                      f"{_failure(err)}")
                    continue
                _save_record(job.path, record)
                bar.update()
        bar.close()
    return failed


def fold_predictions(record: dict, table: pd.DataFrame, seed: int, classes: tuple[str, ...]) -> pd.DataFrame:
    """Per-clip prediction rows of a finished fold: the honest prediction, its class probabilities, and
    the leaky shadow's prediction (the epoch with the best test accuracy)."""
    rows = table.iloc[record["rows"]]
    proba = np.asarray(record["proba"])
    out = rows[["dataset", "subject", "clip", "emotion", "label"]].copy()
    out["pred"] = proba.argmax(1)
    out["leaky_pred"] = np.asarray(record["leaky_proba"]).argmax(1)
    for c, name in enumerate(classes):
        out[f"p_{name}"] = proba[:, c]
    out["seed"] = seed
    out["fold"] = record["test_subject"]
    return out


def check_stored_fold(path: Path, fold: Fold, table: pd.DataFrame, seed: int) -> dict:
    """A saved fold's record, refused when it learned from other subjects than this run's fold would (the fold
    rule changed since it was saved): its predictions would be pooled with the new folds' unnoticed."""
    stored = json.loads(path.read_text())
    subjects = table["subject"].astype(str)
    for part, rows in (("val_subjects", fold.val), ("train_subjects", fold.train)):
        now = sorted(set(subjects.iloc[rows]))
        if part in stored and sorted(map(str, stored[part])) != now:
            raise ValueError(f"{path}: seed {seed}, fold {fold.test_subject} was saved with {part} "
                             f"{stored[part]}, but this run's fold has {now}; the folds are drawn differently "
                             "now: write to another --out folder, or move this one away")
    return stored


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
    check_streams(db.table, config.streams)
    check_or_store_run(config, out, db.table, allow_code_change)
    prepared = prepare(db.table, PrepSettings.from_config(config), cache_dir, progress=progress, streams=config.streams)
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
        atomic_write_text(out / "run_info.json", json.dumps({
            "code_version": code_version(), "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpu": cpu_name(), "threads": torch.get_num_threads(),
            "bf16": Trainer(config, num_classes, 0).autocast, "device": config.device, "seeds": list(config.seeds),
            "jobs": jobs, "ray": ray,
        }, indent=2))
    return ExperimentResult(out, predictions, metrics, complete)


def cpu_name() -> str:
    """The CPU's model name (what machine the timings and bf16 figures come from)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


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
        "protocol": ("leave-one-subject-out" if config.protocol == "loso" else
                     f"cross-database: train {'+'.join(config.train_datasets)}, test {'+'.join(config.test_datasets)}")
        + (f", learning curve: each fold learns from a share {config.train_fraction:g} of its training subjects"
           if config.train_fraction < 1 else ""),
        **({"fusion": "each clip's class probabilities are the mean of the network's and the linear floor's "
                      "(fitted on the same training clips); the fold records keep both members' probabilities"}
           if config.fuse_linear else {}),
        "selection": config.selection, "leaky": config.leaky,
        "f1": "UF1 = macro F1 over classes present, on predictions pooled over all folds; fold_mean_f1 = the mean "
              "over folds of each fold's macro F1 (classes present in that fold), the other reading of a 'mean F1'",
        "mean_std_over_seeds": over_seeds(list(per_seed.values()), _SEED_METRICS),
        "per_seed": per_seed, "quirks": db.quirks, "left_out": db.left_out,
        **({"per_dataset_mean_std_over_seeds": per_dataset} if per_dataset else {}),
        "seed_ensemble": evaluate_predictions(seed_ensemble(predictions), num_classes),
        "leaky_shadow": {
            "what": "the same training runs, each fold's epoch chosen by its best test-subject accuracy "
                    "(the common leaky practice); reported to measure the inflation, never used",
            "mean_std_over_seeds": over_seeds(list(leaky.values())),
            **({"per_dataset_mean_std_over_seeds": leaky_per_dataset} if leaky_per_dataset else {}),
        },
    }


def default_out(config: Config, kind: str = "results") -> Path:
    """Where a run writes unless told: ``results/<dataset>-<model>-<streams>[-k<blocks>]-<preset>[-LEAKY]``."""
    parts = [config.dataset, config.model, "-".join(config.streams)]
    if "ls" in config.streams:
        parts.append(f"k{config.blocks}")
    if config.protocol == "cross":
        parts.append(f"{'+'.join(config.train_datasets)}-to-{'+'.join(config.test_datasets)}")
    if config.train_fraction < 1:
        parts.append(f"train{config.train_fraction:g}")
    if config.fuse_linear and not PRESETS.get(config.preset, {}).get("fuse_linear"):  # the preset's name says it
        parts.append("fused-linear")
    return Path(kind) / "-".join([*parts, config.preset, *(["LEAKY"] if config.leaky else [])])


def run_and_report(config: Config, out: str | Path | None = None, cache_dir: str | Path | None = None,
                   max_new_folds: int | None = None, allow_code_change: bool = False,
                   progress: bool = True, jobs: int = 1,
                   ray: str | None = None) -> tuple[ExperimentResult, Path | None]:
    """What ``tscnn run`` does: check the Config, run (or resume) it, and write the report when complete."""
    from tscnn.report import write_report

    check_config(config, local_device=not ray)
    if ray:
        import_ray()
    database = config_database(config)
    result = run_experiment(config, out or default_out(config), cache_dir, database=database, progress=progress,
                            max_new_folds=max_new_folds, allow_code_change=allow_code_change, jobs=jobs,
                            ray=ray)
    report = write_report(result, config, database.table) if result.complete else None
    return result, report


DEMO_DATA_STAMP = "tscnn-synth.json"


def ensure_demo_data(data: str | Path, data_seed: int = 0) -> Path:
    """The demo's synthetic database: generated when absent; an error when the folder holds another seed's."""
    from tscnn.synth import SynthSettings, write_database
    from tscnn.synth.database import CASME2_CODING

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
    if config.model != "tscnn" and tuple(config.streams) != spec.streams:
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
    if config.scale_flow and not config.centre_flow:
        raise ValueError("scale_flow divides the centred flow maps: give --centre-flow with --scale-flow")
    if config.fuse_linear and spec.kind != "network":
        raise ValueError(f"fuse_linear averages a network's probabilities with the linear floor's; model "
                         f"{config.model} is a features model (run --model linear for the floor alone)")


@writes_results_folder()
def train_final_model(config: Config, out: str | Path, cache_dir: str | Path | None = None,
                      database: Database | None = None, progress: bool = True) -> Path:
    """One model on every subject of the database, for prediction on new clips (``tscnn predict``).

    Early stopping uses held-out subjects as in LOSO (``val_fraction``); there is no test subject,
    so this model has no evaluation figure of its own: LOSO (``tscnn run``) measures the recipe.
    """
    from tscnn.models.linear import floor_tensors
    from tscnn.predict import save_model
    from tscnn.protocols import validation_subjects

    if get_model(config.model).kind != "network":
        raise ValueError(f"model {config.model!r} is a features model: it is fitted per LOSO fold (tscnn run), "
                         "not saved for prediction; train a network (tscnn, ststnet, offapexnet)")
    if config.train_fraction < 1:
        raise ValueError(f"train_fraction {config.train_fraction} draws a share of each LOSO fold's training "
                         "subjects (a learning curve, tscnn run); the final model learns from every subject")
    if config.threads:
        torch.set_num_threads(config.threads)
    db = database or config_database(config)
    prepared = prepare(db.table, PrepSettings.from_config(config), cache_dir, progress=progress,
                       streams=config.streams)
    subjects = prepared.table["subject"].astype(str).to_numpy()
    val_subjects = validation_subjects(sorted(set(subjects)), config.val_fraction,
                                       np.random.default_rng([config.seeds[0], 17]))
    val = np.flatnonzero(np.isin(subjects, val_subjects))
    train = np.flatnonzero(~np.isin(subjects, val_subjects))
    arrays = {s: prepared.arrays[s] for s in config.streams}
    labels = prepared.table["label"].to_numpy()
    trainer = Trainer(config, len(db.classes), seed=config.seeds[0])
    result = trainer.fit(arrays, labels, train, val, desc="final model", progress=progress)
    meta = {"database": db.name, "clips": int(len(db.table)), "train_subjects": sorted(set(subjects[train])),
            "val_subjects": val_subjects, "chosen_epoch": result.chosen_epoch, "code_version": code_version(),
            "history": result.history}
    # --fuse-linear: the floor learns from every clip the network saw (as in each LOSO fold) and travels with it.
    floor = floor_tensors(fit_floor(arrays, labels, np.sort(np.concatenate([train, val])))[0]) \
        if config.fuse_linear else None
    return save_model(Path(out) / "model.pt", result.model, config, db.classes, meta, floor)
