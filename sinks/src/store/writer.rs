//! [`StoreWriter`]: one writer's segments, from the first row to the manifest line.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::{Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::compact::COMPACTOR;
use super::fold;
use super::generations::{self, TablesLock};
use super::lease::{self, Holder, Lease};
use super::manifest::{self, CommittedFile, CommittedInput, Manifest, ManifestEntry, Window};
use super::recover::{Recovery, recover_writer};
use super::remove::REMOVER;
use super::{MANIFEST_DIR, StoreError, check_name, final_name, manifest_path, segment_name, sync_dir, temp_name};

/// How a [`StoreWriter`] sizes and labels its files.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreConfig {
    /// A segment stops taking new inputs once its files (all tables together, as encoded so far)
    /// reach this size, and commits as soon as its inputs are finished. Files exceed it by the
    /// rows of the inputs that were unfinished then.
    pub target_file_bytes: u64,
    /// Rows per Parquet row group (a row group is buffered in memory until it is full).
    pub row_group_rows: usize,
    /// The configuration that produced the rows (JSON): written into every file's metadata as
    /// `mudar.config`, and recorded with every input in the manifest.
    pub config_json: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { target_file_bytes: 128 << 20, row_group_rows: 64 * 1024, config_json: "{}".to_owned() }
    }
}

/// Writes rows into a store's tables with exactly-once commits (see the [module](super) docs).
/// One per timely worker, each with its own name.
#[derive(Debug)]
pub struct StoreWriter {
    root: PathBuf,
    name: String,
    tables: BTreeMap<String, SchemaRef>,
    config: StoreConfig,
    recovery: Recovery,
    next_seq: u64,
    /// The segment new inputs go to, if it is open.
    accepting: Option<u64>,
    /// The segment windowed inputs' new rows go to, if it is open.
    accepting_windows: Option<u64>,
    /// Inputs committed window by window (see [`Self::commit_window`]).
    windowed: HashSet<String>,
    /// A windowed segment has reached the target size: time to commit the windows.
    windows_full: bool,
    /// Uncommitted segments by sequence number.
    segments: BTreeMap<u64, Segment>,
    /// Inputs in uncommitted segments -> their segment.
    input_segment: HashMap<String, u64>,
    /// Inputs this writer has committed: they take no more rows.
    committed: HashSet<String>,
    /// Why the writer stopped, after an I/O or Parquet error left its files in an unknown state.
    poisoned: Option<String>,
    /// Part files committed since the writer opened.
    files_committed: u64,
    /// The compactor's and remover's manifests as they were when this writer last folded its own.
    superseders_seen: [Option<(u64, std::time::SystemTime)>; 2],
    /// The writer's name, leased for as long as it is open.
    _lease: Lease,
    #[cfg(test)]
    pub(super) fail_point: Option<super::tests::FailPoint>,
}

#[derive(Debug)]
struct Segment {
    name: String,
    accepting: bool,
    /// Table -> its part file in this segment, created by the first row.
    parts: BTreeMap<String, Part>,
    inputs: BTreeMap<String, InputRows>,
}

#[derive(Debug)]
struct Part {
    writer: ArrowWriter<File>,
    temp: PathBuf,
    final_path: PathBuf,
    rows: u64,
}

#[derive(Debug, Default)]
struct InputRows {
    finished: bool,
    rows: BTreeMap<String, u64>,
    /// Set when a windowed input's rows here are a committed window.
    window: Option<Window>,
}

impl Segment {
    /// Encoded size of its files so far, including the row groups still in memory.
    fn bytes(&self) -> u64 {
        self.parts.values().map(|p| (p.writer.bytes_written() + p.writer.in_progress_size()) as u64).sum()
    }

    /// Whether every input in it is finished.
    fn inputs_finished(&self) -> bool {
        self.inputs.values().all(|i| i.finished)
    }
}

