"""Database readers. Each returns a :class:`~tscnn.datasets.base.Database` (clip table + classes + quirks).

Every reader has the signature ``read_x(root, coding=None, classes=..., check_frames=True,
apex_fallback="spotter")``; one module per database. CASME II, SAMM, MMEW and CAS(ME)^3 are
spreadsheet-annotated and share one reader (``sheet.read_sheet_database``), each module giving a
``SheetSpec`` of what differs. ``flowfolder`` reads precomputed onset->apex u, v, strain images
(the MEGC challenge format), which give only the "uvs" stream.
"""

from __future__ import annotations

from collections.abc import Callable

from tscnn.datasets.base import Database
from tscnn.datasets.casme2 import read_casme2
from tscnn.datasets.casme3 import read_casme3
from tscnn.datasets.flowfolder import read_flowfolder, write_flow_folder
from tscnn.datasets.megc2019 import read_megc2019
from tscnn.datasets.mmew import read_mmew
from tscnn.datasets.samm import read_samm
from tscnn.datasets.smic import read_smic
from tscnn.errors import DatasetError

READERS: dict[str, Callable[..., Database]] = {
    "casme2": read_casme2, "samm": read_samm, "smic": read_smic, "casme3": read_casme3, "mmew": read_mmew,
    "megc2019": read_megc2019, "flowfolder": read_flowfolder,
}
# The class set used when none is named: the paper's 5 classes where the paper used the database,
# the set the literature reports most often elsewhere.
DEFAULT_CLASSES = {"casme2": "5class", "samm": "5class", "smic": "3class", "casme3": "3class", "mmew": "6class",
                   "megc2019": "3class", "flowfolder": "all"}


def default_classes(name: str) -> str:
    if name not in READERS:
        raise DatasetError(f"unknown database {name!r}; expected one of {sorted(READERS)}")
    return DEFAULT_CLASSES[name]


def load_database(name: str, root: str, coding: str | None = None, classes: str | None = None,
                  apex_fallback: str = "spotter", check_frames: bool = True) -> Database:
    """Read database ``name`` at ``root`` with the named class set (the database's default when None)."""
    classes = classes or default_classes(name)
    return READERS[name](root, coding=coding, classes=classes, check_frames=check_frames,
                         apex_fallback=apex_fallback)


__all__ = ["DEFAULT_CLASSES", "READERS", "Database", "DatasetError", "default_classes", "load_database",
           "read_casme2", "read_casme3", "read_flowfolder", "read_megc2019", "read_mmew", "read_samm", "read_smic",
           "write_flow_folder"]
