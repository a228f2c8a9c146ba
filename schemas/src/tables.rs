//! The Arrow schemas of the feature store's tables, and record batches from
//! rows. Vectors are `FixedSizeList<Float32>` (HOOF) or `List<Float64>`
//! (event times); every per-frame row has `time_s`, media time in seconds.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, Float64Builder, ListBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    UInt32Array, UInt64Array,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::rows::{AudioFrameRow, ClipRow, FeedEventRow, MediaRow, VideoFrameRow, VideoRow};

pub const MEDIA: &str = "media";
pub const AUDIO_FRAMES: &str = "audio_frames";
pub const VIDEO_FRAMES: &str = "video_frames";
pub const CLIPS: &str = "clips";
pub const VIDEOS: &str = "videos";
pub const FEED_EVENTS: &str = "feed_events";

fn schema(fields: Vec<Field>) -> SchemaRef {
    let metadata = HashMap::from([("mudar.schema_version".to_owned(), crate::SCHEMA_VERSION.to_string())]);
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

fn input_field() -> Field {
    Field::new("input", DataType::Utf8, false)
}

/// When a live input's rows were captured: its media time plus an offset to
/// the wall clock (UTC), fixed for one connection to the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capture {
    /// Capture time minus media time, µs.
    pub offset_us: i64,
    /// The connection (0, then one more at each reconnect).
    pub connection: u32,
}

impl Capture {
    /// The capture time (µs since the Unix epoch) of media time `time_s`.
    pub fn at(&self, time_s: f64) -> i64 {
        self.offset_us + (time_s * 1e6).round() as i64
    }
}

/// `capture_time` (UTC, µs) and `connection` of live inputs' rows; null for files.
fn capture_fields() -> [Field; 2] {
    [
        Field::new("capture_time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("connection", DataType::UInt32, true),
    ]
}

fn capture_columns(capture: Option<Capture>, times: impl Iterator<Item = f64>) -> [ArrayRef; 2] {
    let times: Vec<f64> = times.collect();
    let stamps = times.iter().map(|&t| capture.map(|c| c.at(t))).collect::<TimestampMicrosecondArray>();
    let connection = times.iter().map(|_| capture.map(|c| c.connection)).collect::<UInt32Array>();
    [Arc::new(stamps.with_timezone("UTC")), Arc::new(connection)]
}

/// The non-nullable child of vector columns.
fn item(data_type: DataType) -> Arc<Field> {
    Arc::new(Field::new("item", data_type, false))
}

fn times_field(name: &str) -> Field {
    Field::new(name, DataType::List(item(DataType::Float64)), false)
}

pub fn media_schema() -> SchemaRef {
    schema(vec![
        input_field(),
        Field::new("status", DataType::Utf8, false),
        Field::new("error_kind", DataType::Utf8, true),
        Field::new("error", DataType::Utf8, true),
        Field::new("duration_s", DataType::Float64, true),
        Field::new("has_audio", DataType::Boolean, false),
        Field::new("has_video", DataType::Boolean, false),
        Field::new("audio_frames", DataType::UInt64, false),
        Field::new("video_frames", DataType::UInt64, false),
        Field::new("clips", DataType::UInt64, false),
        Field::new("onsets", DataType::UInt64, false),
        Field::new("visual_beats", DataType::UInt64, false),
        capture_fields()[0].clone(),
        capture_fields()[1].clone(),
    ])
}

pub fn audio_frames_schema() -> SchemaRef {
    schema(vec![
        input_field(),
        Field::new("frame", DataType::UInt32, false),
        Field::new("time_s", DataType::Float64, false),
        Field::new("onset_envelope", DataType::Float32, false),
        Field::new("onset", DataType::Boolean, false),
        capture_fields()[0].clone(),
        capture_fields()[1].clone(),
    ])
}

/// `hoof_bins`: the HOOF's B, the width of the `hoof` vectors.
/// What shapes the `video_frames` and `clips` tables of a store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// HOOF bins (B).
    pub hoof_bins: usize,
    /// The embedding size E of the model whose outputs the store holds
    /// (`rhythm_probability`, `rhythm`, `visual_embedding`, `audio_embedding`);
    /// `None`: a store without model columns.
    pub embedding_dim: Option<usize>,
}