impl StoreWriter {
    /// Opens the first writer among `names` that no live writer holds (see [`Self::open`]): how
    /// runs that share a store find names of their own.
    pub fn open_first_free(
        root: &Path,
        names: impl IntoIterator<Item = String>,
        tables: &[(&str, SchemaRef)],
        config: StoreConfig,
    ) -> Result<StoreWriter, StoreError> {
        let mut last = None;
        for name in names {
            match StoreWriter::open(root, &name, tables, config.clone()) {
                Err(busy @ StoreError::Busy { .. }) => last = Some(busy),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| StoreError::InvalidConfig {
            root: root.to_owned(),
            reason: "no writer name to open".to_owned(),
        }))
    }

    /// Opens writer `writer` on the store at `root` (created if missing) with the given tables,
    /// after recovering this writer's own files from an earlier crash (see [`super::recover`]).
    /// Writer and table names may hold ASCII letters, digits, `_` and `-`. The name is leased
    /// (see [`super::lease`]) until the writer is dropped: [`StoreError::Busy`] while another
    /// open writer, in this process or another, holds it.
    pub fn open(
        root: &Path,
        writer: &str,
        tables: &[(&str, SchemaRef)],
        config: StoreConfig,
    ) -> Result<StoreWriter, StoreError> {
        check_name("writer", writer)?;
        let invalid = |reason: String| StoreError::InvalidConfig { root: root.to_owned(), reason };
        if config.row_group_rows == 0 {
            return Err(invalid("row_group_rows must be positive".to_owned()));
        }
        let mut by_name = BTreeMap::new();
        for (table, schema) in tables {
            check_name("table", table)?;
            if by_name.insert(table.to_string(), schema.clone()).is_some() {
                return Err(invalid(format!("table `{table}` is registered twice")));
            }
        }
        let new_root = !root.exists();
        let manifests = root.join(MANIFEST_DIR);
        std::fs::create_dir_all(&manifests).map_err(StoreError::io(&manifests))?;
        for table in by_name.keys() {
            generations::ensure_table(root, table)?;
        }
        sync_dir(root)?;
        if new_root && let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }

