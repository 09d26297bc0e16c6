#!/usr/bin/env python3
"""Module cycles in a crate: which top-level modules use which (`crate::X`
paths outside comments), and every cycle among them.

Usage: scripts/module-cycles.py [SRC_DIR]   (default: node/src)
Exits 1 when there is a cycle. A module is a top-level file or folder of the
crate (`node.rs` and `node/` are both `node`); `lib.rs` and `main.rs` are left out.
"""
import re
import sys
from pathlib import Path

src = Path(sys.argv[1] if len(sys.argv) > 1 else "node/src")


def module_of(path: Path) -> str | None:
    rel = path.relative_to(src)
    if len(rel.parts) == 1:
        stem = rel.stem
        return None if stem in ("lib", "main") else stem
    return rel.parts[0]


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def used_modules(text: str) -> set[str]:
    used = set()
    for match in re.finditer(r"\bcrate::(\{[^}]*\}|\w+)", text):
        group = match.group(1)
        if group.startswith("{"):
            used.update(re.findall(r"(?:^|[{,])\s*(\w+)", group))
        else:
            used.add(group)
    return used


modules = {m for p in src.rglob("*.rs") if (m := module_of(p))}
edges: dict[str, set[str]] = {m: set() for m in modules}
for path in sorted(src.rglob("*.rs")):
    module = module_of(path)
    if module is None:
        continue
    for used in used_modules(strip_comments(path.read_text())):
        if used in modules and used != module:
            edges[module].add(used)

for module in sorted(edges):
    print(f"{module} -> {', '.join(sorted(edges[module])) or '(nothing)'}")

# Strongly connected components (Tarjan); any with two or more modules is a cycle.
index, low, stack, on_stack, sccs, counter = {}, {}, [], set(), [], [0]


def visit(v: str) -> None:
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on_stack.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        scc = []
        while True:
            w = stack.pop()
            on_stack.discard(w)
            scc.append(w)
            if w == v:
                break
        sccs.append(sorted(scc))


for v in sorted(edges):
    if v not in index:
        visit(v)
cycles = [scc for scc in sccs if len(scc) > 1]
if cycles:
    for scc in cycles:
        print("cycle among:", ", ".join(scc))
        for a in scc:
            for b in sorted(edges[a] & set(scc)):
                print(f"  {a} -> {b}")
    sys.exit(1)
print("no cycles")
