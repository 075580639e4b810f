#!/usr/bin/env python3
"""Finds import cycles between the files of each crate under crates/.

A file imports another when it names a module path of its crate (`crate::a::b`, `super::x`,
`self::y`) outside comments. The path resolves to the deepest module that is a file of the crate.
A cycle (a strongly connected group of files) fails the check unless every file in it carries
an `import-cycle:` comment saying why the cycle is wanted.

Usage: deploy/check-import-cycles.py [crates_dir]   (exit 1 when a cycle is found)
"""

import os
import re
import sys

PATH_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*?)\}", re.S)


def strip_comments(text):
    # Unit tests (`#[cfg(test)]`, by convention at the end of a file) are not part of the graph:
    # their `super::` is the file itself.
    text = text.split("#[cfg(test)]", 1)[0]
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return re.sub(r"//[^\n]*", "", text)


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("lib", "main", "mod"):
        rel = rel[:-1]
    return tuple(rel)


def files_of(src):
    modules = {}
    for root, _, names in os.walk(src):
        if "bin" in os.path.relpath(root, src).split(os.sep):
            continue
        for n in names:
            if n.endswith(".rs"):
                p = os.path.join(root, n)
                modules[module_of(src, p)] = p
    return modules


def resolve(modules, here, kind, segs):
    if kind == "crate":
        base = ()
    elif kind == "self":
        base = here
    else:
        base = here[:-1]
    full = base + tuple(segs)
    for n in range(len(full), -1, -1):
        if full[:n] in modules:
            return full[:n]
    return None


def edges_of(modules, here, text):
    out = set()
    for m in GROUP_RE.finditer(text):
        prefix = [s for s in m.group(2).split("::") if s]
        for item in re.split(r"[,{}\s]+", m.group(3)):
            item = item.strip()
            if not item or item == "self":
                segs = prefix
            else:
                segs = prefix + [s for s in item.split("::") if s and s != "*"]
            out.add(resolve(modules, here, m.group(1), segs))
    for m in PATH_RE.finditer(text):
        out.add(resolve(modules, here, m.group(1), [s for s in m.group(2).split("::") if s]))
    out.discard(None)
    out.discard(here)
    # A module that names its own ancestors (lib.rs, a mod.rs) is not an import of them.
    return {d for d in out if d != here[: len(d)] and d != ()}


def sccs(graph):
    index, low, stack, on, result, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            result.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return result


def main():
    crates = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "crates")
    failed = False
    for crate in sorted(os.listdir(crates)):
        src = os.path.join(crates, crate, "src")
        if not os.path.isdir(src):
            continue
        modules = files_of(src)
        graph, allowed = {}, set()
        for mod, path in modules.items():
            raw = open(path, encoding="utf-8").read()
            if "import-cycle:" in raw:
                allowed.add(mod)
            graph[mod] = edges_of(modules, mod, strip_comments(raw))
        for comp in sccs(graph):
            if len(comp) < 2 or all(m in allowed for m in comp):
                continue
            failed = True
            names = sorted(os.path.relpath(modules[m], crates) for m in comp)
            print(f"import cycle in {crate}: " + ", ".join(names))
    if failed:
        print("each file of a cycle must say why with an `import-cycle:` comment, or the cycle must go")
        sys.exit(1)
    print("no import cycles")


if __name__ == "__main__":
    main()
