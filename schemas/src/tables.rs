//! The Arrow schemas of the feature store's tables, and record batches from
//! rows. Vectors are `FixedSizeList<Float32>` (HOOF) or `List<Float64>`
//! (event times); every per-frame row has `time_s`, media time in seconds.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, Float64Builder, ListBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

use crate::rows::{AudioFrameRow, ClipRow, MediaRow, VideoFrameRow, VideoRow};

pub const MEDIA: &str = "media";
pub const AUDIO_FRAMES: &str = "audio_frames";
pub const VIDEO_FRAMES: &str = "video_frames";
pub const CLIPS: &str = "clips";
pub const VIDEOS: &str = "videos";

fn schema(fields: Vec<Field>) -> SchemaRef {
    let metadata = HashMap::from([("mudar.schema_version".to_owned(), crate::SCHEMA_VERSION.to_string())]);
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

fn input_field() -> Field {
    Field::new("input", DataType::Utf8, false)
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
    ])
}

pub fn audio_frames_schema() -> SchemaRef {
    schema(vec![
        input_field(),
        Field::new("frame", DataType::UInt32, false),
        Field::new("time_s", DataType::Float64, false),
        Field::new("onset_envelope", DataType::Float32, false),
        Field::new("onset", DataType::Boolean, false),
    ])
}

/// `hoof_bins`: the HOOF's B, the width of the `hoof` vectors.
pub fn video_frames_schema(hoof_bins: usize) -> SchemaRef {
    schema(vec![
        input_field(),
        Field::new("frame", DataType::UInt32, false),
        Field::new("time_s", DataType::Float64, false),
        Field::new("hoof", DataType::FixedSizeList(item(DataType::Float32), hoof_bins as i32), false),
        Field::new("motion_energy", DataType::Float32, false),
        Field::new("impact", DataType::Float32, false),
        Field::new("visual_beat", DataType::Boolean, false),
    ])
}

pub fn clips_schema() -> SchemaRef {
    schema(vec![
        input_field(),
        Field::new("clip", DataType::UInt32, false),
        Field::new("start_s", DataType::Float64, false),
        Field::new("end_s", DataType::Float64, false),
        Field::new("tempo_bpm", DataType::Float64, false),
        times_field("onset_times"),
        times_field("beat_times"),
        times_field("visual_beat_times"),
        Field::new("mean_motion", DataType::Float32, false),
        Field::new("beat_align_score", DataType::Float64, true),
    ])
}

fn inputs(input: &str, n: usize) -> ArrayRef {
    Arc::new(StringArray::from(vec![input; n]))
}

pub fn media_batch(input: &str, rows: &[MediaRow]) -> Result<RecordBatch, ArrowError> {
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
        ],
    )
}

pub fn audio_frames_batch(input: &str, rows: &[AudioFrameRow]) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new(
        audio_frames_schema(),
        vec![
            inputs(input, rows.len()),
            Arc::new(rows.iter().map(|r| r.frame).collect::<UInt32Array>()),
            Arc::new(rows.iter().map(|r| r.time_s).collect::<Float64Array>()),
            Arc::new(rows.iter().map(|r| r.onset_envelope).collect::<Float32Array>()),
            Arc::new(rows.iter().map(|r| Some(r.onset)).collect::<BooleanArray>()),
        ],
    )
}

