"""Converts the usage-line pages of a pcrecon raw archive to one zstd Parquet file with DuckDB,
as an analyst would, and prints rows, seconds and peak RSS as JSON."""

import json
import resource
import sys
import time

import duckdb

raw, out = sys.argv[1], sys.argv[2]
pages = f"{raw}/pages/*consumption_line_items/**/*.json.gz"
started = time.monotonic()
con = duckdb.connect()
con.execute("SET preserve_insertion_order = false")
con.execute(
    f"""COPY (
        SELECT unnest(items, recursive := true)
        FROM read_json('{pages}', format = 'auto', maximum_object_size = 33554432)
    ) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"""
)
elapsed = time.monotonic() - started
rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": rows, "seconds": round(elapsed, 2), "peak_rss_mb": peak_kb // 1024}))
