"""The guide: the README stays short and its links resolve, the documentation site builds with
``mkdocs build --strict`` (a broken link or a module that fails to document fails the test), and the
tutorial notebook executes from top to bottom."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    # a front page: what it is, the two commands, the results, every variant run on real data in brief, the
    # commands; the rest is the guide's
    assert len(text.splitlines()) <= 200
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert local, "the README links into the guide"
    missing = [t for t in local if t and not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="the documentation packages are in the `test` extra")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", DISABLE_MKDOCS_2_WARNING="true")
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    for page in ("getting-started", "databases", "models", "protocols", "prediction", "submitted-recipe", "results",
                 "design", "tutorial"):
        assert (site / page / "index.html").is_file(), page
    # every module of the package has a reference page, whatever the package's layout is today
    src = ROOT / "src"
    for module in (src / "tscnn").rglob("*.py"):
        parts = module.relative_to(src).with_suffix("").parts
        if any(p.startswith("_") and p != "__init__" for p in parts):
            continue
        page = site.joinpath("reference", *(parts[:-1] if parts[-1] == "__init__" else parts), "index.html")
        assert page.is_file(), f"no API reference page for {'.'.join(parts)}"
    assert "load_database" in (site / "reference" / "tscnn" / "index.html").read_text(encoding="utf-8")


# The recipe that docs/submitted-recipe.md names as submitted: its commands must run exactly that.
SUBMITTED = {"preset": "tscnn-plus-fused", "pretrained": "synthetic-micro", "centre_flow": True, "fuse_linear": True,
             "centre_floor": True, "size": 28}


def test_the_submitted_recipe_page_commands_build_the_submitted_recipe():
    from tscnn.cli import build_parser, check_options, config_from_args

    text = (DOCS / "submitted-recipe.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    runs = [b for b in blocks if b.lstrip().startswith("tscnn run")]
    for block in runs:  # one command each: every line but the last continues it, as a shell reads it
        lines = block.strip().splitlines()
        assert all(line.endswith("\\") for line in lines[:-1]), f"a line of this command does not continue it:\n{block}"
    commands = [" ".join(b.replace("\\\n", " ").split()) for b in runs]
    cross = re.search(r"add\s+`(--protocol cross[^`]*)`", text).group(1)
    commands.append(commands[-1] + " " + cross)
    assert len(commands) == 3
    configs = []
    for command in commands:
        args = build_parser().parse_args(command.split()[1:])
        check_options(args)
        configs.append(config_from_args(args))
    for config in configs:
        assert {k: getattr(config, k) for k in SUBMITTED} == SUBMITTED
        assert config.model == "tscnn" and config.seeds == (0, 1, 2, 3, 4)
        assert config.streams == ("ss", "ls", "dt")
    frames, loso, across = configs
    assert frames.dataset == "casme2" and frames.classes == "5class" and frames.protocol == "loso"
    assert loso.dataset == "flowfolder" and loso.apex_root == "APEX" and loso.classes == "all"
    assert across.protocol == "cross" and across.train_datasets == ("casme2",) and across.test_datasets == ("smic",)


def test_tutorial_notebook_executes(tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="the notebook packages are in the `test` extra")
    from nbclient import NotebookClient

    path = DOCS / "tutorial.ipynb"
    assert path.stat().st_size < 200_000, "keep the committed notebook's outputs small"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    texts = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "complete: True" in texts
    assert "predicted:" in texts
    assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", [])), "the tutorial draws its confusion matrix"
