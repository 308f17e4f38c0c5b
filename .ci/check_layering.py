#!/usr/bin/env python3
"""Fails if a workspace crate depends on a crate docs/architecture.md does not allow."""
import json, re, subprocess, sys, pathlib

root = pathlib.Path(__file__).resolve().parent.parent
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
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"layering ok: {len(by_dir)} crates checked against docs/architecture.md")
