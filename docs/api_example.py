"""The Python API end to end on a tiny synthetic database (about half a minute on 2 CPU cores).

    python docs/api_example.py [WORK_DIR]     # writes under WORK_DIR (default: ./api_example)

1. write a 3-subject synthetic CASME II database and read it with ``tscnn.load_database``;
2. evaluate TSCNN leave-one-subject-out with ``tscnn.run`` (the ``demo`` recipe cut to 1 epoch, the
   DT stream only, DIS flow: a smoke run, not a result);
3. train one model on every subject (``app.train_final_model``), load it with
   ``tscnn.load_model`` and predict one clip from frames held in memory.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2

import tscnn
from tscnn.app import train_final_model
from tscnn.datasets.base import list_frames
from tscnn.report import metrics_table
from tscnn.runner import config_for
from tscnn.synth import SynthSettings, write_database


def main(work: Path) -> None:
    data = work / "data"
    write_database(data, SynthSettings(subjects=3, seed=0))
    db = tscnn.load_database("casme2", data)
    print(f"database: {db.name}, {len(db.table)} clips, {db.table.subject.nunique()} subjects, "
          f"classes {', '.join(db.classes)}")

    settings = {"model": "tscnn", "preset": "demo", "dataset": "casme2", "root": str(data), "classes": "5class",
                "streams": ("dt",), "flow": "dis", "max_epochs": 1, "seeds": (0,)}
    result = tscnn.run(out=work / "results", cache_dir=work / "cache", progress=False, **settings)
    print(metrics_table(result.metrics))
    print(f"report: {result.out / 'report.html'}")

    model_file = train_final_model(config_for(**settings), work / "model", work / "cache", database=db,
                                   progress=False)
    model = tscnn.load_model(model_file)
    print(f"model classes: {', '.join(model.classes)}; trained on {model.card['database']} "
          f"({model.card['subjects']} subjects)")

    row = db.table.iloc[0]
    files = list_frames(Path(row.frames_dir))
    numbers = [n for n in sorted(files) if row.onset <= n <= row.offset]
    frames = [cv2.imread(str(files[n]), cv2.IMREAD_GRAYSCALE) for n in numbers]
    # Synthetic frames are already face crops; frames are numbered 0..n-1 in memory.
    prediction = model.predict(frames, apex=numbers.index(int(row.apex)), cropped=True)
    print(f"clip {row['subject']}/{row['clip']} (truth {row['emotion']}): predicted {prediction.predicted}")
    for name, p in sorted(prediction.probabilities.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<12} {p:.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("api_example"))
