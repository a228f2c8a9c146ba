//! An exactly-once, resumable Parquet feature store, generic over tables.
//!
//! # Layout
//!
//! ```text
//! STORE/
//!   <table>/part-<writer>-<seq>.parquet        committed data files, one folder per table
//!   <table>/.part-<writer>-<seq>.parquet.tmp   files being written (hidden: no reader opens them)
//!   <table> -> .tables/<table>.g<N>/           a table folder is a link to its generation
//!   _manifest/<writer>.jsonl                   one append-only manifest per writer
//!   _manifest/<writer>.lock                    the writer's lease, locked while a run writes as it
//!   _runs/<run>.json                           the inputs a live run claims, locked while it runs
//! ```
//!
//! Readers open a table's folder with no custom code: `pyarrow.dataset.dataset("STORE/<table>")`
//! (it skips names starting with `.` and `_`), DuckDB `read_parquet('STORE/<table>/*.parquet')`,
//! polars `scan_parquet("STORE/<table>/*.parquet")`. Every data file is zstd-compressed and carries
//! the key-value metadata `mudar.schema_version` ([`mudar_schemas::SCHEMA_VERSION`]), `mudar.config`
//! (the producing configuration, [`StoreConfig::config_json`]), `mudar.table` and `mudar.segment`.
//!
//! Each writer (one per timely worker, possibly on different machines) has its own name, its own
//! data files and its own manifest, so writers never share a file.
//!
//! # Commit protocol
//!
//! A *segment* is the set of part files (at most one per table, all with the same `<writer>-<seq>`)
//! holding the rows of a group of inputs written by one writer. Each input lives in exactly one
//! segment.
//!
//! 1. [`StoreWriter::write`] streams the rows of an (input, table) to the temp file of that table in
//!    the input's segment, through an [`parquet::arrow::ArrowWriter`] that flushes a row group
//!    every [`StoreConfig::row_group_rows`] rows, so memory stays flat for long inputs.
//! 2. [`StoreWriter::finish_input`] says every row of an input, in every table, has been written.
//! 3. A segment commits when every input in it is finished and either its files have reached
//!    [`StoreConfig::target_file_bytes`] or [`StoreWriter::flush`] is called: the Parquet writers
//!    are closed and the temp files fsynced; then ONE line naming the segment's files (with row
//!    counts) and inputs (with their configuration and row count per table) is appended to the
//!    writer's manifest and fsynced. **That append is the commit point.** Then every temp file is
//!    renamed to its final name and the folder fsynced.
//! 4. A segment whose files reached the target size while some of its inputs were unfinished stops
//!    accepting new inputs: those start a new segment, and the old one commits when its inputs
//!    finish. Files are thus about the target size, never one per input.
//! 5. [`recover`] (before a run, with no writer running) finishes the renames of committed segments
//!    whose final files are missing (roll forward), and deletes every other temp file and every
//!    final part file that no manifest names (roll back), and truncates a torn last manifest line.
//!    [`StoreWriter::open`] does the same for its own writer's files.
//! 6. [`committed_inputs`] lists the inputs committed so far with their configuration, so a
//!    re-run skips the inputs already committed with the same configuration.
//! 7. A manifest line counts only once it is complete: a last line without its newline, or that
//!    does not parse, was torn by a crash during the append (its commit never returned), so readers
//!    ignore it and [`recover`] truncates it.
//!
//! 8. [`remove_inputs`] rewrites every segment holding a removed input without its rows, as a new
//!    segment of the writer `remove` whose manifest line lists the old segment in `replaces`:
//!    that line is the commit point, after which the old segment's files and inputs no longer
//!    count (readers of the manifests skip superseded segments, [`recover`] deletes their files).
//!
//! 9. A *windowed* input (a live feed, [`StoreWriter::set_windowed`]) is committed a window at a
//!    time ([`StoreWriter::commit_window`]): its rows since its last window, in segments apart from
//!    whole inputs', commit with a manifest line whose input entry carries its [`Window`].
//!    [`committed_inputs`] lists whole inputs only, so a feed is never skipped.
//! 10. Several runs may write at once: writer names are leased ([`lease`]: a lock the kernel
//!     drops with the process), [`recover`] leaves leased writers' files alone, and
//!     [`claim_inputs`] keeps two live runs off the same input.
//! 11. [`compact`] rewrites runs of small segments as one, superseding them like a removal,
//!     swaps each table's next generation in at once ([`generations`]), and folds the lines it
//!     superseded out of the manifests, so they grow with the data, not with the windows.
//!
//! A crash at any point thus leaves each input either committed in full, in exactly one segment,
//! or not at all (and rolled back by the next recovery): re-running the inputs [`committed_inputs`]
//! does not list gives exactly the rows of an uninterrupted run. A windowed input keeps every
//! window committed before the crash, and loses its open one.
//!
//! Dropping a [`StoreWriter`] without [`StoreWriter::flush`] is a crash as far as the store is
//! concerned: its uncommitted segments are rolled back by the next recovery.

