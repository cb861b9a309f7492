#!/usr/bin/env python3
"""Fails when the modules of a crate import each other in a circle.

    deploy/tests/module-circles.py            # check the element and the launcher
    deploy/tests/module-circles.py --self-test

A module's edges are the sibling modules it names in `crate::a::…`, `super::a::…` or `self::a`
paths (in `use` lines and in code), where `a` is a module of the same crate. Naming an item
of the parent module (`super::FaceRec`, the GObject wrapper that `imp.rs` subclasses in the
gst-plugins-rs layout) is not an edge: the parent declares its children, and that pair is the
layout, not a circle. Tests (`#[cfg(test)] mod tests` to the end of a file) are not counted.

Both crates are free of circles: the element since issue 24's first step, the launcher since its
split into layers (domain, services, cameras, HTTP; see launcher/src/lib.rs). A crate may list
the members of one known circle that is being taken apart (the check then fails only if the
circle grows or a new one appears); both lists are empty, so any circle fails the check.
"""
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# crate source root, and the modules allowed in one known circle (empty: none allowed)
CRATES = {
    "gst-facerec/src": set(),
    "launcher/src": set(),
}

PATH_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def modules(src: Path) -> dict:
    """Module path (`a::b`) -> file, for every .rs file under src except the crate roots."""
    found = {}
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts in (["lib"], ["main"]):
            continue
        if parts[-1] == "mod":
            parts = parts[:-1]
        found["::".join(parts)] = f
    return found


def strip_tests(text: str) -> str:
    m = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod tests", text, re.M)
    return text[: m.start()] if m else text


def strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def edges(mods: dict) -> dict:
    graph = {m: set() for m in mods}
    for name, path in mods.items():
        text = strip_comments(strip_tests(path.read_text()))
        here = name.split("::")
        for kind, rest in PATH_RE.findall(text):
            segs = rest.strip(":").split("::")
            if kind == "crate":
                base = []
            elif kind == "super":
                base = here[:-1]
                while segs and segs[0] == "super":
                    base, segs = base[:-1], segs[1:]
            else:
                base = here
            # The longest module named by the path; an item of the parent is not an edge.
            target = None
            for i in range(len(segs), 0, -1):
                candidate = "::".join(base + segs[:i])
                if candidate in mods:
                    target = candidate
                    break
            if target is None or target == name:
                continue
            # A child naming its own ancestor module's items is the layout, not a circle.
            if name.startswith(target + "::"):
                continue
            graph[name].add(target)
    return graph


def circles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check(src: str, allowed: set) -> list:
    graph = edges(modules(REPO / src))
    problems = []
    for comp in circles(graph):
        members = ", ".join(sorted(comp))
        if allowed and comp <= allowed:
            print(f"{src}: known circle, to be split (issue 24): {members}")
            continue
        back = sorted(f"{a} -> {b}" for a in comp for b in graph[a] if b in comp)
        problems.append(f"{src}: modules import each other in a circle: {members} ({'; '.join(back)})")
    return problems


def self_test():
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        src = Path(d)
        (src / "el").mkdir()
        (src / "el/mod.rs").write_text("mod imp; mod live; pub struct X(imp::X);\n")
        (src / "el/imp.rs").write_text("use super::live::Worker;\nuse super::X;\n")
        (src / "el/live.rs").write_text("// use super::imp::lock;\npub struct Worker;\n")
        assert circles(edges(modules(src))) == [], "the layout alone is not a circle"
        (src / "el/live.rs").write_text("use super::imp::lock;\npub struct Worker;\n")
        assert circles(edges(modules(src))) == [{"el::imp", "el::live"}]
        (src / "el/live.rs").write_text(
            "pub struct Worker;\n#[cfg(test)]\nmod tests {\n    use super::super::imp::lock;\n}\n"
        )
        assert circles(edges(modules(src))) == [], "tests are not counted"
    print("module-circles self-test passed")


if __name__ == "__main__":
    if "--self-test" in sys.argv:
        self_test()
        sys.exit(0)
    problems = [p for src, allowed in CRATES.items() for p in check(src, allowed)]
    for p in problems:
        print(p, file=sys.stderr)
    sys.exit(1 if problems else 0)
