#!/usr/bin/env python3
"""Fails when a test file would never be compiled.

    deploy/tests/tests-listed.py

Cargo discovers `tests/*.rs` (and `tests/NAME/main.rs`) by itself, except in a package with
`autotests = false`: the root package, whose tests live in `gst-facerec/tests/` rather than
`tests/`, lists each as a `[[test]]` by hand. This checks, for every package of the workspace,
that each such file under its test folders is a test target, and that no `[[test]]` names a
file that does not exist. `tests/common/` (helpers shared by the tests) is not a test.
"""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def candidates(folder: Path) -> set:
    """The files cargo would take as tests in `folder`: `*.rs` and `*/main.rs`, not common/."""
    found = {f for f in folder.glob("*.rs")}
    found |= {f for f in folder.glob("*/main.rs") if f.parent.name != "common"}
    return {f.resolve() for f in found}


def main() -> int:
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    problems = []
    for package in meta["packages"]:
        manifest_dir = Path(package["manifest_path"]).parent
        tests = {
            Path(t["src_path"]).resolve()
            for t in package["targets"]
            if "test" in t["kind"]
        }
        for t in tests:
            if not t.exists():
                problems.append(f"{package['name']}: [[test]] {t} does not exist")
        folders = {t.parent for t in tests} | {manifest_dir / "tests"}
        if package["name"] == "gst-facerec":
            folders.add(REPO / "gst-facerec" / "tests")
        for folder in sorted(folders):
            if folder.name != "tests" or not folder.is_dir():
                continue
            for f in sorted(candidates(folder) - tests):
                problems.append(
                    f"{package['name']}: {f.relative_to(REPO)} is never compiled: "
                    f"list it as a [[test]] in {Path(package['manifest_path']).relative_to(REPO)}"
                )
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        counted = sum(
            1 for p in meta["packages"] for t in p["targets"] if "test" in t["kind"]
        )
        print(f"tests-listed: all {counted} test files of {len(meta['packages'])} packages are compiled")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
