//! Round trips through the Rust Parquet reader, and crashes at every step of the commit protocol.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, UInt32Type};
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::manifest::ManifestEntry;
use super::*;

thread_local! {
    /// Makes this thread's next compactions stop between their commit and their swaps.
    pub(super) static CRASH_BEFORE_SWAP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Where a test makes a commit fail, as a crash there would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailPoint {
    /// Files closed and fsynced, manifest untouched.
    FilesSynced,
    /// Half of the manifest line written, no newline.
    TornLine,
    /// Manifest line appended, temp files not renamed.
    Committed,
}

pub(super) fn inject_before_append(
    fail_point: Option<FailPoint>,
    manifest: &Path,
    entry: &ManifestEntry,
) -> Result<(), StoreError> {
    match fail_point {
        Some(FailPoint::FilesSynced) => Err(StoreError::Injected(FailPoint::FilesSynced)),
        Some(FailPoint::TornLine) => {
            let line = serde_json::to_vec(entry).unwrap();
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(manifest).unwrap();
            file.write_all(&line[..line.len() / 2]).unwrap();
            Err(StoreError::Injected(FailPoint::TornLine))
        }
        _ => Ok(()),
    }
}

pub(super) fn inject_after_append(fail_point: Option<FailPoint>) -> Result<(), StoreError> {
    match fail_point {
        Some(FailPoint::Committed) => Err(StoreError::Injected(FailPoint::Committed)),
        _ => Ok(()),
    }
}

const EMBED: i32 = 4;

fn frames_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("input", DataType::Utf8, false),
        Field::new("frame", DataType::UInt32, false),
        Field::new("time_s", DataType::Float64, false),
        Field::new("moving", DataType::Boolean, true),
    ]))
}

fn clips_schema() -> SchemaRef {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    Arc::new(Schema::new(vec![
        Field::new("input", DataType::Utf8, false),
        Field::new("clip", DataType::UInt32, false),
        Field::new("embedding", DataType::FixedSizeList(item, EMBED), false),
    ]))
}

fn tables() -> Vec<(&'static str, SchemaRef)> {
    vec![("frames", frames_schema()), ("clips", clips_schema())]
}

fn input_name(i: usize) -> String {
    format!("video-{i}.mp4")
}

/// Frames of input `i` in `start..end`.
fn frames(i: usize, start: u32, end: u32) -> RecordBatch {
    let n = (end - start) as usize;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![input_name(i); n])),
        Arc::new(UInt32Array::from_iter_values(start..end)),
        Arc::new(Float64Array::from_iter_values((start..end).map(|f| f as f64 / 8.0 + i as f64))),
        Arc::new(BooleanArray::from_iter((start..end).map(|f| (f % 5 != 0).then_some(f % 2 == 0)))),
    ];
    RecordBatch::try_new(frames_schema(), columns).unwrap()
}

/// Clips of input `i` in `0..n`.
fn clips(i: usize, n: u32) -> RecordBatch {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let mut embedding = FixedSizeListBuilder::new(Float32Builder::new(), EMBED).with_field(item);
    for c in 0..n {
        for j in 0..EMBED {
            embedding.values().append_value(i as f32 * 100.0 + c as f32 + j as f32 * 0.25);
        }
        embedding.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![input_name(i); n as usize])),
        Arc::new(UInt32Array::from_iter_values(0..n)),
        Arc::new(embedding.finish()),
    ];
    RecordBatch::try_new(clips_schema(), columns).unwrap()
}

/// Frames of input `i`.
fn frame_count(i: usize) -> u32 {
    150 + 37 * i as u32
}

/// Writes the rows of input `i`: its frames in batches of 64, then `i % 3` clips; or only
/// `stop_after_batches` batches of frames.
fn write_input(w: &mut StoreWriter, i: usize, stop_after_batches: Option<usize>) -> Result<(), StoreError> {
    let input = input_name(i);
    for (batch, start) in (0..frame_count(i)).step_by(64).enumerate() {
        if stop_after_batches == Some(batch) {
            return Ok(());
        }
        w.write("frames", &input, &frames(i, start, (start + 64).min(frame_count(i))))?;
    }
    w.write("clips", &input, &clips(i, i as u32 % 3))?;
    Ok(())
}

fn small_config() -> StoreConfig {
    StoreConfig { target_file_bytes: 6_000, row_group_rows: 100, config_json: r#"{"fps":8}"#.to_owned() }
}

/// One cell as text, for comparing rows across files.
fn cell(column: &ArrayRef, row: usize) -> String {
    if column.is_null(row) {
        return "null".to_owned();
    }
    match column.data_type() {
        DataType::Utf8 => column.as_string::<i32>().value(row).to_owned(),
        DataType::UInt32 => column.as_primitive::<UInt32Type>().value(row).to_string(),
        DataType::Float64 => column.as_primitive::<Float64Type>().value(row).to_string(),
        DataType::Float32 => column.as_primitive::<Float32Type>().value(row).to_string(),
        DataType::Boolean => column.as_boolean().value(row).to_string(),
        DataType::FixedSizeList(_, _) => {
            let values = column.as_fixed_size_list().value(row);
            (0..values.len()).map(|j| cell(&values, j)).collect::<Vec<_>>().join(";")
        }
        other => panic!("no cell for {other}"),
    }
}

/// The committed files of a table (what readers see), each with its Parquet metadata.
fn part_files(root: &Path, table: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join(table))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    paths.sort();
    paths
}

