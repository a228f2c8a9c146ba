"""Opens a mudar feature store with pyarrow, DuckDB and polars, checks they
agree, and dumps every table's rows as JSON (for pipeline/tests/extract.rs).

    python read_store.py STORE OUT.json

Checks: the three readers see the same rows in every table; column types
(HOOF is a fixed-size list of float32; event times are lists of float64);
every file carries mudar.schema_version and mudar.config metadata; no hidden
or temporary file is read. OUT.json: {table: [row dicts sorted]}.
"""

import json
import sys
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

TABLES = ["media", "audio_frames", "video_frames", "clips", "videos", "feed_events"]
# A live input's frame and clip numbers restart with each run: its capture time tells them apart.
KEYS = {
    "media": ["input"],
    "audio_frames": ["input", "capture_time", "frame"],
    "video_frames": ["input", "capture_time", "frame"],
    "clips": ["input", "capture_time", "clip"],
    "videos": ["input"],
    "feed_events": ["input", "time", "event"],
}


def sort_key(key):
    """Orders rows by the key columns, nulls (files' capture times) first."""
    return lambda r: [(0, 0) if r[k] is None else (1, r[k]) for k in key]


def main(store, out):
    result = {}
    for table in TABLES:
        folder = store / table
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        if not files:
            result[table] = []
            continue
        for f in files:
            meta = pq.read_metadata(f).metadata
            assert b"mudar.schema_version" in meta and b"mudar.config" in meta, f"{f}: metadata {meta}"
        arrow = ds.dataset(folder, format="parquet").to_table()
        duck = duckdb.sql(f"SELECT * FROM read_parquet('{folder}/*.parquet')").arrow()
        if isinstance(duck, pa.RecordBatchReader):
            duck = duck.read_all()
        polars = pl.scan_parquet(f"{folder}/*.parquet").collect()
        assert arrow.num_rows == duck.num_rows == polars.height, (table, arrow.num_rows, duck.num_rows, polars.height)
        if table == "video_frames":
            hoof = arrow.schema.field("hoof").type
            assert pa.types.is_fixed_size_list(hoof) and hoof.value_type == pa.float32(), hoof
            assert polars.schema["hoof"] == pl.Array(pl.Float32, hoof.list_size), polars.schema["hoof"]
        if table == "clips":
            assert arrow.schema.field("beat_times").type.value_type == pa.float64()
        key = KEYS[table]
        rows = sorted(arrow.to_pylist(), key=sort_key(key))
        duck_rows = sorted(duck.to_pylist(), key=sort_key(key))
        assert rows == duck_rows, f"{table}: pyarrow and DuckDB rows differ"
        polars_rows = sorted(polars.to_dicts(), key=sort_key(key))
        assert [r[key[-1]] for r in rows] == [r[key[-1]] for r in polars_rows], f"{table}: polars rows differ"
        count = duckdb.sql(f"SELECT count(DISTINCT input) FROM read_parquet('{folder}/*.parquet')").fetchall()[0][0]
        assert count == len({r["input"] for r in rows})
        result[table] = rows
    # Capture times (live inputs) are datetimes: written as ISO text.
    Path(out).write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
