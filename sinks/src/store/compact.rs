//! Compaction: small committed segments (a live feed's windows, many small
//! runs) rewritten into files of about the target size, committed by one
//! manifest line that supersedes them, and swapped into the table folders in
//! one step (see [`super::generations`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::fold;
use super::generations::{self, TablesLock};
use super::lease::{Holder, lease};
use super::manifest::{self, CommittedFile, Manifest, ManifestEntry};
use super::recover::{manifest_files, read_manifests, recover_writer};
use super::remove::REMOVER;
use super::writer::{StoreConfig, writer_properties};
use super::{StoreError, final_name, manifest_path, segment_name, temp_name};

/// The writer name compactions commit under.
pub const COMPACTOR: &str = "compact";

/// What [`compact`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compaction {
    /// Segments rewritten, and the segments they became.
    pub segments_before: usize,
    pub segments_after: usize,
    /// Part files before and after.
    pub files_before: usize,
    pub files_after: usize,
    /// Bytes of the files rewritten.
    pub bytes: u64,
    /// Manifest lines dropped because what they committed is now in other files (see [`fold`]).
    pub manifest_lines_folded: usize,
    /// Why folding the manifests failed, if it did (the compaction itself is committed).
    pub fold_error: Option<String>,
}

/// Rewrites runs of small committed segments (each under half of `target_file_bytes`) into
/// segments of at most about `target_file_bytes`, in commit order: for each run, the rows of
/// each table are copied into one new file, ONE manifest line names the new files, the inputs
/// (windows included) and the segments it supersedes (the commit point), then each table's
/// next generation, without the old files and with the new one, is swapped in. A crash before
/// the commit leaves the store as it was (recovery deletes the temp files); after it, recovery
/// finishes the job in place. Live writers may go on meanwhile; removals and other compactions
/// wait for each other's lease.
pub fn compact(root: &Path, target_file_bytes: u64, row_group_rows: usize) -> Result<Compaction, StoreError> {
    let holder = Holder::this_process();
    // Removals and compactions both supersede segments: one at a time.
    let _removal = lease(root, REMOVER, &holder)?;
    let _lease = lease(root, COMPACTOR, &holder)?;
    recover_writer(root, COMPACTOR)?;
    recover_writer(root, REMOVER)?;
    // An earlier compaction that stopped between its commit and its swaps left superseded files
    // visible beside their replacement: swap them out first.
    for (table, names) in superseded_files(root)? {
        generations::swap(root, &table, &|name| names.contains(name), &[])?;
    }
    let manifest = manifest_path(root, COMPACTOR);
    let first_seq = Manifest::read(&manifest)?.next_seq();

    let mut report = Compaction::default();
    // Per table: the file names the swap drops, and the temps it brings in (with final names).
    let mut drops: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut adds: BTreeMap<String, Vec<(PathBuf, String)>> = BTreeMap::new();
    for (seq, group) in (first_seq..).zip(groups(root, read_manifests(root)?, target_file_bytes)?) {
        let segment = segment_name(COMPACTOR, seq);
        let config = StoreConfig {
            target_file_bytes,
            row_group_rows: row_group_rows.max(1),
            config_json: group.iter().flat_map(|e| &e.inputs).map(|i| i.config.clone()).next().unwrap_or_default(),
        };
        let mut by_table: BTreeMap<&str, Vec<&CommittedFile>> = BTreeMap::new();
        for file in group.iter().flat_map(|e| &e.files) {
            by_table.entry(file.table.as_str()).or_default().push(file);
        }
        let mut files = Vec::new();
        {
            let _adding = TablesLock::shared(root)?;
            for (table, parts) in &by_table {
                let temp = root.join(table).join(temp_name(&segment));
                report.bytes += parts.iter().map(|f| file_len(&root.join(&f.path))).sum::<u64>();
                let rows = concatenate(root, parts, &temp, &config, table, &segment)?;
                files.push(CommittedFile {
                    table: table.to_string(),
                    path: format!("{table}/{}", final_name(&segment)),
                    rows,
                });
                let dropped = drops.entry(table.to_string()).or_default();
                dropped.extend(
                    parts
                        .iter()
                        .filter_map(|f| Path::new(&f.path).file_name())
                        .map(|n| n.to_string_lossy().into_owned()),
                );
                dropped.insert(temp_name(&segment));
                adds.entry(table.to_string()).or_default().push((temp, final_name(&segment)));
            }
        }
        let entry = ManifestEntry {
            segment: segment.clone(),
            writer: COMPACTOR.to_owned(),
            files,
            inputs: fold::fold_windows(group.iter().flat_map(|e| e.inputs.iter().cloned())),
            committed_at: manifest::now_rfc3339(),
            replaces: group.iter().map(|e| e.segment.clone()).collect(),
        };
        // The commit point.
        manifest::append(&manifest, &entry)?;
        report.segments_before += group.len();
        report.segments_after += 1;
        report.files_before += group.iter().map(|e| e.files.len()).sum::<usize>();
        report.files_after += entry.files.len();
    }
    #[cfg(test)]
    if super::tests::CRASH_BEFORE_SWAP.with(|c| c.get()) {
        return Err(StoreError::InvalidConfig { root: root.to_owned(), reason: "crashed before the swap".into() });
    }
    // One swap per table: readers see every group's change at once.
    for (table, added) in adds {
        let dropped = &drops[&table];
        generations::swap(root, &table, &|name| dropped.contains(name), &added)?;
    }
    // The compaction is done: a fold that fails leaves longer manifests, still right, and is
    // tried again by the next compaction.
    match fold::fold_idle_manifests(root, &holder) {
        Ok(lines) => report.manifest_lines_folded = lines,
        Err(e) => report.fold_error = Some(e.to_string()),
    }
    Ok(report)
}