/// Every row of a table, sorted: a multiset to compare stores with.
fn rows(root: &Path, table: &str) -> Vec<String> {
    let mut rows = Vec::new();
    for path in part_files(root, table) {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap().build().unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            for row in 0..batch.num_rows() {
                rows.push(batch.columns().iter().map(|c| cell(c, row)).collect::<Vec<_>>().join("|"));
            }
        }
    }
    rows.sort();
    rows
}

/// Hidden files left in the table folders (temp files).
fn temp_files(root: &Path) -> Vec<PathBuf> {
    tables()
        .iter()
        .flat_map(|(t, _)| std::fs::read_dir(root.join(t)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with('.'))
        .collect()
}

/// An uninterrupted run over `inputs`.
fn clean_run(root: &Path, inputs: std::ops::Range<usize>) {
    let mut w = StoreWriter::open(root, "w0", &tables(), small_config()).unwrap();
    for i in inputs {
        write_input(&mut w, i, None).unwrap();
        w.finish_input(&input_name(i)).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn part_names_parse() {
    assert_eq!(PartName::parse("part-w-1-000012.parquet"), Some(PartName { writer: "w-1", seq: 12, temp: false }));
    assert_eq!(PartName::parse(".part-w0-000003.parquet.tmp"), Some(PartName { writer: "w0", seq: 3, temp: true }));
    for other in ["part-w0.parquet", "part--000001.parquet", "part-w0-1x.parquet", "data.parquet", ".part-w0-1.parquet"]
    {
        assert_eq!(PartName::parse(other), None, "{other}");
    }
}

#[test]
fn roundtrip_rows_metadata_and_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let config = StoreConfig { target_file_bytes: u64::MAX, ..small_config() };
    let mut w = StoreWriter::open(&root, "w0", &tables(), config).unwrap();
    for i in 0..3 {
        write_input(&mut w, i, None).unwrap();
        w.finish_input(&input_name(i)).unwrap();
    }
    w.finish_input("no-rows.mp4").unwrap();
    assert!(part_files(&root, "frames").is_empty(), "nothing is committed before flush");
    w.flush().unwrap();
    assert_eq!(w.pending_inputs().count(), 0);

    // Rows, per table.
    let mut want_frames: Vec<String> = Vec::new();
    let mut want_clips: Vec<String> = Vec::new();
    for i in 0..3 {
        let (f, c) = (frames(i, 0, frame_count(i)), clips(i, i as u32 % 3));
        want_frames
            .extend((0..f.num_rows()).map(|r| f.columns().iter().map(|c| cell(c, r)).collect::<Vec<_>>().join("|")));
        want_clips
            .extend((0..c.num_rows()).map(|r| c.columns().iter().map(|c| cell(c, r)).collect::<Vec<_>>().join("|")));
    }
    want_frames.sort();
    want_clips.sort();
    assert_eq!(rows(&root, "frames"), want_frames);
    assert_eq!(rows(&root, "clips"), want_clips);

    // One segment: one file per table, named in one manifest line with per-input row counts.
    let entries = read_manifests(&root).unwrap();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.segment, "w0-000001");
    let file_rows: BTreeMap<_, _> = entry.files.iter().map(|f| (f.table.as_str(), f.rows)).collect();
    assert_eq!(file_rows, BTreeMap::from([("clips", 3), ("frames", 150 + 187 + 224)]));
    assert_eq!(entry.files[0].path, "clips/part-w0-000001.parquet");
    let input_rows: BTreeMap<_, _> = entry.inputs.iter().map(|i| (i.input.as_str(), i.rows.clone())).collect();
    assert_eq!(input_rows["video-0.mp4"], BTreeMap::from([("frames".to_owned(), 150)]));
    assert_eq!(input_rows["video-2.mp4"], BTreeMap::from([("clips".to_owned(), 2), ("frames".to_owned(), 224)]));
    assert_eq!(input_rows["no-rows.mp4"], BTreeMap::new());
    let committed = committed_inputs(&root).unwrap();
    assert_eq!(committed.len(), 4);
    assert!(committed.values().all(|c| c == r#"{"fps":8}"#));

    // Metadata and row groups.
    let frames_file = part_files(&root, "frames").pop().unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&frames_file).unwrap()).unwrap();
    let metadata = reader.metadata().file_metadata();
    let kv: BTreeMap<_, _> =
        metadata.key_value_metadata().unwrap().iter().map(|kv| (kv.key.as_str(), kv.value.clone().unwrap())).collect();
    assert_eq!(kv["mudar.schema_version"], mudar_schemas::SCHEMA_VERSION.to_string());
    assert_eq!(kv["mudar.config"], r#"{"fps":8}"#);
    assert_eq!(kv["mudar.table"], "frames");
    assert_eq!(kv["mudar.segment"], "w0-000001");
    let groups: Vec<i64> = reader.metadata().row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(groups, [100, 100, 100, 100, 100, 61]);
    let compression = reader.metadata().row_group(0).column(0).compression();
    assert!(matches!(compression, parquet::basic::Compression::ZSTD(_)), "{compression:?}");
    assert_eq!(reader.schema().fields(), frames_schema().fields());
    assert!(temp_files(&root).is_empty());
}

#[test]
fn small_target_gives_several_segments_of_whole_inputs() {
    let dir = tempfile::tempdir().unwrap();
    clean_run(dir.path(), 0..8);
    let entries = read_manifests(dir.path()).unwrap();
    assert!(entries.len() > 1 && entries.len() < 8, "{} segments for 8 inputs", entries.len());
    let mut inputs: Vec<String> = entries.iter().flat_map(|e| e.inputs.iter().map(|i| i.input.clone())).collect();
    inputs.sort();
    assert_eq!(inputs, (0..8).map(input_name).collect::<Vec<_>>(), "each input in exactly one segment");
    for entry in &entries {
        for file in &entry.files {
            let path = dir.path().join(&file.path);
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
            assert_eq!(reader.metadata().file_metadata().num_rows() as u64, file.rows, "{}", path.display());
            let per_input: u64 = entry.inputs.iter().filter_map(|i| i.rows.get(&file.table)).sum();
            assert_eq!(per_input, file.rows);
        }
    }
    assert_eq!(rows(dir.path(), "frames").len() as u32, (0..8).map(frame_count).sum::<u32>());
}

#[test]
fn a_full_segment_takes_no_new_inputs_and_commits_when_its_inputs_finish() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = StoreConfig { target_file_bytes: 1, ..small_config() };
    let mut w = StoreWriter::open(root, "w0", &tables(), config).unwrap();
    // Input 5 fills segment 1 while unfinished: input 6 (no rows) starts segment 2, which is
    // below the target, so finishing input 6 does not commit it.
    write_input(&mut w, 5, Some(2)).unwrap();
    w.finish_input(&input_name(6)).unwrap();
    // Input 5 keeps writing into segment 1, which commits as soon as input 5 finishes.
    w.write("frames", &input_name(5), &frames(5, 128, frame_count(5))).unwrap();
    w.write("clips", &input_name(5), &clips(5, 2)).unwrap();
    assert!(read_manifests(root).unwrap().is_empty());
    w.finish_input(&input_name(5)).unwrap();
    let entries = read_manifests(root).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].segment.as_str(), entries[0].inputs.len()), ("w0-000001", 1));
    let rows_5 = BTreeMap::from([("clips".to_owned(), 2), ("frames".to_owned(), u64::from(frame_count(5)))]);
    assert_eq!((entries[0].inputs[0].input.as_str(), &entries[0].inputs[0].rows), ("video-5.mp4", &rows_5));
    assert_eq!(part_files(root, "frames"), [root.join("frames/part-w0-000001.parquet")]);

    // Input 7 joins segment 2 and fills it: it commits when input 7 finishes.
    write_input(&mut w, 7, None).unwrap();
    assert!(root.join("frames/.part-w0-000002.parquet.tmp").is_file());
    w.finish_input(&input_name(7)).unwrap();
    let entries = read_manifests(root).unwrap();
    assert_eq!(entries.len(), 2);
    let inputs: Vec<&str> = entries[1].inputs.iter().map(|i| i.input.as_str()).collect();
    assert_eq!((entries[1].segment.as_str(), inputs), ("w0-000002", vec!["video-6.mp4", "video-7.mp4"]));

    // A segment of inputs without rows has no files; it commits on flush.
    w.finish_input("empty.mp4").unwrap();
    assert_eq!(read_manifests(root).unwrap().len(), 2);
    w.flush().unwrap();
    let entries = read_manifests(root).unwrap();
    assert_eq!((entries[2].segment.as_str(), entries[2].files.len(), entries[2].inputs.len()), ("w0-000003", 0, 1));
    assert!(temp_files(root).is_empty());
    assert_eq!(rows(root, "frames").len() as u32, frame_count(5) + frame_count(7));
}

