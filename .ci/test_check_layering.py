#!/usr/bin/env python3
"""The layering check fails on what it must catch: copies docs/architecture.md and
server/src into a temporary tree, then adds (1) an upward import, (2) a module on no floor,
(3) a debt line whose import is gone, and expects check_layering.py --floors-only to fail
naming each; the untouched copy passes."""
import pathlib, shutil, subprocess, sys, tempfile

here = pathlib.Path(__file__).resolve().parent
root = here.parent


def check(tree):
    r = subprocess.run([sys.executable, str(here / "check_layering.py"), "--floors-only", "--root", str(tree)],
                       capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def copy(tmp):
    tree = pathlib.Path(tmp)
    (tree / "docs").mkdir()
    shutil.copy(root / "docs" / "architecture.md", tree / "docs" / "architecture.md")
    shutil.copytree(root / "server" / "src", tree / "server" / "src")
    return tree


failures = []
with tempfile.TemporaryDirectory() as tmp:
    tree = copy(tmp)
    code, out = check(tree)
    if code != 0:
        failures.append(f"the untouched tree fails: {out}")
    # (1) clock.rs (bottom floor) importing http (second floor).
    clock = tree / "server" / "src" / "clock.rs"
    clock.write_text(clock.read_text() + "\n#[allow(unused_imports)]\nuse crate::http::router as _upward;\n")
    code, out = check(tree)
    if code == 0 or "upward import clock -> http" not in out:
        failures.append(f"an upward import clock -> http passed: {out}")
with tempfile.TemporaryDirectory() as tmp:
    tree = copy(tmp)
    (tree / "server" / "src" / "stray.rs").write_text("pub fn f() {}\n")
    code, out = check(tree)
    if code == 0 or "stray is not on a floor" not in out:
        failures.append(f"a module on no floor passed: {out}")
with tempfile.TemporaryDirectory() as tmp:
    tree = copy(tmp)
    doc = tree / "docs" / "architecture.md"
    doc.write_text(doc.read_text().replace("```text server-known-upward\n", "```text server-known-upward\nmetrics -> node\n"))
    code, out = check(tree)
    if code == 0 or "metrics -> node is listed in server-known-upward but gone" not in out:
        failures.append(f"a stale debt line passed: {out}")
with tempfile.TemporaryDirectory() as tmp:
    tree = copy(tmp)
    clock = tree / "server" / "src" / "clock.rs"
    clock.write_text(clock.read_text() + "\n#[allow(unused_imports)]\nuse axum::Json as _Json;\n")
    code, out = check(tree)
    if code == 0 or "clock uses axum below the http floor" not in out:
        failures.append(f"axum below http passed: {out}")
if failures:
    print("\n".join(failures))
    sys.exit(1)
print("layering checker: catches upward imports, axum below http, modules on no floor and stale debt")
