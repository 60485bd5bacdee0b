"""Writers of tiny clip folders for the tests: an ``index.csv`` of clip keys beside one file per clip."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

Clip = tuple[str, str, str, int, str]  # dataset, subject, clip, label, label name


def write_clip_index(root: Path, clips: Iterable[Clip], write_files: Callable[[str, str, int], dict[str, str]]) -> Path:
    """Write each clip's files with ``write_files(subject, clip, label)`` (it returns their index columns, paths
    relative to ``root``) and the index that names them; the layout of a flow folder and of megc2019-apex224."""
    rows = []
    for dataset, subject, clip, label, name in clips:
        keys = {"dataset": dataset, "subject": subject, "clip": clip, "label": label, "label_name": name}
        rows.append({**keys, **write_files(subject, clip, label)})
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "index.csv", index=False)
    return root