#[test]
fn caller_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut w = StoreWriter::open(root, "w0", &tables(), small_config()).unwrap();

    let e = w.write("poses", "a", &frames(0, 0, 1)).unwrap_err();
    assert!(matches!(e, StoreError::UnknownTable { .. }), "{e}");
    assert!(e.to_string().contains("clips, frames"), "{e}");

    let e = w.write("clips", "a", &frames(0, 0, 1)).unwrap_err();
    assert!(e.to_string().contains("the table has 3 columns"), "{e}");
    // A nullable `item` child (the builder's default) is not the table's non-nullable one.
    let mut loose = FixedSizeListBuilder::new(Float32Builder::new(), EMBED);
    loose.values().append_slice(&[0.0; EMBED as usize]);
    loose.append(true);
    let loose_schema = Arc::new(Schema::new(vec![
        Field::new("input", DataType::Utf8, false),
        Field::new("clip", DataType::UInt32, false),
        Field::new("embedding", loose.finish().data_type().clone(), false),
    ]));
    let mut loose = FixedSizeListBuilder::new(Float32Builder::new(), EMBED);
    loose.values().append_slice(&[0.0; EMBED as usize]);
    loose.append(true);
    let columns: Vec<ArrayRef> =
        vec![Arc::new(StringArray::from(vec!["a"])), Arc::new(UInt32Array::from(vec![0])), Arc::new(loose.finish())];
    let e = w.write("clips", "a", &RecordBatch::try_new(loose_schema, columns).unwrap()).unwrap_err();
    let StoreError::SchemaMismatch { dir, input, detail } = &e else { panic!("{e}") };
    assert_eq!((dir.as_path(), input.as_str()), (root.join("clips").as_path(), "a"));
    assert!(detail.starts_with("column 2: the table has `embedding`"), "{detail}");

    w.write("frames", "a", &frames(0, 0, 10)).unwrap();
    w.finish_input("a").unwrap();
    let e = w.write("frames", "a", &frames(0, 10, 20)).unwrap_err();
    assert!(matches!(e, StoreError::InputFinished { .. }), "{e}");
    w.flush().unwrap();
    let e = w.write("frames", "a", &frames(0, 10, 20)).unwrap_err();
    assert!(matches!(e, StoreError::InputFinished { .. }), "{e}");
    w.finish_input("a").unwrap();

    for bad in ["", "_x", "a/b", "a.b", "-x"] {
        let e = StoreWriter::open(root, bad, &tables(), small_config()).unwrap_err();
        assert!(matches!(e, StoreError::InvalidName { what: "writer", .. }), "{e}");
    }
    let e = StoreWriter::open(root, "w1", &[("_manifest", frames_schema())], small_config()).unwrap_err();
    assert!(matches!(e, StoreError::InvalidName { what: "table", .. }), "{e}");
    let zero = StoreConfig { row_group_rows: 0, ..small_config() };
    assert!(matches!(StoreWriter::open(root, "w1", &tables(), zero), Err(StoreError::InvalidConfig { .. })));
}

