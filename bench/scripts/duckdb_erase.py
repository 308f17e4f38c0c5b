# The peer side of bench/scripts/erase.sh (docs/benchmarks.md, issue 29): DuckDB rewriting the
# same Parquet files of app_00 without one user, and without one device (each file read,
# filtered, written with zstd and fsynced; no summaries, rollups or dedupe).
#   python3 bench/scripts/duckdb_erase.py /tmp/g10/node
import duckdb, glob, time, os, sys, tempfile
root = sys.argv[1] if len(sys.argv) > 1 else '/tmp/g10/node'
files = sorted(glob.glob(root + '/table/gen-*/segments/app=app_00/*/*.parquet'))
out = tempfile.mkdtemp()
con = duckdb.connect()
con.execute("SET threads=2")
for user, col in [("u0","user_id"),("d17-1","device_id")]:
    t0=time.time(); n=0
    for i,f in enumerate(files):
        r = con.execute(f"SELECT count(*) FROM read_parquet('{f}') WHERE {col} = '{user}'").fetchone()[0]
        if r:
            con.execute(f"COPY (SELECT * FROM read_parquet('{f}') WHERE {col} IS DISTINCT FROM '{user}') TO '{out}/{i}.parquet' (FORMAT parquet, COMPRESSION zstd)")
            fd=os.open(f'{out}/{i}.parquet', os.O_RDONLY); os.fsync(fd); os.close(fd)
            n+=r
    print(f"duckdb rewrite of {len(files)} app_00 files without {col}={user}: {time.time()-t0:.2f} s, {n} rows removed")
import shutil; shutil.rmtree(out)
