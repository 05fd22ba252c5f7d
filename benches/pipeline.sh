#!/usr/bin/env bash
# The pipeline benchmark, side by side in one run on this machine:
#   1. pcrecon end to end over HTTP against the emulator (loopback, no latency), keeping the raw pages;
#   2. pcrecon --from-raw on those pages: pcrecon's own work, without the emulator sharing the cores;
#   3. DuckDB (from PyPI) converting the same usage-line pages to one zstd Parquet file;
#   4. pcrecon end to end with --latency-ms on the emulator, against the longest chain of dependent
#      page requests at that latency.
#
# Usage: benches/pipeline.sh            (LINES=1000000 usage rows per month, LATENCY_MS=50)
#        LINES=5000000 benches/pipeline.sh
#        BIN=/path/to/pcrecon benches/pipeline.sh   (another build, e.g. to compare two commits)
# Work files go to $BENCH_DIR (default target/bench); the world is generated once per LINES.
set -euo pipefail

LINES=${LINES:-1000000}
LATENCY_MS=${LATENCY_MS:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-$ROOT/target/bench}
mkdir -p "$WORK"
cd "$WORK"

if [ -z "${BIN:-}" ]; then
    echo "building (release)…" >&2
    cargo build --release --locked --quiet --manifest-path "$ROOT/Cargo.toml"
    BIN=$ROOT/target/release/pcrecon
fi
if [ ! -x venv/bin/python ] || ! venv/bin/python -c 'import duckdb' 2>/dev/null; then
    echo "installing DuckDB into $WORK/venv…" >&2
    python3 -m venv venv
    venv/bin/pip install --quiet duckdb
fi

WORLD=world-$LINES
if [ ! -f "$WORLD/truth.json" ]; then
    echo "generating a world of $LINES usage rows per month…" >&2
    # No wire quirks: DuckDB cannot read members that differ only in case.
    "$BIN" emulator generate --seed 3 --customers 100 --months 1 --usage-rows-per-month "$LINES" \
        --quirk-rate 0 --out "$WORLD" 2>/dev/null
fi

EMULATOR_PID=
stop_emulator() { if [ -n "$EMULATOR_PID" ]; then kill "$EMULATOR_PID" 2>/dev/null || true; wait "$EMULATOR_PID" 2>/dev/null || true; EMULATOR_PID=; fi; }
trap stop_emulator EXIT
start_emulator() { # extra serve flags…
    stop_emulator
    rm -f emulator.out
    "$BIN" emulator serve --world "$WORLD" --listen 127.0.0.1:0 "$@" >emulator.out 2>/dev/null &
    EMULATOR_PID=$!
    for _ in $(seq 1 600); do grep -q "listening on" emulator.out 2>/dev/null && break; sleep 0.1; done
    BASE=$(sed -n 's/^listening on //p' emulator.out | head -1)
}
write_config() { # output dir
    cat >pcrecon.toml <<EOF
[api]
tenant_id = "bench-partner"
client_id = "bench"
authority_url = "$BASE"
base_url = "$BASE"
graph_url = "$BASE/v1.0"
max_in_flight = 4
[output]
dir = "$1"
# The v1 line-item calls: the measured path is the one the table has always measured.
[extract]
api_version = "v1"
EOF
}
# measure NAME COMMAND…: wall, CPU and peak RSS into NAME.time; JSON logs into NAME.log.
measure() {
    local name=$1; shift
    sync # the previous stage's output is written back before this one starts
    PCRECON_CLIENT_SECRET=bench PCRECON_LOG=info /usr/bin/time -f '%e %U %S %M' -o "$name.time" "$@" >"$name.out" 2>"$name.log"
}

rm -rf out-http out-replay out-latency raw duckdb.parquet
echo "1/4 end to end over HTTP…" >&2
start_emulator
write_config out-http
measure http "$BIN" run --config pcrecon.toml --keep-raw raw
echo "2/4 --from-raw…" >&2
write_config out-replay
measure replay "$BIN" run --config pcrecon.toml --from-raw raw
echo "3/4 DuckDB…" >&2
sync
/usr/bin/time -f '%e %U %S %M' -o duckdb.time venv/bin/python "$ROOT/benches/duckdb_convert.py" raw duckdb.parquet >duckdb.out
echo "4/4 end to end with --latency-ms $LATENCY_MS…" >&2
start_emulator --latency-ms "$LATENCY_MS"
write_config out-latency
measure latency "$BIN" run --config pcrecon.toml
stop_emulator