#[test]
fn torn_manifest_line_is_ignored_then_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    clean_run(root, 0..2);
    let manifest = manifest_path(root, "w0");
    let committed = std::fs::read(&manifest).unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(&manifest).unwrap();
    file.write_all(&committed[..committed.len() / 3]).unwrap();
    drop(file);
    assert_eq!(committed_inputs(root).unwrap().len(), 2);
    let recovery = recover(root).unwrap();
    assert_eq!(recovery, Recovery { truncated_manifests: 1, ..Recovery::default() });
    assert_eq!(std::fs::read(&manifest).unwrap(), committed);
    assert!(recover(root).unwrap().is_clean());

    // A complete last line that does not parse was torn too (its commit never returned)...
    std::fs::write(&manifest, [&committed[..], b"\0\0\0\n"].concat()).unwrap();
    assert_eq!(committed_inputs(root).unwrap().len(), 2);
    // ...but a bad line followed by others is corruption.
    std::fs::write(&manifest, [b"{\"segment\"\n", &committed[..]].concat()).unwrap();
    let e = committed_inputs(root).unwrap_err();
    assert!(matches!(e, StoreError::ManifestLine { line: 1, .. }), "{e}");
}

/// Where the first run of [`crash_anywhere_then_resume_gives_the_rows_of_an_uninterrupted_run`]
/// stops.
#[derive(Clone, Copy, Debug)]
enum Crash {
    /// Dropped while writing input 3.
    MidInput,
    /// Dropped with every input finished, before flush.
    BeforeFlush,
    /// A commit (the one of input 4's segment, or a later one) fails there, then dropped.
    Commit(FailPoint),
}

#[test]
fn crash_anywhere_then_resume_gives_the_rows_of_an_uninterrupted_run() {
    const INPUTS: usize = 8;
    let clean = tempfile::tempdir().unwrap();
    clean_run(clean.path(), 0..INPUTS);
    let want = (rows(clean.path(), "frames"), rows(clean.path(), "clips"));
    assert_eq!(want.0.len() as u32, (0..INPUTS).map(frame_count).sum::<u32>());

    let crashes = [
        Crash::MidInput,
        Crash::BeforeFlush,
        Crash::Commit(FailPoint::FilesSynced),
        Crash::Commit(FailPoint::TornLine),
        Crash::Commit(FailPoint::Committed),
    ];
    for crash in crashes {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // First run, until the crash.
        let mut w = StoreWriter::open(root, "w0", &tables(), small_config()).unwrap();
        let result = (|| {
            for i in 0..INPUTS {
                if i == 4
                    && let Crash::Commit(fail_point) = crash
                {
                    w.fail_point = Some(fail_point);
                }
                let stop = matches!(crash, Crash::MidInput if i == 3);
                write_input(&mut w, i, stop.then_some(2))?;
                if stop {
                    return Ok(());
                }
                w.finish_input(&input_name(i))?;
            }
            if !matches!(crash, Crash::BeforeFlush) {
                w.flush()?;
            }
            Ok(())
        })();
        match crash {
            Crash::Commit(fail_point) => {
                assert!(matches!(result, Err(StoreError::Injected(f)) if f == fail_point), "{crash:?}: {result:?}");
                let e = w.flush().unwrap_err();
                assert!(matches!(e, StoreError::Poisoned { .. }), "{e}");
            }
            _ => result.unwrap(),
        }
        drop(w);
        let before = committed_inputs(root).unwrap();
        assert!(!temp_files(root).is_empty(), "{crash:?}: the crash leaves temp files");

        // An orphan too: a final part file no manifest names.
        let orphan = root.join("frames/part-w7-000001.parquet");
        std::fs::copy(&part_files(clean.path(), "frames")[0], &orphan).unwrap();

        let recovery = recover(root).unwrap();
        assert_eq!(recovery.deleted_orphans, 1, "{crash:?}");
        match crash {
            Crash::Commit(FailPoint::Committed) => assert!(recovery.rolled_forward > 0, "{crash:?}"),
            Crash::Commit(FailPoint::TornLine) => assert_eq!(recovery.truncated_manifests, 1),
            _ => assert_eq!(recovery.rolled_forward, 0, "{crash:?}"),
        }
        assert!(recovery.deleted_temps > 0 || recovery.rolled_forward > 0, "{crash:?}: {recovery:?}");
        assert!(temp_files(root).is_empty() && !orphan.exists(), "{crash:?}");
        let committed = committed_inputs(root).unwrap();
        assert_eq!(committed, before, "{crash:?}: recovery changes no commit");
        assert!(committed.len() < INPUTS, "{crash:?}: the crash lost uncommitted inputs");

        // Second run: the inputs not committed.
        let mut w = StoreWriter::open(root, "w0", &tables(), small_config()).unwrap();
        assert!(w.recovery().is_clean());
        for i in (0..INPUTS).filter(|&i| committed.get(&input_name(i)).is_none_or(|c| *c != small_config().config_json))
        {
            write_input(&mut w, i, None).unwrap();
            w.finish_input(&input_name(i)).unwrap();
        }
        w.flush().unwrap();
        assert_eq!((rows(root, "frames"), rows(root, "clips")), want, "{crash:?}");
        assert_eq!(committed_inputs(root).unwrap().len(), INPUTS, "{crash:?}");
        let segments: Vec<String> = read_manifests(root).unwrap().into_iter().map(|e| e.segment).collect();
        let mut unique = segments.clone();
        unique.dedup();
        assert_eq!(unique.len(), segments.len(), "{crash:?}: segment names are never reused: {segments:?}");
        assert!(temp_files(root).is_empty());
    }
}