        let lease = lease::lease(root, writer, &Holder::this_process())?;
        let recovery = recover_writer(root, writer)?;
        {
            // Files' presence decides the fold: not while a compaction swaps a folder in.
            let _adding = TablesLock::shared(root)?;
            fold::fold_manifest(root, writer)?;
        }
        let next_seq = Manifest::read(&manifest_path(root, writer))?.next_seq();
        Ok(StoreWriter {
            root: root.to_owned(),
            name: writer.to_owned(),
            tables: by_name,
            config,
            recovery,
            next_seq,
            accepting: None,
            accepting_windows: None,
            windowed: HashSet::new(),
            windows_full: false,
            segments: BTreeMap::new(),
            input_segment: HashMap::new(),
            committed: HashSet::new(),
            poisoned: None,
            files_committed: 0,
            superseders_seen: superseders_len(root),
            _lease: lease,
            #[cfg(test)]
            fail_point: None,
        })
    }

    /// What opening recovered from this writer's earlier crash.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Writes rows of `input` into `table`. The batch's columns must equal the table's (names,
    /// types, nullability, field metadata; the schema's own metadata is not compared).
    pub fn write(&mut self, table: &str, input: &str, batch: &RecordBatch) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let dir = self.root.join(table);
        let Some(schema) = self.tables.get(table).cloned() else {
            let registered = self.tables.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(StoreError::UnknownTable { dir, table: table.to_owned(), registered });
        };
        if let Some(detail) = schema_mismatch(&schema, &batch.schema()) {
            return Err(StoreError::SchemaMismatch { dir, input: input.to_owned(), detail });
        }
        let finished = self.committed.contains(input)
            || self.input_segment.get(input).is_some_and(|seq| self.segments[seq].inputs[input].finished);
        if finished {
            return Err(StoreError::InputFinished { dir, input: input.to_owned() });
        }
        let seq = self.segment_of(input);
        let rows = batch.num_rows() as u64;
        if rows == 0 {
            return Ok(());
        }
        let result = self.write_part(seq, table, schema, batch);
        self.poison_on_error(result)?;
        *self.input_rows(input).rows.entry(table.to_owned()).or_default() += rows;

        let target = self.config.target_file_bytes;
        let segment = self.segments.get_mut(&seq).expect("an input's segment is uncommitted");
        if segment.accepting && segment.bytes() >= target {
            segment.accepting = false;
            self.windows_full |= self.accepting_windows == Some(seq);
            if self.accepting == Some(seq) {
                self.accepting = None;
            }
            if self.accepting_windows == Some(seq) {
                self.accepting_windows = None;
            }
        }
        Ok(())
    }

    /// Declares `input` windowed: instead of being committed once whole, it is committed a window
    /// at a time by [`Self::commit_window`], and takes rows for as long as the writer is open (a
    /// live feed). Its rows go to segments of their own, apart from whole inputs', so a window
    /// never waits for another input to finish. Declare it before its first rows.
    pub fn set_windowed(&mut self, input: &str) {
        self.windowed.insert(input.to_owned());
    }

    /// Commits the rows `input` (windowed) has written since its last window as window `window`:
    /// they are in the store, and readable, once this returns — or once the other windowed inputs
    /// sharing their segment have committed theirs too (commit every windowed input's window at
    /// once, as a live sink does at each interval). Rows written afterwards go to the next window.
    /// A window with no rows commits nothing unless it is the `last`.
    pub fn commit_window(&mut self, input: &str, window: Window) -> Result<(), StoreError> {
        self.check_poisoned()?;
        self.windowed.insert(input.to_owned());
        self.windows_full = false;
        if !self.input_segment.contains_key(input) && !window.last {
            return Ok(());
        }
        let seq = self.segment_of(input);
        let rows = self.input_rows(input);
        rows.finished = true;
        rows.window = Some(window);
        // Later rows start the next window, in another segment.
        self.input_segment.remove(input);
        let segment = self.segments.get_mut(&seq).expect("an uncommitted segment");
        segment.accepting = false;
        if self.accepting_windows == Some(seq) {
            self.accepting_windows = None;
        }
        if segment.inputs_finished() {
            self.commit(seq)?;
        }
        Ok(())
    }

    /// Whether the open windows' files have reached the target size: time to commit every
    /// windowed input's window (files roll by size as well as by time).
    pub fn windows_due(&self) -> bool {
        self.windows_full
    }

    /// Says every row of `input`, in every table, has been written; commits its segment if that
    /// was its last unfinished input and the segment reached the target size. An input never
    /// written to is committed with no rows (so a re-run skips it); finishing twice is a no-op.
    pub fn finish_input(&mut self, input: &str) -> Result<(), StoreError> {
        self.check_poisoned()?;
        if self.committed.contains(input) {
            return Ok(());
        }
        let seq = self.segment_of(input);
        self.input_rows(input).finished = true;
        let segment = &self.segments[&seq];
        if segment.inputs_finished() && (!segment.accepting || segment.bytes() >= self.config.target_file_bytes) {
            self.commit(seq)?;
        }
        Ok(())
    }

    /// Commits every segment whose inputs are all finished, whatever its size. Segments with
    /// unfinished inputs stay open.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let ready: Vec<u64> = self.segments.iter().filter(|(_, s)| s.inputs_finished()).map(|(&seq, _)| seq).collect();
        for seq in ready {
            self.commit(seq)?;
        }
        Ok(())
    }

    /// Commits what [`Self::flush`] commits, and rolls back the rest at once (deleting its temp
    /// files) instead of leaving it to the next recovery: how a run that stops early leaves a
    /// store nothing to recover. Returns the inputs rolled back (windowed inputs: their open
    /// window).
    pub fn flush_and_discard(&mut self) -> Result<Vec<String>, StoreError> {
        self.flush()?;
        let _adding = TablesLock::shared(&self.root)?;
        let mut discarded = Vec::new();
        for (_, segment) in std::mem::take(&mut self.segments) {
            discarded.extend(segment.inputs.into_keys());
            for part in segment.parts.into_values() {
                drop(part.writer);
                std::fs::remove_file(&part.temp).map_err(StoreError::io(&part.temp))?;
            }
        }
        self.input_segment.clear();
        (self.accepting, self.accepting_windows) = (None, None);
        Ok(discarded)
    }

    /// Part files this writer has committed since it opened.
    pub fn files_committed(&self) -> u64 {
        self.files_committed
    }

    /// Inputs written to or finished but not committed yet.
    pub fn pending_inputs(&self) -> impl Iterator<Item = &str> {
        self.input_segment.keys().map(String::as_str)
    }

    fn check_poisoned(&self) -> Result<(), StoreError> {
        match &self.poisoned {
            None => Ok(()),
            Some(reason) => {
                Err(StoreError::Poisoned { root: self.root.clone(), writer: self.name.clone(), reason: reason.clone() })
            }
        }
    }

    fn poison_on_error<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &result {
            self.poisoned = Some(e.to_string());
        }
        result
    }

    /// The segment holding uncommitted `input`, which joins the accepting one (opened if needed)
    /// if new: whole inputs' or windowed inputs'.
    fn segment_of(&mut self, input: &str) -> u64 {
        if let Some(&seq) = self.input_segment.get(input) {
            return seq;
        }
        let windowed = self.windowed.contains(input);
        let open = if windowed { self.accepting_windows } else { self.accepting };
        let seq = match open {
            Some(seq) => seq,
            None => {
                let seq = self.next_seq;
                self.next_seq += 1;
                let segment = Segment {
                    name: segment_name(&self.name, seq),
                    accepting: true,
                    parts: BTreeMap::new(),
                    inputs: BTreeMap::new(),
                };
                self.segments.insert(seq, segment);
                *(if windowed { &mut self.accepting_windows } else { &mut self.accepting }) = Some(seq);
                seq
            }
        };
        self.segments
            .get_mut(&seq)
            .expect("the accepting segment")
            .inputs
            .insert(input.to_owned(), InputRows::default());
        self.input_segment.insert(input.to_owned(), seq);
        seq
    }

    fn input_rows(&mut self, input: &str) -> &mut InputRows {
        let seq = self.input_segment[input];
        self.segments.get_mut(&seq).and_then(|s| s.inputs.get_mut(input)).expect("an uncommitted input")
    }

    /// Streams `batch` into the segment's temp file for `table`, creating it on the first rows.
    fn write_part(&mut self, seq: u64, table: &str, schema: SchemaRef, batch: &RecordBatch) -> Result<(), StoreError> {
        let segment = self.segments.get_mut(&seq).expect("an uncommitted segment");
        let part = match segment.parts.entry(table.to_owned()) {
            std::collections::btree_map::Entry::Occupied(part) => part.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => {
                let dir = self.root.join(table);
                let temp = dir.join(temp_name(&segment.name));
                let _adding = TablesLock::shared(&self.root)?;
                let file = File::create(&temp).map_err(StoreError::io(&temp))?;
                let props = writer_properties(&self.config, table, &segment.name);
                let writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(StoreError::parquet(&temp))?;
                slot.insert(Part { writer, temp, final_path: dir.join(final_name(&segment.name)), rows: 0 })
            }
        };
        part.writer.write(batch).map_err(StoreError::parquet(&part.temp))?;
        part.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Commits a segment whose inputs are all finished (see the protocol in the module docs).
    fn commit(&mut self, seq: u64) -> Result<(), StoreError> {
        let segment = self.segments.remove(&seq).expect("an uncommitted segment");
        if self.accepting == Some(seq) {
            self.accepting = None;
        }
        if self.accepting_windows == Some(seq) {
            self.accepting_windows = None;
        }
        for (input, rows) in &segment.inputs {
            if self.input_segment.get(input) == Some(&seq) {
                self.input_segment.remove(input);
            }
            if rows.window.is_none() {
                self.committed.insert(input.clone());
            }
        }
        let result = self.commit_segment(segment);
        self.poison_on_error(result)
    }

    fn commit_segment(&mut self, segment: Segment) -> Result<(), StoreError> {
        let mut files = Vec::new();
        let mut renames = Vec::new();
        for (table, mut part) in segment.parts {
            part.writer.finish().map_err(StoreError::parquet(&part.temp))?;
            part.writer.inner().sync_all().map_err(StoreError::io(&part.temp))?;
            files.push(CommittedFile {
                path: format!("{table}/{}", final_name(&segment.name)),
                table,
                rows: part.rows,
            });
            renames.push((part.temp, part.final_path));
        }
        let config = &self.config.config_json;
        let inputs = segment.inputs.into_iter();
        let entry = ManifestEntry {
            segment: segment.name,
            writer: self.name.clone(),
            files,
            inputs: inputs
                .map(|(input, r)| CommittedInput { input, config: config.clone(), rows: r.rows, window: r.window })
                .collect(),
            committed_at: manifest::now_rfc3339(),
            replaces: Vec::new(),
        };
        let manifest = manifest_path(&self.root, &self.name);
        #[cfg(test)]
        super::tests::inject_before_append(self.fail_point, &manifest, &entry)?;
        // The commit point.
        manifest::append(&manifest, &entry)?;
        #[cfg(test)]
        super::tests::inject_after_append(self.fail_point)?;

        self.files_committed += renames.len() as u64;
        let _adding = TablesLock::shared(&self.root)?;
        let mut dirs = BTreeSet::new();
        for (temp, final_path) in renames {
            std::fs::rename(&temp, &final_path).map_err(StoreError::io(&temp))?;
            dirs.insert(final_path.parent().expect("a part file has a folder").to_owned());
        }
        for dir in &dirs {
            sync_dir(dir)?;
        }
        self.fold_if_superseded();
        Ok(())
    }

    /// Folds this writer's manifest once a compaction or removal has committed since it last
    /// did, so a writer that runs for days keeps its manifest short (see [`fold`]). A failure
    /// leaves the manifest as it was, which is just as right, only longer: it is tried again at
    /// the next superseding commit, and at the next open.
    fn fold_if_superseded(&mut self) {
        let seen = superseders_len(&self.root);
        if seen == self.superseders_seen {
            return;
        }
        // Lines waiting on a compaction's swap are folded at a later commit.
        if let Ok(folded) = fold::fold_manifest(&self.root, &self.name)
            && folded.waiting == 0
        {
            self.superseders_seen = seen;
        }
    }
}

