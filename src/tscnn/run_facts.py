"""The facts of a run: the code that made it, the data it saw (a fingerprint of the clip table), the
machine it ran on, and the result it produced; a results folder stores them so a resumed run can refuse
other settings, another clip table or another code version."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from tscnn import __version__
from tscnn.config import Config
from tscnn.results_folder import atomic_write_text
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
    other settings, another clip table, other contents of the pre-trained weights file it names, or (unless
    allowed) another code version."""
    path, stamp = out / "config.json", out / "fingerprint.json"
    current = {"table": table_fingerprint(table), "clips": int(len(table)), "code_version": code_version()}
    if config.pretrained:  # the path is a setting; what it held decides the results too
        current["pretrained_sha1"] = _file_digest(config.pretrained).decode()
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
            if before.get("pretrained_sha1", current.get("pretrained_sha1")) != current.get("pretrained_sha1"):
                raise ValueError(f"{out} was made from other contents of the pre-trained weights file "
                                 f"{config.pretrained}: its folds would be stale; use another --out or delete it")
            if before["code_version"] != current["code_version"] and not allow_code_change:
                raise ValueError(f"{out} was made by code {before['code_version']}, this is {current['code_version']}; "
                                 "use another --out, delete it, or allow resuming across code versions "
                                 "(--resume-any-code) if the change cannot alter results")
            config.save(path)  # the seeds of the latest run
            return
    out.mkdir(parents=True, exist_ok=True)
    config.save(path)
    atomic_write_text(stamp, json.dumps(current, indent=2))


def cpu_name() -> str:
    """The CPU's model name (what machine the timings and bf16 figures come from)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(config: Config, num_classes: int, jobs: int = 1, ray: str | None = None) -> dict:
    """What machine and software a run's timings and bf16 figures come from (``run_info.json``)."""
    return {
        "code_version": code_version(), "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "cpu": cpu_name(), "threads": torch.get_num_threads(),
        "bf16": Trainer(config, num_classes, 0).autocast, "device": config.device, "seeds": list(config.seeds),
        "jobs": jobs, "ray": ray,
    }
