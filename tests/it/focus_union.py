"""pcrecon's `focus` dataset and another provider's FOCUS 1.2 data in one DuckDB query: the Azure
sample focus-data-toolkit generates (CSV, its types as DuckDB's sniffer infers them) and pcrecon's
Parquet, the 57 FOCUS columns of each, UNION ALL with no cast. Each column must be of the same type
family on both sides (text, instant, number), except where the other data leaves a column all
null, which DuckDB types VARCHAR; the union keeps every row and both providers.

Usage: python focus_union.py SNAPSHOT OUT_DIR COLUMNS DECIMAL_COLUMNS DATETIME_COLUMNS (the column
lists comma-separated); prints a JSON summary.
"""
import duckdb, json, os, subprocess, sys
from importlib.metadata import version

snap, out = sys.argv[1], sys.argv[2]
columns, decimals, datetimes = (arg.split(",") for arg in sys.argv[3:6])
assert len(columns) == 57 and len(set(columns)) == 57, columns
assert set(decimals) <= set(columns) and set(datetimes) <= set(columns), (decimals, datetimes)
assert version("focus-data-toolkit") == "0.14.1", version("focus-data-toolkit")

subprocess.run(
    [sys.executable, "-m", "focus_data_toolkit", "generate", "--provider", "azure", "--focus-version", "1.2",
     "--rows", "200", "--seed", "7", "--out", out],
    check=True, stdout=subprocess.DEVNULL,
)
their_file = os.path.join(out, "focus_1_2_cost_and_usage_azure.csv")
assert os.path.isfile(their_file), os.listdir(out)

con = duckdb.connect()
ours = f"read_parquet('{snap}/focus/**/*.parquet', hive_partitioning=false)"
theirs = f"read_csv('{their_file}')"
select = ", ".join(f'"{c}"' for c in columns)
union = f"SELECT {select} FROM {ours} UNION ALL SELECT {select} FROM {theirs}"
assert "cast" not in union.lower() and "::" not in union, union

their_columns = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {theirs}").fetchall()}
assert set(columns) <= their_columns, sorted(set(columns) - their_columns)


def types(query):
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE {query}").fetchall()}


t_ours = types(f"SELECT {select} FROM {ours}")
t_theirs = types(f"SELECT {select} FROM {theirs}")
t_union = types(f"SELECT * FROM ({union})")

NUMBERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
           "UHUGEINT", "FLOAT", "DOUBLE"}


def family(kind):
    if kind == "VARCHAR":
        return "text"
    if kind.startswith("TIMESTAMP"):
        return "instant"
    if kind in NUMBERS or kind.startswith("DECIMAL"):
        return "number"
    return kind


def expected(column):
    return "number" if column in decimals else "instant" if column in datetimes else "text"


non_null = ", ".join(f'count("{c}")' for c in columns)
counts = con.execute(f"SELECT {non_null} FROM {theirs}").fetchone()
all_null = [c for c, n in zip(columns, counts) if n == 0]

incompatible = []
for c in columns:
    want = expected(c)
    if family(t_ours[c]) != want or (want == "instant" and t_ours[c] != "TIMESTAMP WITH TIME ZONE"):
        incompatible.append(f"{c}: ours is {t_ours[c]}, FOCUS says {want}")
    elif c in all_null and t_theirs[c] == "VARCHAR":
        continue
    elif family(t_theirs[c]) != want:
        incompatible.append(f"{c}: ours is {t_ours[c]}, theirs {t_theirs[c]}")
    elif family(t_union[c]) != want:
        incompatible.append(f"{c}: the union made {t_ours[c]} and {t_theirs[c]} into {t_union[c]}")
assert not incompatible, incompatible

n_ours = con.execute(f"SELECT count(*) FROM {ours}").fetchone()[0]
n_theirs = con.execute(f"SELECT count(*) FROM {theirs}").fetchone()[0]
n_union = con.execute(f"SELECT count(*) FROM ({union})").fetchone()[0]
assert n_union == n_ours + n_theirs, (n_union, n_ours, n_theirs)

totals = con.execute(
    f"SELECT ProviderName, BillingCurrency, sum(BilledCost) FROM ({union}) GROUP BY ALL ORDER BY ALL"
).fetchall()
assert all(p is not None and ccy is not None and total is not None for p, ccy, total in totals), totals
providers = sorted({p for p, _, _ in totals})
our_providers = {row[0] for row in con.execute(f"SELECT DISTINCT ProviderName FROM {ours}").fetchall()}
their_providers = {row[0] for row in con.execute(f"SELECT DISTINCT ProviderName FROM {theirs}").fetchall()}
assert our_providers and their_providers and set(providers) == our_providers | their_providers, totals
assert len(providers) >= 2, providers

print(json.dumps({
    "ours": n_ours,
    "theirs": n_theirs,
    "union": n_union,
    "providers": providers,
    "all_null_in_theirs": all_null,
    "incompatible": incompatible,
    "types": {c: [t_ours[c], t_theirs[c], t_union[c]] for c in columns},
}))