#[test]
fn open_recovers_its_own_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut w0 = StoreWriter::open(root, "w0", &tables(), small_config()).unwrap();
    let mut w1 = StoreWriter::open(root, "w1", &tables(), small_config()).unwrap();
    write_input(&mut w0, 4, None).unwrap();
    write_input(&mut w1, 1, None).unwrap();
    w1.finish_input(&input_name(1)).unwrap();
    w1.flush().unwrap();
    write_input(&mut w1, 2, None).unwrap();
    drop(w0);

    let w0 = StoreWriter::open(root, "w0", &tables(), small_config()).unwrap();
    assert_eq!(*w0.recovery(), Recovery { deleted_temps: 2, ..Recovery::default() });
    let temps = temp_files(root);
    assert!(!temps.is_empty() && temps.iter().all(|p| p.to_str().unwrap().contains(".part-w1-")), "{temps:?}");

    // w1 goes on undisturbed; both manifests count.
    w1.finish_input(&input_name(2)).unwrap();
    w1.flush().unwrap();
    assert!(manifest_path(root, "w1").exists() && !manifest_path(root, "w0").exists());
    let committed = committed_inputs(root).unwrap();
    assert_eq!(
        committed.keys().map(String::as_str).collect::<std::collections::BTreeSet<_>>(),
        ["video-1.mp4", "video-2.mp4"].into()
    );
    assert!(recover(root).unwrap().is_clean());
}

#[test]
fn missing_committed_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    clean_run(dir.path(), 0..2);
    let lost = part_files(dir.path(), "frames").remove(0);
    std::fs::remove_file(&lost).unwrap();
    let e = recover(dir.path()).unwrap_err();
    assert!(matches!(&e, StoreError::CommittedFileMissing { path, .. } if *path == lost), "{e}");
}

#[test]
fn removing_inputs_leaves_exactly_the_rows_of_a_store_without_them() {
    let (with, without) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    clean_run(with.path(), 0..6);
    // The same rows, written without inputs 1 and 4.
    let mut w = StoreWriter::open(without.path(), "w0", &tables(), small_config()).unwrap();
    for i in [0, 2, 3, 5] {
        write_input(&mut w, i, None).unwrap();
        w.finish_input(&input_name(i)).unwrap();
    }
    w.flush().unwrap();

    let removed: std::collections::BTreeSet<String> = [1, 4].map(input_name).into();
    // A removal killed after its commit, before deleting the old files: keep copies to put back.
    let old_files = part_files(with.path(), "frames");
    let copies: Vec<Vec<u8>> = old_files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let removal = super::remove_inputs(with.path(), &removed, &small_config()).unwrap();
    assert_eq!(removal.removed.len(), 2);
    for (path, bytes) in old_files.iter().zip(&copies) {
        if !path.exists() {
            std::fs::write(path, bytes).unwrap();
        }
    }
    assert!(!super::pending_recovery(with.path()).unwrap().is_clean(), "the old files are orphans now");
    super::recover(with.path()).unwrap();
    for (table, _) in tables() {
        assert_eq!(rows(with.path(), table), rows(without.path(), table), "{table}");
    }
    let committed = super::committed_inputs(with.path()).unwrap();
    assert_eq!(committed.len(), 4);
    assert!(!committed.contains_key(&input_name(1)) && !committed.contains_key(&input_name(4)));
    // A writer reopening after the removal sees its replaced segments as gone, not as damage.
    StoreWriter::open(with.path(), "w0", &tables(), small_config()).unwrap();
    assert_eq!(
        super::read_committed(with.path(), "frames").unwrap().iter().map(|b| b.num_rows()).sum::<usize>(),
        rows(without.path(), "frames").len()
    );
}