pub fn video_frames_batch(input: &str, hoof_bins: usize, rows: &[VideoFrameRow]) -> Result<RecordBatch, ArrowError> {
    let mut hoof = FixedSizeListBuilder::with_capacity(Float32Builder::new(), hoof_bins as i32, rows.len())
        .with_field(item(DataType::Float32));
    for row in rows {
        if row.hoof.len() != hoof_bins {
            return Err(ArrowError::InvalidArgumentError(format!(
                "frame {} has {} HOOF bins, the table {hoof_bins}",
                row.frame,
                row.hoof.len()
            )));
        }
        hoof.values().append_slice(&row.hoof);
        hoof.append(true);
    }
    RecordBatch::try_new(
        video_frames_schema(hoof_bins),
        vec![
            inputs(input, rows.len()),
            Arc::new(rows.iter().map(|r| r.frame).collect::<UInt32Array>()),
            Arc::new(rows.iter().map(|r| r.time_s).collect::<Float64Array>()),
            Arc::new(hoof.finish()),
            Arc::new(rows.iter().map(|r| r.motion_energy).collect::<Float32Array>()),
            Arc::new(rows.iter().map(|r| r.impact).collect::<Float32Array>()),
            Arc::new(rows.iter().map(|r| Some(r.visual_beat)).collect::<BooleanArray>()),
        ],
    )
}

pub fn clips_batch(input: &str, rows: &[ClipRow]) -> Result<RecordBatch, ArrowError> {
    let times = |f: &dyn Fn(&ClipRow) -> &[f64]| -> ArrayRef {
        let mut list = ListBuilder::new(Float64Builder::new()).with_field(item(DataType::Float64));
        for row in rows {
            list.values().append_slice(f(row));
            list.append(true);
        }
        Arc::new(list.finish())
    };
    RecordBatch::try_new(
        clips_schema(),
        vec![
            inputs(input, rows.len()),
            Arc::new(rows.iter().map(|r| r.clip).collect::<UInt32Array>()),
            Arc::new(rows.iter().map(|r| r.start_s).collect::<Float64Array>()),
            Arc::new(rows.iter().map(|r| r.end_s).collect::<Float64Array>()),
            Arc::new(rows.iter().map(|r| r.tempo_bpm).collect::<Float64Array>()),
            times(&|r| &r.onset_times),
            times(&|r| &r.beat_times),
            times(&|r| &r.visual_beat_times),
            Arc::new(rows.iter().map(|r| r.mean_motion).collect::<Float32Array>()),
            Arc::new(rows.iter().map(|r| r.beat_align_score).collect::<Float64Array>()),
        ],
    )
}

pub fn videos_schema() -> SchemaRef {
    schema(vec![
        input_field(),
        Field::new("duration_s", DataType::Float64, true),
        Field::new("clips", DataType::UInt64, false),
        Field::new("tempo_bpm", DataType::Float64, true),
        Field::new("onsets", DataType::UInt64, false),
        Field::new("visual_beats", DataType::UInt64, false),
        Field::new("beat_align_score", DataType::Float64, true),
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
            Arc::new(rows.iter().map(|(_, r)| r.beat_align_score).collect::<Float64Array>()),
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
        }];
        let batch = video_frames_batch("a.mp4", 3, &rows).unwrap();
        assert_eq!(batch.num_rows(), 1);
        let hoof = batch.column_by_name("hoof").unwrap().as_fixed_size_list();
        assert_eq!(hoof.value(0).as_primitive::<Float32Type>().values().to_vec(), vec![0.5, 0.25, 0.25]);
        assert!(video_frames_batch("a.mp4", 4, &rows).is_err());

        let clip = ClipRow {
            clip: 0,
            start_s: 1.0,
            end_s: 9.0,
            tempo_bpm: 120.0,
            onset_times: vec![1.5, 2.0],
            beat_times: vec![1.5],
            visual_beat_times: vec![],
            mean_motion: 0.5,
            beat_align_score: None,
        };
        let batch = clips_batch("a.mp4", &[clip]).unwrap();
        assert_eq!(batch.column_by_name("onset_times").unwrap().as_list::<i32>().value(0).len(), 2);
        assert!(batch.column_by_name("beat_align_score").unwrap().is_null(0));
        let media = media_batch("bad.mp4", &[MediaRow { status: "error".into(), ..Default::default() }]).unwrap();
        assert_eq!(media.schema().metadata()["mudar.schema_version"], crate::SCHEMA_VERSION.to_string());
    }
}
