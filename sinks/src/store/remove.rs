//! Removing inputs from a store, copy-on-write and atomically.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::{BooleanArray, RecordBatch};
use arrow_select::filter::filter_record_batch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::generations::TablesLock;
use super::lease::{Holder, lease};
use super::manifest::{self, CommittedFile, Manifest, ManifestEntry};
use super::recover::read_manifests;
use super::writer::{StoreConfig, writer_properties};
use super::{StoreError, final_name, manifest_path, segment_name, sync_dir, temp_name};

/// The writer name removals commit under.
pub(super) const REMOVER: &str = "remove";

/// What [`remove_inputs`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removal {
    /// Inputs that were in the store and are no longer.
    pub removed: Vec<String>,
    /// Segments rewritten without them.
    pub segments: usize,
}

/// Removes `inputs` from the store at `root`: every segment holding one of
/// them is rewritten without their rows into a new segment whose manifest
/// line names the old one in `replaces` (the commit point), then the old
/// files are deleted. A crash before the commit leaves the store as it was
/// (recovery deletes the new temp files); after it, recovery deletes the old
/// files. Writers of live runs may go on meanwhile (their uncommitted rows are
/// not in any segment yet); two removals wait for each other's lease
/// ([`StoreError::Busy`] names the holder).
pub fn remove_inputs(root: &Path, inputs: &BTreeSet<String>, config: &StoreConfig) -> Result<Removal, StoreError> {
    let mut removal = Removal::default();
    let _lease = lease(root, REMOVER, &Holder::this_process())?;
    let manifest = manifest_path(root, REMOVER);
    let mut next_seq = Manifest::read(&manifest)?.next_seq();
    for old in read_manifests(root)? {
        let hit: Vec<&str> = old.inputs.iter().map(|i| i.input.as_str()).filter(|i| inputs.contains(*i)).collect();
        if hit.is_empty() {
            continue;
        }
        removal.removed.extend(hit.iter().map(|i| i.to_string()));
        let segment = segment_name(REMOVER, next_seq);
        next_seq += 1;
        let _adding = TablesLock::shared(root)?;
        let mut files = Vec::new();
        let mut written = Vec::new();
        for file in &old.files {
            let source = root.join(&file.path);
            let dir = source.parent().expect("part files live in table folders").to_owned();
            let (temp, target) = (dir.join(temp_name(&segment)), dir.join(final_name(&segment)));
            let rows = copy_without(&source, &temp, inputs, config, &file.table, &segment)?;
            if rows > 0 {
                let path = format!("{}/{}", file.table, final_name(&segment));
                files.push(CommittedFile { table: file.table.clone(), path, rows });
                written.push((temp, target));
            } else {
                std::fs::remove_file(&temp).map_err(StoreError::io(&temp))?;
            }
        }
        let entry = ManifestEntry {
            segment,
            writer: REMOVER.to_owned(),
            files,
            inputs: old.inputs.iter().filter(|i| !inputs.contains(&i.input)).cloned().collect(),
            committed_at: manifest::now_rfc3339(),
            replaces: vec![old.segment.clone()],
        };
        std::fs::create_dir_all(manifest.parent().expect("in _manifest")).map_err(StoreError::io(&manifest))?;
        manifest::append(&manifest, &entry)?;
        for (temp, target) in written {
            std::fs::rename(&temp, &target).map_err(StoreError::io(&temp))?;
        }
        for file in &old.files {
            let path = root.join(&file.path);
            match std::fs::remove_file(&path) {
                // A concurrent recovery deleted it first: superseded files are its to delete too.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other.map_err(StoreError::io(&path))?,
            }
            sync_dir(path.parent().expect("in a table folder"))?;
        }
        removal.segments += 1;
    }
    Ok(removal)
}

/// Copies the rows of `source` whose `input` is not in `inputs` to `temp`
/// (fsynced); returns how many.
fn copy_without(
    source: &Path,
    temp: &Path,
    inputs: &BTreeSet<String>,
    config: &StoreConfig,
    table: &str,
    segment: &str,
) -> Result<u64, StoreError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(source).map_err(StoreError::io(source))?)
        .map_err(StoreError::parquet(source))?;
    let schema = reader.schema().clone();
    let reader = reader.build().map_err(StoreError::parquet(source))?;
    let file = File::create(temp).map_err(StoreError::io(temp))?;
    let properties = writer_properties(config, table, segment);
    let mut writer = ArrowWriter::try_new(file, schema, Some(properties)).map_err(StoreError::parquet(temp))?;
    let mut rows = 0;
    for batch in reader {
        let batch = batch.map_err(|e| StoreError::parquet(source)(e.into()))?;
        let kept = keep_other_inputs(&batch, inputs).map_err(|e| StoreError::parquet(source)(e.into()))?;
        rows += kept.num_rows() as u64;
        writer.write(&kept).map_err(StoreError::parquet(temp))?;
    }
    let file = writer.into_inner().map_err(StoreError::parquet(temp))?;
    file.sync_all().map_err(StoreError::io(temp))?;
    Ok(rows)
}

fn keep_other_inputs(batch: &RecordBatch, inputs: &BTreeSet<String>) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let column = batch
        .column_by_name("input")
        .ok_or_else(|| arrow_schema::ArrowError::SchemaError("no `input` column".to_owned()))?
        .as_string::<i32>();
    let keep: BooleanArray = column.iter().map(|i| Some(!i.is_some_and(|i| inputs.contains(i)))).collect();
    filter_record_batch(batch, &keep)
}
