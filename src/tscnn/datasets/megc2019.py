"""The MEGC2019 composite: CASME II + SAMM + SMIC-HS in 3 classes (442 clips, 68 subjects).

Negative = CASME II disgust + repression, SAMM Anger, Contempt, Disgust, Fear, Sadness, SMIC
negative; positive = happiness / positive; surprise = surprise. CASME II's sub04/EP12_01f and
sub05/EP09_05f are left out, as in the challenge's list. Subject ids differ across the three
databases (sub01, 006, s01), so leave-one-subject-out groups by ``subject`` over all 68.

``root`` is either a folder holding the three databases in subfolders whose names say which is
which (``CASME2``/``CASME_II``..., ``SAMM``..., ``SMIC``...) or an explicit list
``casme2=PATH,samm=PATH,smic=PATH``; ``coding`` may name spreadsheets the same way.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from tscnn.datasets.base import TABLE_COLUMNS, Database, DatasetError, database_folder
from tscnn.datasets.casme2 import read_casme2
from tscnn.datasets.samm import read_samm
from tscnn.datasets.smic import read_smic

CLASSES = ("negative", "positive", "surprise")
PARTS = {"casme2": read_casme2, "samm": read_samm, "smic": read_smic}
FOLDER_NAMES = {"casme2": re.compile(r"casme.?(2|ii)", re.I), "samm": re.compile(r"samm", re.I),
                "smic": re.compile(r"smic", re.I)}


def parse_parts(spec: str | Path | None, what: str) -> dict[str, str]:
    """``casme2=A,samm=B,smic=C`` -> {"casme2": "A", ...}; anything without '=' gives {}."""
    if spec is None or "=" not in str(spec):
        return {}
    parts = {}
    for item in str(spec).split(","):
        name, _, path = item.partition("=")
        if name.strip() not in PARTS:
            raise DatasetError(f"{what} {spec!r}: unknown part {name.strip()!r}; expected {sorted(PARTS)}")
        parts[name.strip()] = path.strip()
    return parts


def find_parts(root: Path) -> dict[str, str]:
    """The three database folders inside ``root``, recognised by name."""
    found = {}
    for part, pattern in FOLDER_NAMES.items():
        matches = sorted(p for p in root.iterdir() if p.is_dir() and pattern.search(p.name)) if root.is_dir() else []
        if len(matches) != 1:
            raise DatasetError(f"{root}: expected one {part} folder (name matching {pattern.pattern!r}), "
                               f"found {[m.name for m in matches]}; or pass casme2=PATH,samm=PATH,smic=PATH")
        found[part] = str(matches[0])
    return found


def combine(parts: list[Database], name: str = "megc2019") -> Database:
    """One database from several 3-class ones: labels re-indexed on the composite's class order."""
    tables = []
    for db in parts:
        unknown = set(db.classes) - set(CLASSES)
        if unknown:
            raise DatasetError(f"{db.name}: classes {sorted(unknown)} are not in the composite's {CLASSES}")
        t = db.table.copy()
        t["label"] = [CLASSES.index(e) for e in t["emotion"]]
        tables.append(t)
    table = pd.concat(tables, ignore_index=True)[TABLE_COLUMNS]
    shared = table.groupby("subject")["dataset"].nunique()
    if (shared > 1).any():
        raise DatasetError(f"subject ids shared across databases: {list(shared[shared > 1].index)}")
    quirks = [f"[{db.name}] {q}" for db in parts for q in db.quirks]
    root = Path(parts[0].root).parent if parts else Path(".")
    left_out = [(f"[{db.name}] {clip}", emotion) for db in parts for clip, emotion in db.left_out]
    return Database(name, root, table, CLASSES, quirks, left_out)


def read_megc2019(root: str | Path, coding: str | None = None, classes: str = "3class", check_frames: bool = True,
                  apex_fallback: str = "spotter") -> Database:
    """Read the composite (classes must be "3class"; it is the only set MEGC2019 defines)."""
    if classes not in ("3class", "megc2019"):
        raise DatasetError(f"the MEGC2019 composite has only the 3-class set, not {classes!r}")
    roots = parse_parts(root, "root") or find_parts(database_folder(root, "MEGC2019 database"))
    missing = sorted(set(PARTS) - set(roots))
    if missing:
        raise DatasetError(f"MEGC2019 root {root!r}: missing parts {missing}")
    codings = parse_parts(coding, "coding")
    parts = []
    for part, reader in PARTS.items():
        kwargs = {"check_frames": check_frames, "apex_fallback": apex_fallback}
        if part != "smic":
            kwargs["coding"] = codings.get(part)
        parts.append(reader(roots[part], classes="megc2019", **kwargs))
    return combine(parts)