#[test]
fn windows_commit_while_the_input_goes_on_and_recovery_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = StoreConfig { target_file_bytes: 1 << 30, ..small_config() };
    let mut w = StoreWriter::open(root, "w0", &tables(), config).unwrap();
    // Two live inputs beside a whole one that never finishes.
    let (a, b) = (input_name(0), input_name(1));
    w.set_windowed(&a);
    w.set_windowed(&b);
    w.write("frames", &input_name(2), &frames(2, 0, 10)).unwrap();
    for window in 0..3u32 {
        w.write("frames", &a, &frames(0, window * 20, window * 20 + 20)).unwrap();
        w.write("frames", &b, &frames(1, window * 5, window * 5 + 5)).unwrap();
        let meta = |last| Window { index: window as u64, connection: 0, last, ..Window::default() };
        w.commit_window(&a, meta(false)).unwrap();
        // Not readable until every windowed input sharing the segment has committed.
        assert_eq!(rows(root, "frames").len(), window as usize * 25);
        w.commit_window(&b, meta(window == 2)).unwrap();
        assert_eq!(rows(root, "frames").len(), (window as usize + 1) * 25);
    }
    // The rows a reader sees are exactly the windows', each once.
    let mut expected: Vec<String> = Vec::new();
    for (i, n) in [(0, 60), (1, 15)] {
        let batch = frames(i, 0, n);
        expected.extend(
            (0..batch.num_rows()).map(|r| batch.columns().iter().map(|c| cell(c, r)).collect::<Vec<_>>().join("|")),
        );
    }
    expected.sort();
    assert_eq!(rows(root, "frames"), expected);
    let entries = read_manifests(root).unwrap();
    assert_eq!(entries.len(), 3, "one manifest line per window interval");
    let windows: Vec<(String, u64, bool)> = entries
        .iter()
        .flat_map(|e| &e.inputs)
        .map(|i| (i.input.clone(), i.window.as_ref().unwrap().index, i.window.as_ref().unwrap().last))
        .collect();
    assert_eq!(windows.len(), 6);
    assert!(windows.contains(&(b.clone(), 2, true)));
    // Windowed inputs are never "done": a re-run does not skip them.
    assert!(committed_inputs(root).unwrap().is_empty());
    assert_eq!(input_configs(root).unwrap().len(), 2);

    // A crash now: the open window of `a` and the unfinished whole input are rolled back, the
    // committed windows stay.
    w.write("frames", &a, &frames(0, 60, 70)).unwrap();
    drop(w);
    let recovery = recover(root).unwrap();
    assert!(recovery.deleted_temps >= 1, "{recovery:?}");
    assert_eq!(rows(root, "frames"), expected);
}

#[test]
fn recovery_leaves_a_live_writer_alone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    clean_run(root, 0..2);
    let before = rows(root, "frames");
    // A live run has uncommitted rows in its temp files.
    let mut live = StoreWriter::open(root, "w0", &tables(), small_config()).unwrap();
    write_input(&mut live, 5, None).unwrap();
    assert!(!temp_files(root).is_empty());
    // A second writer cannot take its name, and another run's recovery leaves its files be.
    assert!(matches!(StoreWriter::open(root, "w0", &tables(), small_config()), Err(StoreError::Busy { .. })));
    let recovery = recover(root).unwrap();
    assert!(recovery.is_clean(), "{recovery:?}");
    assert_eq!(recovery.live_writers, ["w0"]);
    assert!(pending_recovery(root).unwrap().is_clean());
    let second = StoreWriter::open_first_free(root, ["w0".to_owned(), "w1".to_owned()], &tables(), small_config());
    let mut second = second.unwrap();
    write_input(&mut second, 6, None).unwrap();
    second.finish_input(&input_name(6)).unwrap();
    second.flush().unwrap();
    live.finish_input(&input_name(5)).unwrap();
    live.flush().unwrap();
    drop((live, second));
    // Both runs' rows landed, beside the earlier ones.
    let mut expected = before;
    let reference = tempfile::tempdir().unwrap();
    clean_run(reference.path(), 5..7);
    expected.extend(rows(reference.path(), "frames"));
    expected.sort();
    assert_eq!(rows(root, "frames"), expected);
    assert!(recover(root).unwrap().is_clean());
}

/// Every row of a table as a reader that lists the folder and opens what it listed sees it:
/// through the link (`resolve` false, as pyarrow and DuckDB do) or through the generation it
/// resolved first.
fn read_listing(root: &Path, table: &str, resolve: bool) -> std::io::Result<Vec<String>> {
    let dir = if resolve { std::fs::canonicalize(root.join(table))? } else { root.join(table) };
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|p| {
            p.extension().is_some_and(|e| e == "parquet") && !p.file_name().unwrap().to_str().unwrap().starts_with('.')
        })
        .collect();
    names.sort();
    let mut rows = Vec::new();
    for path in names {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path)?)?.build()?;
        for batch in reader {
            let batch = batch.map_err(std::io::Error::other)?;
            for row in 0..batch.num_rows() {
                rows.push(batch.columns().iter().map(|c| cell(c, row)).collect::<Vec<_>>().join("|"));
            }
        }
    }
    rows.sort();
    Ok(rows)
}

