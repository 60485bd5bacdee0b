"""Where fold jobs run: in this process, in worker processes on this machine, or on a Ray cluster; one loop
(``run_fold_jobs``) over every backend saves each fold's record as it arrives and retries a failed fold once."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from tqdm import tqdm

from tscnn.config import Config
from tscnn.console import bars_disabled
from tscnn.errors import one_line
from tscnn.fold import FoldContext, FoldJob
from tscnn.preprocessing.prepare import Prepared
from tscnn.results_folder import atomic_write_text


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