fn vector_field(name: &str, dim: usize, nullable: bool) -> Field {
    Field::new(name, DataType::FixedSizeList(item(DataType::Float32), dim as i32), nullable)
}

pub fn video_frames_schema(layout: Layout) -> SchemaRef {
    let mut fields = vec![
        input_field(),
        Field::new("frame", DataType::UInt32, false),
        Field::new("time_s", DataType::Float64, false),
        vector_field("hoof", layout.hoof_bins, false),
        Field::new("motion_energy", DataType::Float32, false),
        Field::new("impact", DataType::Float32, false),
        Field::new("visual_beat", DataType::Boolean, false),
    ];
    fields.extend(capture_fields());
    if layout.embedding_dim.is_some() {
        fields.push(Field::new("rhythm_probability", DataType::Float32, true));
        fields.push(Field::new("rhythm", DataType::Boolean, true));
    }
    schema(fields)
}

pub fn clips_schema(layout: Layout) -> SchemaRef {
    let mut fields = clips_fields();
    fields.extend(capture_fields());
    if let Some(dim) = layout.embedding_dim {
        fields.push(vector_field("visual_embedding", dim, true));
        fields.push(vector_field("audio_embedding", dim, true));
    }
    schema(fields)
}

fn clips_fields() -> Vec<Field> {
    vec![
        input_field(),
        Field::new("clip", DataType::UInt32, false),
        Field::new("start_s", DataType::Float64, false),
        Field::new("end_s", DataType::Float64, false),
        Field::new("tempo_bpm", DataType::Float64, false),
        times_field("onset_times"),
        times_field("beat_times"),
        times_field("visual_beat_times"),
        Field::new("mean_motion", DataType::Float32, false),
        Field::new("beat_align_music_to_motion", DataType::Float64, true),
        Field::new("beat_align_motion_to_music", DataType::Float64, true),
    ]
}

fn inputs(input: &str, n: usize) -> ArrayRef {
    Arc::new(StringArray::from(vec![input; n]))
}

/// `capture`: for a live feed's connection, its `capture_time` is the media row's start (media
/// time `start_s`).
pub fn media_batch(input: &str, capture: Option<(Capture, f64)>, rows: &[MediaRow]) -> Result<RecordBatch, ArrowError> {
    let column =
        |f: &dyn Fn(&MediaRow) -> Option<String>| -> ArrayRef { Arc::new(rows.iter().map(f).collect::<StringArray>()) };
    RecordBatch::try_new(
        media_schema(),
        vec![
            inputs(input, rows.len()),
            column(&|r| Some(r.status.clone())),
            column(&|r| r.error_kind.clone()),
            column(&|r| r.error.clone()),
            Arc::new(rows.iter().map(|r| r.duration_s).collect::<Float64Array>()),
            Arc::new(rows.iter().map(|r| Some(r.has_audio)).collect::<BooleanArray>()),
            Arc::new(rows.iter().map(|r| Some(r.has_video)).collect::<BooleanArray>()),
            Arc::new(rows.iter().map(|r| r.audio_frames).collect::<UInt64Array>()),
            Arc::new(rows.iter().map(|r| r.video_frames).collect::<UInt64Array>()),
            Arc::new(rows.iter().map(|r| r.clips).collect::<UInt64Array>()),
            Arc::new(rows.iter().map(|r| r.onsets).collect::<UInt64Array>()),
            Arc::new(rows.iter().map(|r| r.visual_beats).collect::<UInt64Array>()),
        ]
        .into_iter()
        .chain(capture_columns(capture.map(|(c, _)| c), rows.iter().map(|_| capture.map_or(0.0, |(_, s)| s))))
        .collect(),
    )
}

