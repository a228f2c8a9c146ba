//! Reading committed tables back, and derived tables (views) that are
//! replaced rather than appended to.

use std::fs::File;
use std::path::Path;

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};

use super::recover::read_manifests;
use super::writer::{StoreConfig, writer_properties};
use super::{StoreError, check_name, sync_dir};

/// Every committed row of `table` (the files the manifests name), file by file.
pub fn read_committed(root: &Path, table: &str) -> Result<Vec<RecordBatch>, StoreError> {
    let mut batches = Vec::new();
    for entry in read_manifests(root)? {
        for file in entry.files.iter().filter(|f| f.table == table) {
            let path = root.join(&file.path);
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).map_err(StoreError::io(&path))?)
                .and_then(|builder| builder.build())
                .map_err(StoreError::parquet(&path))?;
            for batch in reader {
                batches.push(batch.map_err(|e| StoreError::parquet(&path)(e.into()))?);
            }
        }
    }
    Ok(batches)
}

/// Hands every committed row of `table` to `each`, a batch at a time, reading only `columns`
/// (all when `None`): what a reader bounded in memory by a batch, not by the table, needs.
pub fn scan_committed<E: From<StoreError>>(
    root: &Path,
    table: &str,
    columns: Option<&[&str]>,
    mut each: impl FnMut(RecordBatch) -> Result<(), E>,
) -> Result<(), E> {
    for entry in read_manifests(root)? {
        for file in entry.files.iter().filter(|f| f.table == table) {
            let path = root.join(&file.path);
            let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).map_err(StoreError::io(&path))?)
                .map_err(StoreError::parquet(&path))?;
            let builder = match columns {
                Some(names) => {
                    let mask = ProjectionMask::columns(builder.parquet_schema(), names.iter().copied());
                    builder.with_projection(mask)
                }
                None => builder,
            };
            for batch in builder.build().map_err(StoreError::parquet(&path))? {
                each(batch.map_err(|e| StoreError::parquet(&path)(e.into()))?)?;
            }
        }
    }
    Ok(())
}

/// Replaces the derived table `table` with `batch`: one file,
/// `STORE/<table>/<table>.parquet`, written under a hidden temp name, fsynced
/// and renamed over the previous one, so readers see the old snapshot or the
/// new one, never a mix. Recovery leaves it alone (it is no part file).
pub fn write_snapshot(root: &Path, table: &str, batch: &RecordBatch, config: &StoreConfig) -> Result<(), StoreError> {
    check_name("table", table)?;
    let dir = root.join(table);
    std::fs::create_dir_all(&dir).map_err(StoreError::io(&dir))?;
    // Runs sharing the store may write the snapshot at once: each through a temp file of its own.
    let temp = dir.join(format!(".{table}.parquet.{}.tmp", std::process::id()));
    let target = dir.join(format!("{table}.parquet"));
    let file = File::create(&temp).map_err(StoreError::io(&temp))?;
    let properties = writer_properties(config, table, "snapshot");
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(properties)).map_err(StoreError::parquet(&temp))?;
    writer.write(batch).map_err(StoreError::parquet(&temp))?;
    let file = writer.into_inner().map_err(StoreError::parquet(&temp))?;
    file.sync_all().map_err(StoreError::io(&temp))?;
    std::fs::rename(&temp, &target).map_err(StoreError::io(&temp))?;
    sync_dir(&dir)
}
