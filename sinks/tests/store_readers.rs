//! The store as readers see it: pyarrow, DuckDB and polars open a table's folder with no custom
//! code, and read the committed rows only (not a running writer's temp file, not an orphan).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
use arrow_array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use mudar_sinks::store::{StoreConfig, StoreWriter, committed_inputs, read_manifests, recover};

const EMBED: i32 = 30;

/// The project's Python (`.venv`, set up by `scripts/test.sh`), or `MUDAR_PYTHON`.
fn python() -> PathBuf {
    std::env::var_os("MUDAR_PYTHON")
        .map_or(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"), Into::into)
}

fn hoof_item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Float32, false))
}

fn frames_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("input", DataType::Utf8, false),
        Field::new("frame", DataType::UInt32, false),
        Field::new("time_s", DataType::Float64, false),
        Field::new("beat", DataType::Boolean, false),
        Field::new("hoof", DataType::FixedSizeList(hoof_item(), EMBED), false),
    ]))
}

fn media_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("input", DataType::Utf8, false),
        Field::new("duration_s", DataType::Float64, true),
    ]))
}

/// Frames `start..end` of `input`; the Python script recomputes these values.
fn frames(input: &str, start: u32, end: u32) -> RecordBatch {
    let mut hoof = FixedSizeListBuilder::new(Float32Builder::new(), EMBED).with_field(hoof_item());
    for f in start..end {
        hoof.values().append_slice(&(0..EMBED).map(|j| f as f32 + j as f32 / 32.0).collect::<Vec<_>>());
        hoof.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![input; (end - start) as usize])),
        Arc::new(UInt32Array::from_iter_values(start..end)),
        Arc::new(Float64Array::from_iter_values((start..end).map(|f| f64::from(f) / 8.0))),
        Arc::new(BooleanArray::from_iter((start..end).map(|f| Some(f % 4 == 0)))),
        Arc::new(hoof.finish()),
    ];
    RecordBatch::try_new(frames_schema(), columns).unwrap()
}

fn media(input: &str, duration_s: Option<f64>) -> RecordBatch {
    let columns: Vec<ArrayRef> =
        vec![Arc::new(StringArray::from(vec![input])), Arc::new(Float64Array::from(vec![duration_s]))];
    RecordBatch::try_new(media_schema(), columns).unwrap()
}

fn write_input(w: &mut StoreWriter, input: &str, frame_count: u32) {
    for start in (0..frame_count).step_by(40) {
        w.write("frames", input, &frames(input, start, (start + 40).min(frame_count))).unwrap();
    }
    w.write("media", input, &media(input, (frame_count > 0).then_some(f64::from(frame_count) / 8.0))).unwrap();
    w.finish_input(input).unwrap();
}

#[test]
fn pyarrow_duckdb_and_polars_read_the_committed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let config_json = r#"{"fps": 8, "hoof_bins": 30}"#;
    let tables = [("frames", frames_schema()), ("media", media_schema())];
    let config = StoreConfig { target_file_bytes: 20_000, row_group_rows: 50, config_json: config_json.to_owned() };
    let inputs = [("a.mp4", 130), ("b.mp4", 45), ("c.mp4", 0), ("d.mp4", 70)];

    // Two writers, several segments.
    let mut w0 = StoreWriter::open(&root, "w0", &tables, config.clone()).unwrap();
    for (input, frame_count) in &inputs[..3] {
        write_input(&mut w0, input, *frame_count);
    }
    w0.flush().unwrap();
    let mut w1 = StoreWriter::open(&root, "w1", &tables, config.clone()).unwrap();
    write_input(&mut w1, inputs[3].0, inputs[3].1);
    w1.flush().unwrap();
    assert!(read_manifests(&root).unwrap().len() > 2, "several segments");

    // An orphan (a part file no manifest names) is removed by recovery.
    let committed: Vec<String> = read_manifests(&root)
        .unwrap()
        .iter()
        .flat_map(|e| e.files.iter().filter(|f| f.table == "frames").map(|f| f.path.clone()))
        .collect();
    let orphan = root.join("frames/part-w9-000001.parquet");
    std::fs::copy(root.join(&committed[0]), &orphan).unwrap();
    assert_eq!(recover(&root).unwrap().deleted_orphans, 1);
    assert!(!orphan.exists());

    // A writer still running: its rows are in a temp file, not committed.
    let mut w2 = StoreWriter::open(&root, "w2", &tables, config).unwrap();
    w2.write("frames", "e.mp4", &frames("e.mp4", 0, 20)).unwrap();
    let temp_file = ".part-w2-000001.parquet.tmp";
    assert!(root.join("frames").join(temp_file).is_file());
    assert!(!committed_inputs(&root).unwrap().contains_key("e.mp4"));

    let files: Vec<&str> = committed.iter().map(|p| p.strip_prefix("frames/").unwrap()).collect();
    let expected = serde_json::json!({
        "frames": inputs.iter().filter(|(_, n)| *n > 0).map(|(i, n)| (*i, *n)).collect::<std::collections::BTreeMap<_, _>>(),
        "media": inputs.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        "files": files,
        "temp_file": temp_file,
        "config": config_json,
        "schema_version": mudar_schemas::SCHEMA_VERSION.to_string(),
    });
    std::fs::write(dir.path().join("expected.json"), expected.to_string()).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/store_readers.py");
    let output = std::process::Command::new(python()).arg(&script).arg(&root).output().unwrap_or_else(|e| {
        panic!("cannot run {} ({e}): run scripts/test.sh, which sets up .venv with the readers", python().display())
    });
    assert!(output.status.success(), "{} failed:\n{}", script.display(), String::from_utf8_lossy(&output.stderr));
    drop(w2);
}
