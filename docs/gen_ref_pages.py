"""Generate one API reference page per module of ``src/tscnn`` (run by mkdocs-gen-files at build time).

The pages are not committed: every module found under ``src/tscnn`` gets a page, so a module that is
added, split or renamed appears in the reference without editing a list.
"""

from __future__ import annotations

from pathlib import Path

import mkdocs_gen_files

root = Path(__file__).resolve().parent.parent
src = root / "src"
nav = mkdocs_gen_files.Nav()

for path in sorted((src / "tscnn").rglob("*.py")):
    module_path = path.relative_to(src).with_suffix("")
    parts = tuple(module_path.parts)
    if parts[-1] == "__main__" or any(part.startswith("_") and part != "__init__" for part in parts):
        continue
    doc_path = Path("reference", *parts).with_suffix(".md")
    if parts[-1] == "__init__":
        parts = parts[:-1]
        doc_path = doc_path.with_name("index.md")
    nav[parts] = doc_path.relative_to("reference").as_posix()
    with mkdocs_gen_files.open(doc_path, "w") as fd:
        fd.write(f"::: {'.'.join(parts)}\n")
    mkdocs_gen_files.set_edit_path(doc_path, path.relative_to(root))

with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as nav_file:
    nav_file.writelines(nav.build_literate_nav())
