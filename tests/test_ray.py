"""Folds on a Ray cluster (``--ray``): a local Ray instance gives the sequential run's pooled predictions,
resumes like it, and names a fold that fails twice; without ray installed, ``--ray`` is a one-line error."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from test_protocols_and_recipes import good_and_broken_fold_jobs, learnable_folder

from tscnn import backends
from tscnn.cli import main
from tscnn.runner import config_for, run_experiment


@pytest.fixture(scope="module")
def flows(tmp_path_factory):
    return learnable_folder(tmp_path_factory.mktemp("flows"))


@pytest.fixture(scope="module")
def local_ray():
    """A small local Ray instance for the module (2 CPUs, no dashboard, a small object store)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 1024 ** 2, log_to_driver=False,
             configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_sequential_predictions_and_resumes(local_ray, flows, tmp_path):
    config = replace(config_for("ststnet", dataset="flowfolder", root=str(flows), classes="all", lr=5e-3,
                                max_epochs=3, batch_size=8, seeds=(0, 1)), threads=1)
    sequential = run_experiment(config, tmp_path / "one", progress=False)
    # Half the folds on Ray, then the rest: an interrupted Ray run resumes from its saved folds.
    part = run_experiment(config, tmp_path / "ray", progress=False, ray="auto", max_new_folds=5)
    assert not part.complete and len(list((tmp_path / "ray").glob("seed_*/folds/*.json"))) == 5
    on_ray = run_experiment(config, tmp_path / "ray", progress=False, ray="auto")
    assert on_ray.complete
    pd.testing.assert_frame_equal(sequential.predictions, on_ray.predictions)
    assert local_ray.is_initialized()  # a cluster joined before is left running


def test_ray_names_a_fold_that_fails_twice(local_ray, flows, tmp_path):
    """A fold whose training rows hold one class (the classifier cannot fit) fails on Ray, is tried once
    more, and is named; the other fold's record comes back and is saved."""
    config, prepared, labels, jobs = good_and_broken_fold_jobs(flows, tmp_path, threads=1)
    failed = backends.run_fold_jobs(jobs, config, prepared, labels, 3, False, ray="auto")
    assert len(failed) == 1 and failed[0].startswith("fold broken of seed 0 failed twice: ")
    assert "\n" not in failed[0] and "class" in failed[0]  # the worker's own one-line reason
    assert (tmp_path / "good.json").exists() and not (tmp_path / "b.json").exists()


def test_missing_ray_is_a_one_line_error_before_any_work(flows, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out = tmp_path / "never"
    code = main(["run", "--dataset", "flowfolder", "--root", str(flows), "--model", "linear", "--out", str(out),
                 "--ray", "local"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "pip install 'tscnn[ray]'" in err and not out.exists()


def test_a_table_on_ray_is_the_sequential_table(local_ray, synth_db, tmp_path):
    """`tscnn table streams --ray`: every variant's folds go to the cluster (one session for the grid), and the
    table holds the same figures as the run in this process."""
    import json

    from test_tables import subset

    from tscnn.config import from_preset
    from tscnn.tables import run_table

    db = subset(synth_db, 2)
    config = replace(from_preset("demo-sgd", dataset="samm", root="unused", flow="dis", max_epochs=1,
                                 selection="fixed", val_fraction=0.0), threads=1)
    run_table("streams", config, tmp_path / "here", tmp_path / "cache", database=db, progress=False)
    run_table("streams", config, tmp_path / "ray", tmp_path / "cache", database=db, progress=False, ray="auto")
    here, on_ray = (json.loads((tmp_path / d / "table.json").read_text()) for d in ("here", "ray"))
    assert list(on_ray["rows"]) == ["SS", "LS", "DT", "SS+LS", "LS+DT", "DT+SS", "TSCNN"]
    assert on_ray["rows"] == here["rows"]
    for variant in ("ss", "tscnn"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "here" / variant / "predictions.csv"),
                                      pd.read_csv(tmp_path / "ray" / variant / "predictions.csv"))


def test_a_cluster_given_by_address_gets_this_tscnn_shipped(tmp_path):
    """For a cluster at an address (other machines), ray.init ships this tscnn with the job: a task on a fresh
    Ray instance started with those options imports tscnn from Ray's package store, not from this checkout.
    ``local`` and ``auto`` (this machine) ship nothing."""
    import subprocess

    import tscnn
    from tscnn.backends import ray_init_options

    pytest.importorskip("ray")
    assert "runtime_env" not in ray_init_options("local") and "runtime_env" not in ray_init_options("auto")
    assert ray_init_options("10.0.0.1:6379")["runtime_env"] == {"py_modules": [tscnn]}
    script = tmp_path / "ship.py"
    script.write_text(
        "import ray\n"
        "from tscnn.backends import ray_init_options\n"
        "ray.init(address='local', num_cpus=1, object_store_memory=80 * 1024 ** 2, configure_logging=False,\n"
        "         **ray_init_options('10.0.0.1:6379'))\n"
        "@ray.remote\n"
        "def where():\n"
        "    import tscnn\n"
        "    from tscnn.models import MODELS\n"
        "    return tscnn.__file__, sorted(MODELS)\n"
        "path, models = ray.get(where.remote())\n"
        "print(path)\n"
        "print(','.join(models))\n"
        "ray.shutdown()\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    path, models = done.stdout.strip().splitlines()[-2:]
    assert "py_modules_files" in path and not path.startswith(str(Path(tscnn.__file__).parents[1]))
    from tscnn.models import MODELS

    assert models.split(",") == sorted(MODELS)  # every model of this checkout, lbptop included
    assert "lbptop" in models.split(",")