pub fn feed_events_schema() -> SchemaRef {
    schema(vec![
        input_field(),
        Field::new("time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("connection", DataType::UInt32, false),
        Field::new("event", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, true),
        Field::new("message", DataType::Utf8, true),
        Field::new("attempt", DataType::UInt32, false),
        Field::new("backoff_s", DataType::Float64, true),
        Field::new("frames_dropped", DataType::UInt64, false),
    ])
}

pub fn feed_events_batch(input: &str, rows: &[FeedEventRow]) -> Result<RecordBatch, ArrowError> {
    let text = |f: &dyn Fn(&FeedEventRow) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    RecordBatch::try_new(
        feed_events_schema(),
        vec![
            inputs(input, rows.len()),
            Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.time_us)).with_timezone("UTC")),
            Arc::new(rows.iter().map(|r| r.connection).collect::<UInt32Array>()),
            text(&|r| Some(&r.event)),
            text(&|r| r.reason.as_deref()),
            text(&|r| r.message.as_deref()),
            Arc::new(rows.iter().map(|r| r.attempt).collect::<UInt32Array>()),
            Arc::new(rows.iter().map(|r| r.backoff_s).collect::<Float64Array>()),
            Arc::new(rows.iter().map(|r| r.frames_dropped).collect::<UInt64Array>()),
        ],
    )
}

/// `capture`: for a live input's rows, when they were captured.
pub fn audio_frames_batch(
    input: &str,
    capture: Option<Capture>,
    rows: &[AudioFrameRow],
) -> Result<RecordBatch, ArrowError> {
    let mut columns: Vec<ArrayRef> = vec![
        inputs(input, rows.len()),
        Arc::new(rows.iter().map(|r| r.frame).collect::<UInt32Array>()),
        Arc::new(rows.iter().map(|r| r.time_s).collect::<Float64Array>()),
        Arc::new(rows.iter().map(|r| r.onset_envelope).collect::<Float32Array>()),
        Arc::new(rows.iter().map(|r| Some(r.onset)).collect::<BooleanArray>()),
    ];
    columns.extend(capture_columns(capture, rows.iter().map(|r| r.time_s)));
    RecordBatch::try_new(audio_frames_schema(), columns)
}

pub fn video_frames_batch(
    input: &str,
    layout: Layout,
    capture: Option<Capture>,
    rows: &[VideoFrameRow],
) -> Result<RecordBatch, ArrowError> {
    let mut hoof = vectors(layout.hoof_bins, rows.len());
    for row in rows {
        append_vector(&mut hoof, Some(&row.hoof), layout.hoof_bins, || format!("frame {}: HOOF", row.frame))?;
    }
    let mut columns: Vec<ArrayRef> = vec![
        inputs(input, rows.len()),
        Arc::new(rows.iter().map(|r| r.frame).collect::<UInt32Array>()),
        Arc::new(rows.iter().map(|r| r.time_s).collect::<Float64Array>()),
        Arc::new(hoof.finish()),
        Arc::new(rows.iter().map(|r| r.motion_energy).collect::<Float32Array>()),
        Arc::new(rows.iter().map(|r| r.impact).collect::<Float32Array>()),
        Arc::new(rows.iter().map(|r| Some(r.visual_beat)).collect::<BooleanArray>()),
    ];
    columns.extend(capture_columns(capture, rows.iter().map(|r| r.time_s)));
    if layout.embedding_dim.is_some() {
        columns.push(Arc::new(rows.iter().map(|r| r.rhythm_probability).collect::<Float32Array>()));
        columns.push(Arc::new(rows.iter().map(|r| r.rhythm).collect::<BooleanArray>()));
    }
    RecordBatch::try_new(video_frames_schema(layout), columns)
}

fn vectors(dim: usize, rows: usize) -> FixedSizeListBuilder<Float32Builder> {
    FixedSizeListBuilder::with_capacity(Float32Builder::new(), dim as i32, rows).with_field(item(DataType::Float32))
}