#[test]
fn compaction_merges_small_windows_and_readers_never_see_a_mix() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut w =
        StoreWriter::open(root, "w0", &tables(), StoreConfig { target_file_bytes: 1 << 30, ..small_config() }).unwrap();
    let (a, b) = (input_name(0), input_name(1));
    w.set_windowed(&a);
    w.set_windowed(&b);
    for window in 0..24u32 {
        w.write("frames", &a, &frames(0, window * 10, window * 10 + 10)).unwrap();
        w.write("clips", &b, &clips(1, 2)).unwrap();
        let meta = Window { index: window as u64, ..Window::default() };
        w.commit_window(&a, meta.clone()).unwrap();
        w.commit_window(&b, meta).unwrap();
    }
    let want = (rows(root, "frames"), rows(root, "clips"));
    assert_eq!(part_files(root, "frames").len(), 24);
    let configs = input_configs(root).unwrap();

    // Readers list and read the table over and over while compactions run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = [false, true]
        .into_iter()
        .map(|resolve| {
            let (root, stop, want) = (root.to_owned(), stop.clone(), want.0.clone());
            std::thread::spawn(move || {
                let (mut reads, mut errors) = (0, 0);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match read_listing(&root, "frames", resolve) {
                        Ok(rows) => {
                            assert_eq!(rows, want, "a reader saw other rows (resolved: {resolve})");
                            reads += 1;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => errors += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                (reads, errors)
            })
        })
        .collect();
    // A live writer goes on beside: its open window survives the compaction.
    w.write("frames", &a, &frames(0, 240, 250)).unwrap();
    // Two passes: small target first (several groups), then everything into one file.
    let first = compact(root, 2 * std::fs::metadata(&part_files(root, "frames")[0]).unwrap().len() * 4, 100).unwrap();
    assert!(first.segments_after >= 2 && first.segments_before > first.segments_after, "{first:?}");
    let second = compact(root, 1 << 30, 100).unwrap();
    assert!(second.segments_after >= 1, "{second:?}");
    std::thread::sleep(std::time::Duration::from_millis(50));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        let (reads, _errors) = reader.join().unwrap();
        assert!(reads > 0);
    }
    assert_eq!(part_files(root, "frames").len(), 1);
    assert_eq!((rows(root, "frames"), rows(root, "clips")), want);
    assert_eq!(input_configs(root).unwrap(), configs);
    // Each feed's 24 windows folded into one committed input spanning them.
    let windows: Vec<(String, u64, Option<u64>)> = read_manifests(root)
        .unwrap()
        .iter()
        .flat_map(|e| e.inputs.clone())
        .filter_map(|i| Some((i.input.clone(), i.window.as_ref()?.index, i.window?.through)))
        .collect();
    assert_eq!(windows, [(a.clone(), 0, Some(23)), (b.clone(), 0, Some(23))]);
    assert!(recover(root).unwrap().is_clean());
    // The generation readers might still be in stays until the next compaction; older ones go.
    let current = std::fs::read_link(root.join("frames")).unwrap();
    let n: u64 = current.to_str().unwrap().rsplit(".g").next().unwrap().parse().unwrap();
    assert!(n >= 3, "{current:?}");
    assert!(root.join(GENERATIONS_DIR).join(format!("frames.g{}", n - 1)).is_dir());
    assert!(!root.join(GENERATIONS_DIR).join(format!("frames.g{}", n - 2)).exists());

    // The live writer's window, open across both swaps, commits into the current generation.
    w.commit_window(&a, Window { index: 24, ..Window::default() }).unwrap();
    assert_eq!(rows(root, "frames").len(), want.0.len() + 10);
    drop(w);
    // Removing an input from the compacted store leaves exactly the other's rows.
    remove_inputs(root, &[a.clone()].into(), &small_config()).unwrap();
    assert!(rows(root, "frames").is_empty());
    assert_eq!(rows(root, "clips"), want.1);
    assert!(recover(root).unwrap().is_clean());
}

#[test]
fn a_store_from_before_generations_is_converted_by_its_first_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Plain table folders, as stores were made before.
    for (table, _) in tables() {
        std::fs::create_dir_all(root.join(table)).unwrap();
    }
    clean_run(root, 0..8);
    assert!(read_manifests(root).unwrap().len() >= 2);
    assert!(std::fs::symlink_metadata(root.join("frames")).unwrap().is_dir());
    let want = rows(root, "frames");
    let done = compact(root, 1 << 30, 100).unwrap();
    assert_eq!(done.segments_after, 1, "{done:?}");
    assert!(std::fs::symlink_metadata(root.join("frames")).unwrap().file_type().is_symlink());
    assert_eq!(rows(root, "frames"), want);
    assert!(recover(root).unwrap().is_clean());
}

#[test]
fn a_compaction_stopped_after_its_commit_is_finished_by_recovery_or_the_next() {
    for finish_with_recovery in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        clean_run(root, 0..8);
        let want = (rows(root, "frames"), rows(root, "clips"));
        CRASH_BEFORE_SWAP.with(|c| c.set(true));
        assert!(compact(root, 1 << 30, 100).is_err());
        CRASH_BEFORE_SWAP.with(|c| c.set(false));
        // Committed, not swapped: the new files are temps beside the old ones.
        assert!(read_manifests(root).unwrap().iter().any(|e| e.writer == COMPACTOR));
        assert_eq!(rows(root, "frames"), want.0, "readers still see the old files only");
        if finish_with_recovery {
            let recovery = recover(root).unwrap();
            assert!(recovery.rolled_forward > 0 && recovery.deleted_orphans > 0, "{recovery:?}");
        } else {
            compact(root, 1 << 30, 100).unwrap();
        }
        assert_eq!((rows(root, "frames"), rows(root, "clips")), want);
        assert_eq!(part_files(root, "frames").len(), 1);
        assert!(recover(root).unwrap().is_clean());
    }
}

/// All manifest lines of the store, every writer's.
fn manifest_line_count(root: &Path) -> usize {
    let dir = root.join(MANIFEST_DIR);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| std::fs::read_to_string(p).unwrap().lines().count())
        .sum()
}

/// `n` windows of feed `i`, `per` frames each from frame `from`, as a live sink commits them.
fn commit_windows(w: &mut StoreWriter, i: usize, from: u32, n: u32, per: u32) {
    w.set_windowed(&input_name(i));
    for k in 0..n {
        let start = from + k * per;
        w.write("frames", &input_name(i), &frames(i, start, start + per)).unwrap();
        let window = Window { index: k as u64, capture_from_us: Some(start as i64), ..Window::default() };
        w.commit_window(&input_name(i), window).unwrap();
    }
}

