//! The per-video view (`videos` table): a differential-dataflow reduction
//! over the facts of committed inputs, kept up to date as inputs commit and
//! written to the store as a snapshot when the frontier shows it complete.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt32Type, UInt64Type};
use differential_dataflow::AsCollection;
use differential_dataflow::collection::vec::Collection;
use mudar_schemas::tables::{self, CLIPS, MEDIA, VIDEOS};
use mudar_schemas::{ClipRow, MediaRow, VideoRow};
use mudar_sinks::store::{self, StoreConfig, StoreError};
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::Operator;

use super::store::InputReport;

/// What the view is computed from, per input. Fixed point keeps facts
/// totally ordered and exact, as differential's collections need.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Fact {
    /// From `media`: duration (µs), onsets and visual beats of the whole input (of one
    /// connection, for a live feed).
    Media { duration_us: Option<u64>, onsets: u64, visual_beats: u64 },
    /// From `clips`: tempo (milli-bpm) and the Beat Align Scores (×10⁹), music → motion and
    /// motion → music.
    Clip { clip: u32, tempo_mbpm: i64, beat_align_nano: [Option<i64>; 2] },
    /// Many clips at once (a live connection's, as they come): their count, the sum of their
    /// tempos and, each way, of the scores of the `scored` ones that have one.
    Clips { clips: u64, tempo_sum_mbpm: i64, score_sum_nano: [i64; 2], scored: [u64; 2] },
}

impl Fact {
    pub fn media(row: &MediaRow) -> Fact {
        Fact::Media {
            duration_us: row.duration_s.map(|d| (d * 1e6).round() as u64),
            onsets: row.onsets,
            visual_beats: row.visual_beats,
        }
    }

    /// Adds a clip's fact to the running sum in `facts` (one `Clips` fact at most).
    pub fn add_clip(facts: &mut Vec<Fact>, clip: Fact) {
        let Fact::Clip { tempo_mbpm, beat_align_nano, .. } = clip else { return };
        if facts.is_empty() {
            facts.push(Fact::Clips { clips: 0, tempo_sum_mbpm: 0, score_sum_nano: [0; 2], scored: [0; 2] });
        }
        if let Some(Fact::Clips { clips, tempo_sum_mbpm, score_sum_nano, scored }) = facts.first_mut() {
            *clips += 1;
            *tempo_sum_mbpm += tempo_mbpm;
            for way in 0..2 {
                if let Some(score) = beat_align_nano[way] {
                    score_sum_nano[way] += score;
                    scored[way] += 1;
                }
            }
        }
    }

    pub fn clip(row: &ClipRow) -> Fact {
        Fact::Clip {
            clip: row.clip,
            tempo_mbpm: (row.tempo_bpm * 1e3).round() as i64,
            beat_align_nano: [row.beat_align_music_to_motion, row.beat_align_motion_to_music]
                .map(|s| s.map(|s| (s * 1e9).round() as i64)),
        }
    }
}

/// The view's row in fixed point (ordered, for differential).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VideoStats {
    duration_us: Option<u64>,
    clips: u64,
    tempo_mbpm: Option<i64>,
    onsets: u64,
    visual_beats: u64,
    /// Music → motion, motion → music.
    beat_align_nano: [Option<i64>; 2],
}