/// The compactor's and remover's manifests' sizes and times: they change when either commits.
fn superseders_len(root: &Path) -> [Option<(u64, std::time::SystemTime)>; 2] {
    [COMPACTOR, REMOVER].map(|w| {
        let meta = std::fs::metadata(manifest_path(root, w)).ok()?;
        Some((meta.len(), meta.modified().ok()?))
    })
}

pub(super) fn writer_properties(config: &StoreConfig, table: &str, segment: &str) -> WriterProperties {
    let metadata = [
        ("mudar.schema_version", mudar_schemas::SCHEMA_VERSION.to_string()),
        ("mudar.config", config.config_json.clone()),
        ("mudar.table", table.to_owned()),
        ("mudar.segment", segment.to_owned()),
    ];
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(config.row_group_rows))
        .set_key_value_metadata(Some(metadata.map(|(k, v)| KeyValue::new(k.to_owned(), v)).into()))
        .build()
}

/// How a batch's columns differ from the table's, if they do.
fn schema_mismatch(table: &Schema, batch: &Schema) -> Option<String> {
    if table.fields() == batch.fields() {
        return None;
    }
    let names = |s: &Schema| s.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
    if table.fields().len() != batch.fields().len() {
        return Some(format!(
            "the table has {} columns ({}), the batch {} ({})",
            table.fields().len(),
            names(table),
            batch.fields().len(),
            names(batch)
        ));
    }
    let describe = |f: &Field| {
        let nullable = if f.is_nullable() { "nullable" } else { "non-nullable" };
        let metadata = if f.metadata().is_empty() { String::new() } else { format!(", metadata {:?}", f.metadata()) };
        format!("`{}` {nullable} {:?}{metadata}", f.name(), f.data_type())
    };
    let (i, (t, b)) = table.fields().iter().zip(batch.fields()).enumerate().find(|(_, (t, b))| t != b)?;
    Some(format!("column {i}: the table has {}, the batch {}", describe(t), describe(b)))
}