#[test]
fn windows_fold_into_one_committed_input_per_run_and_connection() {
    let window = |input: &str, index, connection, last| CommittedInput {
        input: input.to_owned(),
        config: "c".to_owned(),
        rows: [("frames".to_owned(), 10 + index)].into(),
        window: Some(Window {
            index,
            connection,
            capture_from_us: Some(index as i64 * 100),
            capture_to_us: Some(index as i64 * 100 + 99),
            last,
            through: None,
        }),
    };
    let whole = CommittedInput { input: "f.mp4".into(), config: "c".into(), rows: BTreeMap::new(), window: None };
    let inputs = vec![
        window("a", 0, 0, false),
        window("b", 0, 0, false),
        window("a", 1, 0, false),
        whole.clone(),
        window("a", 2, 0, true),
        // The feed's next connection, then a later run starting its windows at 0 again.
        window("a", 3, 1, false),
        window("a", 0, 0, false),
        window("a", 1, 0, false),
    ];
    let folded = super::fold::fold_windows(inputs);
    let span = |index, through, connection, from, to, last| Window {
        index,
        through,
        connection,
        capture_from_us: Some(from),
        capture_to_us: Some(to),
        last,
    };
    let spans: Vec<(&str, Window, u64)> =
        folded.iter().filter_map(|i| Some((i.input.as_str(), i.window.clone()?, i.rows["frames"]))).collect();
    assert_eq!(
        spans,
        [
            ("a", span(0, Some(2), 0, 0, 299, true), 10 + 11 + 12),
            ("b", span(0, None, 0, 0, 99, false), 10),
            ("a", span(3, None, 1, 300, 399, false), 13),
            ("a", span(0, Some(1), 0, 0, 199, false), 10 + 11),
        ]
    );
    assert_eq!(folded.iter().filter(|i| i.window.is_none()).count(), 1);
}

/// A feed committing window after window, compacted now and then: the store's manifests stay
/// a few lines long, whether the writer has stopped (the compactor folds its manifest) or runs
/// on (it folds its own at its next commit), and the rows read back are every window's, once.
#[test]
fn compaction_keeps_manifests_short_however_many_windows() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = StoreConfig { target_file_bytes: 1 << 30, ..small_config() };
    let reference = tempfile::tempdir().unwrap();
    let mut expected = StoreWriter::open(reference.path(), "w0", &tables(), config.clone()).unwrap();

    // A run that stopped: 40 windows.
    let mut w = StoreWriter::open(root, "w0", &tables(), config.clone()).unwrap();
    commit_windows(&mut w, 0, 0, 40, 5);
    commit_windows(&mut expected, 0, 0, 40, 5);
    drop(w);
    assert_eq!(manifest_line_count(root), 40);
    let report = compact(root, 1 << 20, 1000).unwrap();
    // 39 lines dropped, the last emptied.
    assert_eq!(report.manifest_lines_folded, 40, "{report:?}");
    // The writer's last line (the floor of its segment numbers), the compaction's.
    assert_eq!(manifest_line_count(root), 2);
    let live = read_manifests(root).unwrap();
    assert_eq!(live.len(), 1);
    let window = live[0].inputs[0].window.clone().unwrap();
    assert_eq!((live[0].inputs.len(), window.index, window.through), (1, 0, Some(39)));
    assert_eq!(live[0].inputs[0].rows["frames"], 200);

    // A run that goes on while the store is compacted twice.
    let mut w = StoreWriter::open(root, "w0", &tables(), config.clone()).unwrap();
    commit_windows(&mut w, 0, 200, 40, 5);
    commit_windows(&mut expected, 0, 200, 40, 5);
    compact(root, 1 << 20, 1000).unwrap();
    // Its lines, superseded, are dropped at its next commit.
    commit_windows(&mut w, 0, 400, 1, 5);
    commit_windows(&mut expected, 0, 400, 1, 5);
    assert!(manifest_line_count(root) <= 5, "{} lines", manifest_line_count(root));
    commit_windows(&mut w, 0, 405, 40, 5);
    commit_windows(&mut expected, 0, 405, 40, 5);
    compact(root, 1 << 20, 1000).unwrap();
    commit_windows(&mut w, 0, 605, 1, 5);
    commit_windows(&mut expected, 0, 605, 1, 5);
    drop(w);
    // The last compaction took the earlier one's file in: its line goes too.
    compact(root, 1 << 20, 1000).unwrap();
    assert!(manifest_line_count(root) <= 4, "{} lines", manifest_line_count(root));
    drop(expected);
    assert_eq!(rows(root, "frames"), rows(reference.path(), "frames"));
    assert!(recover(root).unwrap().is_clean());
    // Segment names are never reused: a new run's rows land beside the rest.
    let mut w = StoreWriter::open(root, "w0", &tables(), config.clone()).unwrap();
    commit_windows(&mut w, 1, 0, 2, 5);
    drop(w);
    assert_eq!(rows(root, "frames").len(), 610 + 10);

    // A writer that stopped for good keeps its last line, emptied: it holds no chain of
    // compactions alive, round after round.
    let mut w = StoreWriter::open(root, "w7", &tables(), config.clone()).unwrap();
    commit_windows(&mut w, 2, 0, 3, 5);
    drop(w);
    for round in 0..6u32 {
        let mut w = StoreWriter::open(root, "w0", &tables(), config.clone()).unwrap();
        commit_windows(&mut w, 3, round * 50, 10, 5);
        drop(w);
        compact(root, 1 << 20, 1000).unwrap();
        let dump = || {
            std::fs::read_dir(root.join(MANIFEST_DIR))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .map(|p| format!("{}:\n{}", p.display(), std::fs::read_to_string(&p).unwrap()))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(manifest_line_count(root) <= 4, "round {round}: {} lines\n{}", manifest_line_count(root), dump());
    }
    assert_eq!(rows(root, "frames").len(), 620 + 15 + 300);
    assert!(recover(root).unwrap().is_clean());
}