/// Appends one vector of `dim` values, or a null.
fn append_vector(
    list: &mut FixedSizeListBuilder<Float32Builder>,
    values: Option<&[f32]>,
    dim: usize,
    what: impl Fn() -> String,
) -> Result<(), ArrowError> {
    match values {
        Some(values) if values.len() != dim => {
            Err(ArrowError::InvalidArgumentError(format!("{} has {} values, the table {dim}", what(), values.len())))
        }
        Some(values) => {
            list.values().append_slice(values);
            list.append(true);
            Ok(())
        }
        None => {
            list.values().append_nulls(dim);
            list.append(false);
            Ok(())
        }
    }
}

/// A clip's `capture_time` is its start's.
pub fn clips_batch(
    input: &str,
    layout: Layout,
    capture: Option<Capture>,
    rows: &[ClipRow],
) -> Result<RecordBatch, ArrowError> {
    let times = |f: &dyn Fn(&ClipRow) -> &[f64]| -> ArrayRef {
        let mut list = ListBuilder::new(Float64Builder::new()).with_field(item(DataType::Float64));
        for row in rows {
            list.values().append_slice(f(row));
            list.append(true);
        }
        Arc::new(list.finish())
    };
    let mut columns: Vec<ArrayRef> = vec![
        inputs(input, rows.len()),
        Arc::new(rows.iter().map(|r| r.clip).collect::<UInt32Array>()),
        Arc::new(rows.iter().map(|r| r.start_s).collect::<Float64Array>()),
        Arc::new(rows.iter().map(|r| r.end_s).collect::<Float64Array>()),
        Arc::new(rows.iter().map(|r| r.tempo_bpm).collect::<Float64Array>()),
        times(&|r| &r.onset_times),
        times(&|r| &r.beat_times),
        times(&|r| &r.visual_beat_times),
        Arc::new(rows.iter().map(|r| r.mean_motion).collect::<Float32Array>()),
        Arc::new(rows.iter().map(|r| r.beat_align_music_to_motion).collect::<Float64Array>()),
        Arc::new(rows.iter().map(|r| r.beat_align_motion_to_music).collect::<Float64Array>()),
    ];
    columns.extend(capture_columns(capture, rows.iter().map(|r| r.start_s)));
    if let Some(dim) = layout.embedding_dim {
        for (name, of) in [
            ("visual", (|r: &ClipRow| r.visual_embedding.as_deref()) as fn(&ClipRow) -> Option<&[f32]>),
            ("audio", |r: &ClipRow| r.audio_embedding.as_deref()),
        ] {
            let mut list = vectors(dim, rows.len());
            for row in rows {
                append_vector(&mut list, of(row), dim, || format!("clip {}: the {name} embedding", row.clip))?;
            }
            columns.push(Arc::new(list.finish()));
        }
    }
    RecordBatch::try_new(clips_schema(layout), columns)
}

pub fn videos_schema() -> SchemaRef {
    schema(vec![
        input_field(),
        Field::new("duration_s", DataType::Float64, true),
        Field::new("clips", DataType::UInt64, false),
        Field::new("tempo_bpm", DataType::Float64, true),
        Field::new("onsets", DataType::UInt64, false),
        Field::new("visual_beats", DataType::UInt64, false),
        Field::new("beat_align_music_to_motion", DataType::Float64, true),
        Field::new("beat_align_motion_to_music", DataType::Float64, true),
    ])
}