impl VideoStats {
    /// Aggregates one input's facts: counts from `media`, means over its clips.
    fn of(facts: &[(&Fact, isize)]) -> Option<VideoStats> {
        let mut stats = VideoStats {
            duration_us: None,
            clips: 0,
            tempo_mbpm: None,
            onsets: 0,
            visual_beats: 0,
            beat_align_nano: [None; 2],
        };
        let mut has_media = false;
        let (mut tempo_sum, mut score_sum, mut scored) = (0i128, [0i128; 2], [0i128; 2]);
        for (fact, count) in facts {
            if *count <= 0 {
                continue;
            }
            match fact {
                // A file has one media row; a live feed one per connection, which add up.
                Fact::Media { duration_us, onsets, visual_beats } => {
                    has_media = true;
                    let n = *count as u64;
                    stats.duration_us = match (stats.duration_us, *duration_us) {
                        (Some(a), Some(b)) => Some(a + b * n),
                        (a, b) => a.or(b.map(|b| b * n)),
                    };
                    stats.onsets += *onsets * n;
                    stats.visual_beats += *visual_beats * n;
                }
                Fact::Clips { clips, tempo_sum_mbpm, score_sum_nano, scored: n } => {
                    let times = *count as i128;
                    stats.clips += *clips * *count as u64;
                    tempo_sum += *tempo_sum_mbpm as i128 * times;
                    for way in 0..2 {
                        score_sum[way] += score_sum_nano[way] as i128 * times;
                        scored[way] += n[way] as i128 * times;
                    }
                }
                // Equal clips of different connections are one fact counted as many.
                Fact::Clip { tempo_mbpm, beat_align_nano, .. } => {
                    stats.clips += *count as u64;
                    tempo_sum += *tempo_mbpm as i128 * *count as i128;
                    for way in 0..2 {
                        if let Some(score) = beat_align_nano[way] {
                            score_sum[way] += score as i128 * *count as i128;
                            scored[way] += *count as i128;
                        }
                    }
                }
            }
        }
        if stats.clips > 0 {
            stats.tempo_mbpm = Some((tempo_sum / stats.clips as i128) as i64);
        }
        for way in 0..2 {
            if scored[way] > 0 {
                stats.beat_align_nano[way] = Some((score_sum[way] / scored[way]) as i64);
            }
        }
        has_media.then_some(stats)
    }

    fn row(&self) -> VideoRow {
        VideoRow {
            duration_s: self.duration_us.map(|d| d as f64 / 1e6),
            clips: self.clips,
            tempo_bpm: self.tempo_mbpm.map(|t| t as f64 / 1e3),
            onsets: self.onsets,
            visual_beats: self.visual_beats,
            beat_align_music_to_motion: self.beat_align_nano[0].map(|s| s as f64 / 1e9),
            beat_align_motion_to_music: self.beat_align_nano[1].map(|s| s as f64 / 1e9),
        }
    }
}

/// The facts of every input the store has committed without error.
pub fn facts_in_store(root: &std::path::Path) -> Result<Vec<(String, Fact)>, StoreError> {
    let mut facts = Vec::new();
    for batch in store::read_committed(root, MEDIA)? {
        let (inputs, status) = (batch.column_by_name("input"), batch.column_by_name("status"));
        let (Some(inputs), Some(status)) = (inputs, status) else { continue };
        let (inputs, status) = (inputs.as_string::<i32>(), status.as_string::<i32>());
        let duration = batch.column_by_name("duration_s").map(|c| c.as_primitive::<Float64Type>().clone());
        let count =
            |name: &str, i: usize| batch.column_by_name(name).map_or(0, |c| c.as_primitive::<UInt64Type>().value(i));
        for i in (0..batch.num_rows()).filter(|&i| status.value(i) == "ok") {
            let row = MediaRow {
                duration_s: duration.as_ref().filter(|d| d.is_valid(i)).map(|d| d.value(i)),
                onsets: count("onsets", i),
                visual_beats: count("visual_beats", i),
                ..MediaRow::default()
            };
            facts.push((inputs.value(i).to_owned(), Fact::media(&row)));
        }
    }
    for batch in store::read_committed(root, CLIPS)? {
        let column = |name: &str| batch.column_by_name(name).expect("the clips schema");
        let inputs = column("input").as_string::<i32>().clone();
        let clips = column("clip").as_primitive::<UInt32Type>().clone();
        let tempo = column("tempo_bpm").as_primitive::<Float64Type>().clone();
        let scores = ["beat_align_music_to_motion", "beat_align_motion_to_music"]
            .map(|name| column(name).as_primitive::<Float64Type>().clone());
        for i in 0..batch.num_rows() {
            let fact = Fact::Clip {
                clip: clips.value(i),
                tempo_mbpm: (tempo.value(i) * 1e3).round() as i64,
                beat_align_nano: scores
                    .each_ref()
                    .map(|score| score.is_valid(i).then(|| (score.value(i) * 1e9).round() as i64)),
            };
            facts.push((inputs.value(i).to_owned(), fact));
        }
    }
    Ok(facts)
}

/// The `videos` view computed from scratch from what the store has committed.
pub fn videos_in_store(root: &std::path::Path) -> Result<Vec<(String, VideoRow)>, StoreError> {
    let mut by_input: BTreeMap<String, Vec<Fact>> = BTreeMap::new();
    for (input, fact) in facts_in_store(root)? {
        by_input.entry(input).or_default().push(fact);
    }
    Ok(by_input
        .into_iter()
        .filter_map(|(input, facts)| {
            let counted: Vec<(&Fact, isize)> = facts.iter().map(|f| (f, 1)).collect();
            VideoStats::of(&counted).map(|stats| (input, stats.row()))
        })
        .collect())
}