/// Per table, the part files still in its folder whose segments another has superseded.
fn superseded_files(root: &Path) -> Result<BTreeMap<String, BTreeSet<String>>, StoreError> {
    let mut entries = Vec::new();
    for path in manifest_files(root)? {
        entries.extend(Manifest::read(&path)?.entries);
    }
    let replaced: BTreeSet<&str> = entries.iter().flat_map(|e| e.replaces.iter().map(String::as_str)).collect();
    let mut files: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in entries.iter().filter(|e| replaced.contains(e.segment.as_str())).flat_map(|e| &e.files) {
        if root.join(&file.path).exists()
            && let Some(name) = Path::new(&file.path).file_name()
        {
            files.entry(file.table.clone()).or_default().insert(name.to_string_lossy().into_owned());
        }
    }
    Ok(files)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Runs of consecutive small segments worth rewriting (two or more, together at most the target).
fn groups(root: &Path, entries: Vec<ManifestEntry>, target: u64) -> Result<Vec<Vec<ManifestEntry>>, StoreError> {
    let mut groups = Vec::new();
    let mut group: Vec<ManifestEntry> = Vec::new();
    let mut bytes = 0;
    let close = |group: &mut Vec<ManifestEntry>, groups: &mut Vec<Vec<ManifestEntry>>| {
        if group.len() >= 2 {
            groups.push(std::mem::take(group));
        }
        group.clear();
    };
    for entry in entries {
        // A writer between its commit and its renames: its files come next time.
        if entry.files.iter().any(|f| !root.join(&f.path).exists()) {
            close(&mut group, &mut groups);
            bytes = 0;
            continue;
        }
        let size: u64 = entry.files.iter().map(|f| file_len(&root.join(&f.path))).sum();
        if size >= target / 2 {
            close(&mut group, &mut groups);
            bytes = 0;
            continue;
        }
        if bytes + size > target {
            close(&mut group, &mut groups);
            bytes = 0;
        }
        bytes += size;
        group.push(entry);
    }
    close(&mut group, &mut groups);
    Ok(groups)
}

/// Copies the rows of `parts` (in order) into `temp` (fsynced); returns how many.
fn concatenate(
    root: &Path,
    parts: &[&CommittedFile],
    temp: &Path,
    config: &StoreConfig,
    table: &str,
    segment: &str,
) -> Result<u64, StoreError> {
    let mut writer: Option<ArrowWriter<File>> = None;
    let mut rows = 0;
    for part in parts {
        let source = root.join(&part.path);
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&source).map_err(StoreError::io(&source))?)
            .map_err(StoreError::parquet(&source))?;
        let schema = reader.schema().clone();
        let writer = match &mut writer {
            Some(writer) => writer,
            None => {
                let file = File::create(temp).map_err(StoreError::io(temp))?;
                let properties = writer_properties(config, table, segment);
                writer.insert(ArrowWriter::try_new(file, schema, Some(properties)).map_err(StoreError::parquet(temp))?)
            }
        };
        for batch in reader.build().map_err(StoreError::parquet(&source))? {
            let batch = batch.map_err(|e| StoreError::parquet(&source)(e.into()))?;
            rows += batch.num_rows() as u64;
            writer.write(&batch).map_err(StoreError::parquet(temp))?;
        }
    }
    let writer = writer.expect("a table of the group has files");
    let file = writer.into_inner().map_err(StoreError::parquet(temp))?;
    file.sync_all().map_err(StoreError::io(temp))?;
    Ok(rows)
}
