#!/usr/bin/env python3
"""Fails if a workspace crate depends on a crate docs/architecture.md does not allow, or if a
module of server/src imports a module on a higher floor than its own (docs/architecture.md
`server-floors`) beyond the upward edges still listed as debt (`server-known-upward`).

    python3 .ci/check_layering.py [--root DIR]   # DIR: a tree with docs/ and server/src/
"""
import json, os, re, subprocess, sys, pathlib

root = pathlib.Path(__file__).resolve().parent.parent
if "--root" in sys.argv:
    root = pathlib.Path(sys.argv[sys.argv.index("--root") + 1]).resolve()
doc = (root / "docs" / "architecture.md").read_text()

def block(tag):
    m = re.search(r"```text " + tag + r"\n(.*?)```", doc, re.S)
    if not m:
        sys.exit(f"docs/architecture.md has no `{tag}` block")
    rules = {}
    for line in m.group(1).strip().splitlines():
        parts = re.split(r"\s*(?:->|-x)\s*", line.strip(), maxsplit=1)
        name, rest = parts[0], (parts[1] if len(parts) > 1 else "")
        rules[name.strip()] = {x.strip() for x in rest.split(",") if x.strip()}
    return rules

def floors():
    """Module -> floor number (0 = top) from the `server-floors` block."""
    m = re.search(r"```text server-floors\n(.*?)```", doc, re.S)
    if not m:
        sys.exit("docs/architecture.md has no `server-floors` block")
    out = {}
    for i, line in enumerate(m.group(1).strip().splitlines()):
        for name in line.split(","):
            out[name.strip()] = i
    return out


def module_edges(src, axum_users=None):
    """(from, to) pairs of top-level modules of a crate's src/ that `crate::to` names; the
    modules that name `axum` are added to `axum_users`."""
    edges = set()
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = pathlib.Path(dirpath, f)
            top = path.relative_to(src).parts[0].removesuffix(".rs")
            text = path.read_text()
            names = set(re.findall(r"crate::(\w+)", text))
            for group in re.findall(r"crate::\{([^}]*)\}", text):
                names |= {g.strip().split("::")[0] for g in group.split(",") if g.strip()}
            edges |= {(top, n) for n in names if n != top}
            if axum_users is not None and re.search(r"\baxum::", text):
                axum_users.add(top)
    return edges


def check_server_floors(errors):
    src = root / "server" / "src"
    floor = floors()
    debt = block("server-known-upward")
    debt_edges = {(a, b) for a, bs in debt.items() for b in bs}
    mods = {p.name.removesuffix(".rs") for p in src.iterdir() if p.suffix == ".rs" or p.is_dir()}
    for m in sorted(mods - set(floor)):
        errors.append(f"server/src/{m} is not on a floor in docs/architecture.md server-floors")
    seen = set()
    axum_users = set()
    edges = module_edges(src, axum_users)
    http = floor.get("http", 0)
    for m in sorted(axum_users):
        if m in floor and floor[m] > http:
            errors.append(f"server: {m} uses axum below the http floor (HTTP types stay in http/)")
    for a, b in sorted(edges):
        if a not in floor or b not in floor:
            continue
        if floor[b] > floor[a]:
            continue  # downward: allowed
        seen.add((a, b))
        if (a, b) not in debt_edges:
            what = "upward" if floor[b] < floor[a] else "same-floor"
            errors.append(f"server: {what} import {a} -> {b} (floors in docs/architecture.md)")
    for a, b in sorted(debt_edges - seen):
        errors.append(f"server: {a} -> {b} is listed in server-known-upward but gone: delete the line")


if "--floors-only" in sys.argv:
    errors = []
    check_server_floors(errors)
    print("\n".join(errors) or "server floors ok")
    sys.exit(1 if errors else 0)

allowed = block("allowed-edges")
forbidden = block("forbidden-external")
meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"], cwd=root))
by_dir = {}
for p in meta["packages"]:
    by_dir[pathlib.Path(p["manifest_path"]).parent.name] = p
pkg_to_dir = {p["name"]: d for d, p in by_dir.items()}
errors = []
for d, p in by_dir.items():
    if d not in allowed:
        errors.append(f"crate {d}/ is not listed in docs/architecture.md allowed-edges")
        continue
    for dep in p["dependencies"]:
        if dep.get("kind") not in (None, "normal", "build"):
            continue
        name = dep["name"]
        if name in pkg_to_dir:
            target = pkg_to_dir[name]
            if target not in allowed[d]:
                errors.append(f"forbidden edge: {d} -> {target}")
        elif name in forbidden.get(d, set()):
            errors.append(f"forbidden external dependency: {d} -> {name}")
check_server_floors(errors)
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"layering ok: {len(by_dir)} crates and the server's floors checked against docs/architecture.md")
