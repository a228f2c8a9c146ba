"""Reads a table of a mudar store over and over, with DuckDB and pyarrow as
they are, while `mudar store compact` runs beside (for pipeline/tests/live.rs).

    python read_while_compacting.py STORE TABLE ROWS STOP_FILE

Every read that succeeds must see exactly ROWS rows: a compaction swaps a
table's files in one step, so a reader sees the old files or the new ones,
never both (rows twice) or some (rows missing). A read may fail when a
file it listed was compacted away before it opened it, or (DuckDB's glob)
find none of the files it listed and count nothing: both are counted, not
errors. Stops once STOP_FILE exists (or after a minute); prints the counts
as JSON.
"""

import json
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.dataset as ds


def main(store, table, rows, stop):
    folder = store / table
    reads = failed = empty = 0
    deadline = time.time() + 60
    while not stop.exists() and time.time() < deadline:
        for read in (
            lambda: duckdb.sql(f"SELECT count(*) FROM read_parquet('{folder}/*.parquet')").fetchall()[0][0],
            lambda: ds.dataset(folder, format="parquet").count_rows(),
        ):
            try:
                seen = read()
            except (FileNotFoundError, OSError, duckdb.IOException):
                failed += 1
                continue
            # A glob through the link that lists the old generation and stats its files after
            # the swap can find none of them: DuckDB then counts nothing instead of failing.
            # Known and documented (docs/live-feeds.md); counted apart, never a partial count.
            if seen == 0:
                empty += 1
                continue
            assert seen == rows, f"a reader saw {seen} rows of {table}, not {rows}"
            reads += 1
    print(json.dumps({"reads": reads, "failed": failed, "empty": empty}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
