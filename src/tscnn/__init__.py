"""tscnn: the three-stream CNN for micro-expression recognition, with honest LOSO evaluation.

The Python API is three functions, ``load_database``, ``run`` and ``load_model``; they import the
heavy modules (torch, OpenCV, pandas) only when called, so ``import tscnn`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tscnn.config import Config
    from tscnn.datasets import Database
    from tscnn.predict import SavedModel
    from tscnn.run_facts import ExperimentResult

__version__ = "0.1.0"

__all__ = ["__version__", "load_database", "load_model", "run"]


def load_database(name: str, root: str | Path, coding: str | None = None, classes: str | None = None,
                  apex_fallback: str = "spotter", check_frames: bool = True) -> Database:
    """A database read as distributed (``casme2``, ``samm``, ``smic``, ``casme3``, ``mmew``, ``megc2019``,
    ``flowfolder``): its clip table, class names and the quirks found; see ``tscnn.datasets``."""
    from tscnn.datasets import load_database as load

    return load(name, str(root), coding, classes, apex_fallback, check_frames)


def run(config: Config | None = None, /, *, out: str | Path | None = None, cache_dir: str | Path | None = None,
        progress: bool = True, max_new_folds: int | None = None, **settings: Any) -> ExperimentResult:
    """What ``tscnn run`` does: run (or resume) an evaluation and write its report; returns the result
    (``result.metrics``, ``result.predictions``, ``result.out`` holding ``report.md`` / ``report.html``).

    Give a ``Config``, or keyword settings for ``runner.config_for`` (``model``, ``preset``,
    ``dataset``, ``root``, ``streams``, ``seeds``, ...); settings given with a Config replace its fields.
    """
    from dataclasses import replace

    from tscnn.app import run_and_report
    from tscnn.runner import config_for

    if config is None:
        config = config_for(**settings)
    elif settings:
        config = replace(config, **settings)
    result, _ = run_and_report(config, out, cache_dir, max_new_folds=max_new_folds, progress=progress)
    return result


def load_model(path: str | Path) -> SavedModel:
    """A model file made by ``tscnn train`` / ``app.train_final_model``, ready to predict on frames
    in memory: ``.predict(frames, onset=None, apex=None, offset=None, cropped=False)`` with ``.classes``
    and ``.card`` (what it was trained on)."""
    from tscnn.predict import load_saved_model

    return load_saved_model(path)