venv/bin/python - "$LATENCY_MS" <<'EOF'
import json, sys

latency = int(sys.argv[1]) / 1000

def timing(name):
    wall, user, system, rss_kb = open(f"{name}.time").read().split()[-4:]
    return float(wall), float(user) + float(system), int(rss_kb) // 1024

def log_event(name, event):
    for line in open(f"{name}.log"):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("fields", {}).get("event") == event:
            return record["fields"]
    return {}

index = [json.loads(l) for l in open("raw/index.jsonl")]
pages = [e for e in index if e["event"] == "page"]
usage = [e for e in pages if "consumption_line_items" in e["dataset"]]
usage_rows = sum(e["items"] for e in usage)
usage_mb = sum(e["bytes"] for e in usage) / 1e6
all_rows = sum(e["items"] for e in pages)
all_mb = sum(e["bytes"] for e in pages) / 1e6

# The longest chain of dependent requests: a token, the invoice list page by page, then the
# longest of: each invoice's sequences, the summaries then an unbilled sequence, the customers
# then a customer's master data.
per_sequence = {}
for e in index:
    if e["event"] == "done":
        per_sequence[(e["dataset"], e["scope"])] = e["page"]
def longest(pred):
    return max([n for (d, s), n in per_sequence.items() if pred(d, s)] or [0])
chain = 1 + per_sequence.get(("invoice_list", "all"), 1) + max(
    longest(lambda d, s: d.startswith("billed") or d.startswith("legacy") or d in ("invoices", "documents")),
    per_sequence.get(("invoice_summaries", "all"), 1) + longest(lambda d, s: d.startswith("unbilled")),
    per_sequence.get(("customers", "all"), 1) + longest(lambda d, s: d in ("orders", "subscriptions", "entitlements")),
)

duck = json.load(open("duckdb.out"))
rows = []
for label, name, n, mb in [
    ("pcrecon end to end (HTTP)", "http", all_rows, all_mb),
    ("pcrecon --from-raw", "replay", all_rows, all_mb),
]:
    wall, cpu, rss = timing(name)
    rows.append((label, n, mb, wall, cpu, rss))
wall, cpu, rss = timing("duckdb")
rows.append(("DuckDB JSON → Parquet (usage pages)", usage_rows, usage_mb, duck["seconds"], cpu, rss))
lat_wall, lat_cpu, lat_rss = timing("latency")
rows.append((f"pcrecon end to end, {int(latency*1000)} ms latency", all_rows, all_mb, lat_wall, lat_cpu, lat_rss))

# CPU seconds per GB of JSON: steadier than wall time on a shared machine.
print(f"| run | rows | JSON MB | wall s | rows/s | MB/s | CPU s | CPU s/GB | peak RSS MiB |")
print(f"| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for label, n, mb, wall, cpu, rss in rows:
    print(f"| {label} | {n:,} | {mb:,.0f} | {wall:.1f} | {n / wall:,.0f} | {mb / wall:,.0f} | {cpu:.1f} | {cpu / (mb / 1000):.1f} | {rss:,} |")
replay_wall, replay_cpu = timing("replay")[:2]
duck_cpu = timing("duckdb")[1]
print()
print(f"ratio pcrecon --from-raw / DuckDB: wall {replay_wall / duck['seconds']:.2f}, "
      f"CPU s/GB {(replay_cpu / all_mb) / (duck_cpu / usage_mb):.2f} "
      f"(pcrecon also decodes exactly, normalizes, matches, ties out and writes CSV and the manifest, over {all_rows - usage_rows:,} more rows)")
print(f"longest chain of dependent requests: {chain} × {int(latency*1000)} ms = {chain * latency:.1f} s; "
      f"end to end took {lat_wall:.1f} s ({lat_wall / (chain * latency):.2f} × the chain)")
stages = log_event("replay", "stage_ms")
if stages:
    print("pcrecon --from-raw, writer thread wall per stage (ms): " +
          ", ".join(f"{k} {stages[k]}" for k in ("digest", "decode", "normalize", "matching", "write", "finish") if k in stages))
EOF
