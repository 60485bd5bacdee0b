"""docs/api_example.py runs end to end (database -> LOSO -> final model -> prediction on frames in memory)."""

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "api_example.py"


def test_api_example_prints_the_predicted_class(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    done = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    classes = ("disgust", "happiness", "repression", "surprise", "others")
    predicted = [line for line in done.stdout.splitlines() if ": predicted " in line]
    assert len(predicted) == 1 and predicted[0].rsplit(" ", 1)[1] in classes
    assert (tmp_path / "api_example" / "results" / "report.html").is_file()
    assert (tmp_path / "api_example" / "model" / "model.pt").is_file()


def test_import_tscnn_stays_light():
    code = "import sys, tscnn; print(sorted(m for m in ('torch', 'cv2', 'pandas') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
