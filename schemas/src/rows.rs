//! The rows of the feature store's tables, as the graph produces them. Every
//! table also has an `input` column (the input's path or URI), added when
//! rows are written.

use serde::{Deserialize, Serialize};

/// `media`: one row per input, also for inputs that failed; for a live feed,
/// one per connection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MediaRow {
    /// `ok` or `error`.
    pub status: String,
    /// A stable code (`no_audio`, `truncated`, ...) when `status` is `error`.
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub duration_s: Option<f64>,
    pub has_audio: bool,
    pub has_video: bool,
    pub audio_frames: u64,
    pub video_frames: u64,
    pub clips: u64,
    /// Onsets over the whole input (the `onset` flags of `audio_frames`).
    pub onsets: u64,
    /// Visual beats over the whole input (the `visual_beat` flags of `video_frames`).
    pub visual_beats: u64,
}

/// `audio_frames`: one row per onset-envelope frame (hop / sr seconds apart).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AudioFrameRow {
    pub frame: u32,
    /// Media time of the frame's centre, seconds.
    pub time_s: f64,
    pub onset_envelope: f32,
    /// An onset, as librosa's `onset_detect` decides it in the streaming form.
    pub onset: bool,
}

/// `video_frames`: one row per decoded frame but the last: the motion out of
/// it (the flow to the next frame) and the visual impact at it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VideoFrameRow {
    pub frame: u32,
    /// Media time of the frame, seconds.
    pub time_s: f64,
    /// HOOF (paper Eq. 3-4) of the flow to the next frame: B bins summing to 1
    /// (all zero without motion).
    pub hoof: Vec<f32>,
    /// Mean magnitude of that flow, pixels per frame.
    pub motion_energy: f32,
    /// The directogram's visual impact envelope: the deceleration from the
    /// motion into this frame to the motion out of it (0 at frame 0).
    pub impact: f32,
    /// A model-free visual beat (a peak of the impact envelope).
    pub visual_beat: bool,
    /// A trained MuDaR's visual-rhythm probability at this frame (`mudar
    /// extract --model`); `None` without a model or outside the model's clips.
    pub rhythm_probability: Option<f32>,
    /// Whether that model calls this frame visual rhythm.
    pub rhythm: Option<bool>,
}

/// `clips`: one row per clip (the clip rule's spans).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipRow {
    pub clip: u32,
    pub start_s: f64,
    pub end_s: f64,
    /// librosa's tempo of the clip's audio (bpm); 0 without audio.
    pub tempo_bpm: f64,
    pub onset_times: Vec<f64>,
    pub beat_times: Vec<f64>,
    pub visual_beat_times: Vec<f64>,
    /// Mean motion energy over the clip's frames.
    pub mean_motion: f32,
    /// Beat Align Score, music → motion (Bailando): the mean over music beats of
    /// exp(−d²/2σ²), d the distance to the nearest visual beat; `None` without
    /// music beats or visual beats.
    pub beat_align_music_to_motion: Option<f64>,
    /// Beat Align Score, motion → music (AIST++/FACT): the mean over visual beats
    /// of exp(−d²/2σ²), d the distance to the nearest music beat.
    pub beat_align_motion_to_music: Option<f64>,
    /// A trained MuDaR's unit-length embeddings of the clip's dance (f'_v) and
    /// music (f'_a) (`mudar extract --model`); `None` without a model.
    pub visual_embedding: Option<Vec<f32>>,
    pub audio_embedding: Option<Vec<f32>>,
}

/// `videos`: one row per committed input without error, maintained by a
/// differential-dataflow view over `media` and `clips`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VideoRow {
    pub duration_s: Option<f64>,
    pub clips: u64,
    /// Mean of the clips' tempos.
    pub tempo_bpm: Option<f64>,
    pub onsets: u64,
    pub visual_beats: u64,
    /// Means of the clips' Beat Align Scores, each way (over the clips that have one).
    pub beat_align_music_to_motion: Option<f64>,
    pub beat_align_motion_to_music: Option<f64>,
}

/// `feed_events`: what happened to a live feed's connections, one row per
/// connect, loss, retry, give-up or stop, committed as it happens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeedEventRow {
    /// When it happened, µs since the Unix epoch (UTC).
    pub time_us: i64,
    /// The connection it concerns (0, then one more at each reconnect).
    pub connection: u32,
    /// `connected`, `connect_failed`, `disconnected`, `ended`, `retry`, `gave_up` or `stopped`.
    pub event: String,
    /// Why, as a stable code (`stalled`, `unreadable`, `gstreamer`, `eos`, ...), where there is one.
    pub reason: Option<String>,
    pub message: Option<String>,
    /// Consecutive failed attempts so far.
    pub attempt: u32,
    /// For `retry` and failures: the wait before the next attempt, seconds.
    pub backoff_s: Option<f64>,
    /// Video frames the connection dropped because the graph was behind.
    pub frames_dropped: u64,
}