/// The facts of committed inputs as they commit, as a collection.
pub fn committed_facts<'scope>(
    reports: Stream<'scope, u64, Vec<InputReport>>,
) -> Collection<'scope, u64, (String, Fact), isize> {
    reports
        .unary(Pipeline, "CommittedFacts", |_, _| {
            move |input, output| {
                input.for_each(|time, data| {
                    let t = *time.least().expect("a time");
                    let mut session = output.session(&time);
                    for report in data.drain(..) {
                        for fact in report.facts {
                            session.give(((report.input.clone(), fact), t, 1isize));
                        }
                    }
                });
            }
        })
        .container::<Vec<_>>()
        .as_collection()
}

/// How often the snapshot is rewritten while a run goes on (and once at its end).
const SNAPSHOT_EVERY: Duration = Duration::from_secs(10);

/// Reduces `facts` per input into the `videos` view and keeps
/// `STORE/videos/videos.parquet` equal to it: the view is gathered on worker
/// 0 (`writes` there only), which writes a snapshot once the frontier has
/// passed the changes it includes (at most every `SNAPSHOT_EVERY`, 10 s, and at
/// the end). The output stream carries nothing; its frontier empties once
/// the last snapshot is written, for the driver's probe.
pub fn maintain_videos<'scope>(
    facts: Collection<'scope, u64, (String, Fact), isize>,
    root: PathBuf,
    config: StoreConfig,
    writes: bool,
) -> Stream<'scope, u64, Vec<()>> {
    let stats = facts.reduce(|_input, facts, output: &mut Vec<(VideoStats, isize)>| {
        if let Some(stats) = VideoStats::of(facts) {
            output.push((stats, 1));
        }
    });
    let mut view: BTreeMap<String, (VideoStats, isize)> = BTreeMap::new();
    let mut changed_at: Vec<u64> = Vec::new();
    let mut last_write = Instant::now();
    let mut written = false;
    let to_worker_zero = Exchange::new(|_: &((String, VideoStats), u64, isize)| 0);
    stats.inner.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        to_worker_zero,
        "VideosSnapshot",
        move |capability, _| {
            // Held (at the input frontier) until the last snapshot is written, so the probe waits for it.
            let mut capability = Some(capability);
            move |(input, frontier), _output| {
                input.for_each(|time, data| {
                    changed_at.push(*time.least().expect("a time"));
                    for ((video, stats), _, diff) in data.drain(..) {
                        let entry = view.entry(video.clone()).or_insert((stats.clone(), 0));
                        if diff > 0 {
                            entry.0 = stats;
                        }
                        entry.1 += diff;
                        if entry.1 == 0 {
                            view.remove(&video);
                        }
                    }
                });
                let done = frontier.frontier().is_empty();
                let complete = !changed_at.is_empty() && changed_at.iter().all(|t| !frontier.less_equal(t));
                // The last snapshot of a run is written even without changes (an emptied store).
                if writes && ((complete && (done || last_write.elapsed() >= SNAPSHOT_EVERY)) || (done && !written)) {
                    written = true;
                    // Other runs sharing the store may have committed meanwhile: the last snapshot is
                    // the store's own (the view followed only this run's commits).
                    let rows = match done {
                        true => videos_in_store(&root),
                        false => Ok(view.iter().map(|(k, (s, _))| (k.clone(), s.row())).collect()),
                    };
                    let result = rows
                        .map_err(|e| e.to_string())
                        .and_then(|rows| tables::videos_batch(&rows).map_err(|e| format!("the videos view: {e}")))
                        .and_then(|batch| {
                            store::write_snapshot(&root, VIDEOS, &batch, &config).map_err(|e| e.to_string())
                        });
                    if let Err(e) = result {
                        eprintln!("mudar: cannot write the videos view: {e}");
                    }
                    changed_at.clear();
                    last_write = Instant::now();
                }
                match frontier.frontier().first() {
                    // Follow the input, so the driver's throttle sees progress.
                    Some(t) => {
                        if let Some(capability) = capability.as_mut() {
                            capability.downgrade(t);
                        }
                    }
                    None => drop(capability.take()),
                }
            }
        },
    )
}