/// The `videos` table from (input, row) pairs.
pub fn videos_batch(rows: &[(String, VideoRow)]) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new(
        videos_schema(),
        vec![
            Arc::new(rows.iter().map(|(input, _)| Some(input.as_str())).collect::<StringArray>()),
            Arc::new(rows.iter().map(|(_, r)| r.duration_s).collect::<Float64Array>()),
            Arc::new(rows.iter().map(|(_, r)| r.clips).collect::<UInt64Array>()),
            Arc::new(rows.iter().map(|(_, r)| r.tempo_bpm).collect::<Float64Array>()),
            Arc::new(rows.iter().map(|(_, r)| r.onsets).collect::<UInt64Array>()),
            Arc::new(rows.iter().map(|(_, r)| r.visual_beats).collect::<UInt64Array>()),
            Arc::new(rows.iter().map(|(_, r)| r.beat_align_music_to_motion).collect::<Float64Array>()),
            Arc::new(rows.iter().map(|(_, r)| r.beat_align_motion_to_music).collect::<Float64Array>()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float32Type;

    #[test]
    fn batches_match_their_schemas() {
        let rows = [VideoFrameRow {
            frame: 3,
            time_s: 0.375,
            hoof: vec![0.5, 0.25, 0.25],
            motion_energy: 1.5,
            impact: 0.2,
            visual_beat: true,
            rhythm_probability: None,
            rhythm: None,
        }];
        let plain = Layout { hoof_bins: 3, embedding_dim: None };
        let batch = video_frames_batch("a.mp4", plain, None, &rows).unwrap();
        assert_eq!(batch.num_rows(), 1);
        let hoof = batch.column_by_name("hoof").unwrap().as_fixed_size_list();
        assert_eq!(hoof.value(0).as_primitive::<Float32Type>().values().to_vec(), vec![0.5, 0.25, 0.25]);
        assert!(batch.column_by_name("rhythm_probability").is_none());
        assert!(video_frames_batch("a.mp4", Layout { hoof_bins: 4, ..plain }, None, &rows).is_err());
        let with_model = Layout { hoof_bins: 3, embedding_dim: Some(2) };
        let batch = video_frames_batch("a.mp4", with_model, None, &rows).unwrap();
        assert!(batch.column_by_name("rhythm_probability").unwrap().is_null(0));
        assert!(batch.column_by_name("rhythm").unwrap().is_null(0));

        let clip = ClipRow {
            clip: 0,
            start_s: 1.0,
            end_s: 9.0,
            tempo_bpm: 120.0,
            onset_times: vec![1.5, 2.0],
            beat_times: vec![1.5],
            visual_beat_times: vec![],
            mean_motion: 0.5,
            beat_align_music_to_motion: None,
            beat_align_motion_to_music: None,
            visual_embedding: Some(vec![0.6, 0.8]),
            audio_embedding: None,
        };
        let batch = clips_batch("a.mp4", plain, None, std::slice::from_ref(&clip)).unwrap();
        assert_eq!(batch.column_by_name("onset_times").unwrap().as_list::<i32>().value(0).len(), 2);
        assert!(batch.column_by_name("beat_align_music_to_motion").unwrap().is_null(0));
        assert!(batch.column_by_name("visual_embedding").is_none());
        let batch = clips_batch("a.mp4", with_model, None, std::slice::from_ref(&clip)).unwrap();
        let visual = batch.column_by_name("visual_embedding").unwrap().as_fixed_size_list();
        assert_eq!(visual.value(0).as_primitive::<Float32Type>().values().to_vec(), vec![0.6, 0.8]);
        assert!(batch.column_by_name("audio_embedding").unwrap().is_null(0));
        let wrong = ClipRow { audio_embedding: Some(vec![1.0]), ..clip.clone() };
        assert!(clips_batch("a.mp4", with_model, None, &[wrong]).is_err());
        // A live input's rows carry their capture time: media time plus the connection's offset.
        let capture = Capture { offset_us: 1_765_000_000_000_000, connection: 2 };
        let live = clips_batch("rtsp://cam/a", plain, Some(capture), std::slice::from_ref(&clip)).unwrap();
        let stamps =
            live.column_by_name("capture_time").unwrap().as_primitive::<arrow_array::types::TimestampMicrosecondType>();
        assert_eq!(stamps.value(0), 1_765_000_000_000_000 + 1_000_000);
        assert_eq!(
            live.column_by_name("connection").unwrap().as_primitive::<arrow_array::types::UInt32Type>().value(0),
            2
        );
        assert!(batch.column_by_name("capture_time").unwrap().is_null(0));
        let media = media_batch("bad.mp4", None, &[MediaRow { status: "error".into(), ..Default::default() }]).unwrap();
        assert_eq!(media.schema().metadata()["mudar.schema_version"], crate::SCHEMA_VERSION.to_string());
    }
}
