"""Opens a store written by tests/store_readers.rs with pyarrow, DuckDB and polars, with no custom code.

Usage: store_readers.py STORE  (STORE/expected.json says what the Rust test committed)
Checks row counts per input, column types and values, the files' metadata, and that the
temp file of a writer still running (and the orphan recovery deleted) are not read.
"""

import json
import pathlib
import sys

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

store = pathlib.Path(sys.argv[1])
expected = json.loads((store.parent / "expected.json").read_text())
want_counts = expected["frames"]
want_total = sum(want_counts.values())
EMBED = 30


def expected_row(input_name, frame):
    return {
        "input": input_name,
        "frame": frame,
        "time_s": frame / 8.0,
        "beat": frame % 4 == 0,
        "hoof": [frame + j / 32.0 for j in range(EMBED)],
    }


def check_rows(reader, rows):
    assert len(rows) == want_total, f"{reader}: {len(rows)} rows, want {want_total}"
    counts = {}
    for row in rows:
        counts[row["input"]] = counts.get(row["input"], 0) + 1
        want = expected_row(row["input"], row["frame"])
        got = {k: row[k] for k in want}
        got["hoof"] = list(got["hoof"])
        assert got == want, f"{reader}: {got} != {want}"
    assert counts == want_counts, f"{reader}: rows per input {counts} != {want_counts}"
    keys = {(r["input"], r["frame"]) for r in rows}
    assert len(keys) == want_total, f"{reader}: duplicated rows"


frames_dir = store / "frames"
assert (frames_dir / expected["temp_file"]).is_file(), "the running writer's temp file should be there"

# pyarrow: the table's folder as a dataset (names starting with '.' or '_' are skipped).
dataset = ds.dataset(frames_dir, format="parquet")
files = sorted(pathlib.Path(f).name for f in dataset.files)
assert files == sorted(expected["files"]), f"pyarrow files {files} != {expected['files']}"
item = pa.field("item", pa.float32(), nullable=False)
want_schema = {
    "input": pa.string(),
    "frame": pa.uint32(),
    "time_s": pa.float64(),
    "beat": pa.bool_(),
    "hoof": pa.list_(item, EMBED),
}
got_schema = {f.name: f.type for f in dataset.schema}
assert got_schema == want_schema, f"pyarrow schema {got_schema}"
assert dataset.schema.field("hoof").type.value_field.nullable is False
table = dataset.to_table()
check_rows("pyarrow", table.to_pylist())
assert pq.read_table(frames_dir).num_rows == want_total
for name in files:
    metadata = pq.read_metadata(frames_dir / name).metadata
    assert metadata[b"mudar.schema_version"] == expected["schema_version"].encode(), metadata
    assert json.loads(metadata[b"mudar.config"]) == json.loads(expected["config"]), metadata
    assert metadata[b"mudar.table"] == b"frames", metadata
assert ds.dataset(store / "media", format="parquet").count_rows() == len(expected["media"])

# DuckDB: the glob of the table's final files.
glob = f"{frames_dir}/*.parquet"
con = duckdb.connect()
types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{glob}'))").fetchall())
# Parquet has no fixed-size list: DuckDB (unlike pyarrow and polars, which read the Arrow schema
# stored in the file) sees a variable-length list, each of 30 values; `hoof::FLOAT[30]` restores it.
want_types = {"input": "VARCHAR", "frame": "UINTEGER", "time_s": "DOUBLE", "beat": "BOOLEAN", "hoof": "FLOAT[]"}
assert types == want_types, f"DuckDB types {types}"
assert con.execute(f"SELECT count(*) FROM read_parquet('{glob}') WHERE len(hoof) != {EMBED}").fetchone()[0] == 0
array_type = con.execute(f"SELECT typeof(hoof::FLOAT[{EMBED}]) FROM read_parquet('{glob}') LIMIT 1").fetchone()[0]
assert array_type == "FLOAT[30]", array_type
cursor = con.execute(f"SELECT input, frame, time_s, beat, hoof FROM read_parquet('{glob}')")
columns = [d[0] for d in cursor.description]
check_rows("DuckDB", [dict(zip(columns, row)) for row in cursor.fetchall()])
counts = dict(con.execute(f"SELECT input, count(*) FROM read_parquet('{glob}') GROUP BY input").fetchall())
assert counts == want_counts, f"DuckDB counts {counts}"
assert con.execute(f"SELECT hoof[30] FROM read_parquet('{glob}') WHERE frame = 7 LIMIT 1").fetchone()[0] == 7 + 29 / 32

# polars: the same glob, lazily.
frame = pl.scan_parquet(glob).collect()
want_dtypes = {
    "input": pl.String,
    "frame": pl.UInt32,
    "time_s": pl.Float64,
    "beat": pl.Boolean,
    "hoof": pl.Array(pl.Float32, EMBED),
}
assert dict(frame.schema) == want_dtypes, f"polars schema {frame.schema}"
check_rows("polars", frame.to_dicts())
counts = dict(pl.scan_parquet(glob).group_by("input").len().collect().iter_rows())
assert counts == want_counts, f"polars counts {counts}"