mod claims;
mod compact;
mod fold;
pub mod generations;
mod lease;
mod manifest;
mod recover;
mod remove;
mod snapshot;
mod writer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use claims::{Busy, Claimed, RUNS_DIR, RunClaim, claim_inputs};
pub use compact::{COMPACTOR, Compaction, compact};
pub use generations::GENERATIONS_DIR;
pub use lease::{Holder, Lease, held_by, lease, try_lease};
pub use manifest::{CommittedFile, CommittedInput, ManifestEntry, Window};
pub use recover::{Recovery, committed_inputs, input_configs, pending_recovery, read_manifests, recover};
pub use remove::{Removal, remove_inputs};
pub use snapshot::{read_committed, scan_committed, write_snapshot};
pub use writer::{StoreConfig, StoreWriter};

/// Folder under the store root holding one manifest per writer.
pub const MANIFEST_DIR: &str = "_manifest";

/// What went wrong in the store, and on which path.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: Parquet: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: line {line} is not a manifest line ({source}); only the last line may be torn")]
    ManifestLine {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{manifest}: committed file {path} is missing, and so is its temp file")]
    CommittedFileMissing { manifest: PathBuf, path: PathBuf },
    #[error("invalid {what} name `{name}`: use ASCII letters, digits, `_` and `-`, not starting with `_` or `-`")]
    InvalidName { what: &'static str, name: String },
    #[error("{root}: invalid store configuration: {reason}")]
    InvalidConfig { root: PathBuf, reason: String },
    #[error("{dir}: table `{table}` is not registered with this writer (registered: {registered})")]
    UnknownTable { dir: PathBuf, table: String, registered: String },
    #[error("{dir}: the batch for input `{input}` does not match the table's schema: {detail}")]
    SchemaMismatch { dir: PathBuf, input: String, detail: String },
    #[error("{dir}: input `{input}` got rows after finish_input")]
    InputFinished { dir: PathBuf, input: String },
    #[error("{root}: `{name}` is in use by {holder}")]
    Busy { root: PathBuf, name: String, holder: String },
    #[error("{root}: writer `{writer}` failed earlier ({reason}); drop it and run recover")]
    Poisoned { root: PathBuf, writer: String, reason: String },
    #[cfg(test)]
    #[error("injected failure: {0:?}")]
    Injected(tests::FailPoint),
}

impl StoreError {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }

    fn parquet(path: impl Into<PathBuf>) -> impl FnOnce(parquet::errors::ParquetError) -> StoreError {
        let path = path.into();
        move |source| StoreError::Parquet { path, source }
    }
}

/// Checks a writer or table name: it goes into file names, so keep it portable and unambiguous.
fn check_name(what: &'static str, name: &str) -> Result<(), StoreError> {
    let valid = !name.is_empty()
        && !name.starts_with(['_', '-'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid { Ok(()) } else { Err(StoreError::InvalidName { what, name: name.to_owned() }) }
}

/// `<writer>-<seq>`, the name of a segment and the stem of its part files.
fn segment_name(writer: &str, seq: u64) -> String {
    format!("{writer}-{seq:06}")
}

/// Final file name of a segment's part in a table folder.
fn final_name(segment: &str) -> String {
    format!("part-{segment}.parquet")
}

/// Temp file name of a segment's part while it is written.
fn temp_name(segment: &str) -> String {
    format!(".part-{segment}.parquet.tmp")
}

/// A part file name (final or temp) split into what it names.
#[derive(Debug, PartialEq)]
struct PartName<'a> {
    writer: &'a str,
    seq: u64,
    temp: bool,
}

impl<'a> PartName<'a> {
    fn parse(file_name: &'a str) -> Option<Self> {
        let (segment, temp) = match file_name.strip_prefix(".part-").and_then(|s| s.strip_suffix(".parquet.tmp")) {
            Some(segment) => (segment, true),
            None => (file_name.strip_prefix("part-")?.strip_suffix(".parquet")?, false),
        };
        let (writer, seq) = segment.rsplit_once('-')?;
        check_name("writer", writer).ok()?;
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(PartName { writer, seq: seq.parse().ok()?, temp })
    }
}

/// Path of a writer's manifest.
fn manifest_path(root: &Path, writer: &str) -> PathBuf {
    root.join(MANIFEST_DIR).join(format!("{writer}.jsonl"))
}

/// Makes a folder's entries (new, renamed or removed files) durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(StoreError::io(dir))
}
