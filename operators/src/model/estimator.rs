//! The visual rhythm estimator (paper Eq. 15) and the heads of Table 1: the
//! full model's focal-loss classifier, and the BCE, regression and
//! BiLSTM-CRF ablations.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor, nn, nn::RNN};

use super::config::{ModelConfig, RhythmHead};
use super::losses::focal_loss;
use crate::motion::VisualBeatParams;
use crate::rhythm::onset_detect_from_envelope;

/// What the explicit pathway learns from, per clip and video frame.
#[derive(Debug)]
pub struct RhythmTargets {
    /// 1 on frames holding a music onset, else 0: [B, T].
    pub onsets: Tensor,
    /// The onset envelope at the frames, scaled to [0, 1] per clip: [B, T]
    /// (the regression ablation's target).
    pub envelope: Tensor,
}

/// The probability at which the classifier heads call a frame visual rhythm,
/// with and without the music. Focal and class weights move the probabilities
/// away from calibration, so training fits these on its own clips (the
/// F-measure's best) rather than taking 0.5.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionThresholds {
    pub with_audio: f64,
    pub without_audio: f64,
}

impl Default for DecisionThresholds {
    fn default() -> Self {
        DecisionThresholds { with_audio: 0.5, without_audio: 0.5 }
    }
}

/// First-order difference along time, `x_t − x_{t−1}`, with 0 at t = 0, for
/// [B, T, F] features.
pub fn first_difference(x: &Tensor) -> Tensor {
    let time = x.size()[1];
    let step = x.narrow(1, 1, time - 1) - x.narrow(1, 0, time - 1);
    Tensor::cat(&[x.narrow(1, 0, 1).zeros_like(), step], 1)
}

/// Eq. 15 and the head chosen in the configuration.
#[derive(Debug)]
pub struct RhythmEstimator {
    /// U_mot: HOOF bins → R, ReLU.
    motion: nn::Linear,
    /// U_inj: C → R, ReLU.
    injected: nn::Linear,
    head: Head,
}

/// Table 1's heads over the features of Eq. 15.
#[derive(Debug)]
enum Head {
    /// W_e, b_e: 2R → 1, a per-frame classifier trained by the focal loss
    /// (Eq. 19) with its α and γ, the full model, or by plain BCE when `focal` is none.
    Classifier {
        linear: nn::Linear,
        focal: Option<(f64, f64)>,
    },
    /// The same layer regressing the onset envelope; its output's peaks
    /// (picked as the video's visual beats are) are the rhythm frames.
    Regression {
        linear: nn::Linear,
        peaks: VisualBeatParams,
    },
    BiLstmCrf {
        lstm: nn::LSTM,
        emissions: nn::Linear,
        crf: Crf,
    },
}

impl RhythmEstimator {
    pub fn new(vs: &nn::Path, config: &ModelConfig) -> RhythmEstimator {
        let r = config.rhythm_dim;
        let head = match config.head {
            RhythmHead::BiLstmCrf => {
                let lstm_config = nn::RNNConfig { bidirectional: true, batch_first: true, ..Default::default() };
                Head::BiLstmCrf {
                    lstm: nn::lstm(vs / "lstm", 2 * r, r, lstm_config),
                    emissions: nn::linear(vs / "emissions", 2 * r, 2, Default::default()),
                    crf: Crf::new(&(vs / "crf")),
                }
            }
            RhythmHead::Focal | RhythmHead::Bce => Head::Classifier {
                linear: classifier(vs, r),
                focal: (config.head == RhythmHead::Focal).then_some((config.focal_alpha, config.focal_gamma)),
            },
            RhythmHead::Regression => {
                Head::Regression { linear: classifier(vs, r), peaks: VisualBeatParams::for_fps(config.fps) }
            }
        };
        RhythmEstimator {
            motion: nn::linear(vs / "motion", config.hoof_bins, r, Default::default()),
            injected: nn::linear(vs / "injected", config.visual_channels(), r, Default::default()),
            head,
        }
    }

    /// `U_mot f'_mot ⊕ U_inj f'_inj` of Eq. 15: [B, T, 2R].
    pub fn features(&self, hoof: &Tensor, injected: &Tensor) -> Tensor {
        let motion = first_difference(hoof).apply(&self.motion).relu();
        let injected = first_difference(injected).apply(&self.injected).relu();
        Tensor::cat(&[motion, injected], 2)
    }

    /// Per-frame scores for `hoof` [B, T, bins] and `f_inj` [B, T, C]: the
    /// logits of Eq. 15, [B, T] (σ of them is p^e_t), or the CRF's emission
    /// scores [B, T, 2].
    pub fn forward(&self, hoof: &Tensor, injected: &Tensor) -> Tensor {
        let features = self.features(hoof, injected);
        match &self.head {
            Head::Classifier { linear, .. } | Head::Regression { linear, .. } => features.apply(linear).squeeze_dim(-1),
            Head::BiLstmCrf { lstm, emissions, .. } => lstm.seq(&features).0.apply(emissions),
        }
    }

    /// The explicit loss averaged over every frame of the batch (Eq. 20's
    /// `(1/N) Σ_t L^ex_t` for the full model).
    pub fn loss(&self, scores: &Tensor, targets: &RhythmTargets) -> Tensor {
        let kind = scores.kind();
        match &self.head {
            Head::BiLstmCrf { crf, .. } => {
                let frames = scores.size()[1] as f64;
                crf.negative_log_likelihood(scores, &targets.onsets).mean(kind) / frames
            }
            Head::Classifier { focal: Some((alpha, gamma)), .. } => {
                focal_loss(scores, &targets.onsets, *alpha, *gamma).mean(kind)
            }
            Head::Classifier { focal: None, .. } => scores.binary_cross_entropy_with_logits::<Tensor>(
                &targets.onsets.to_kind(kind),
                None,
                None,
                tch::Reduction::Mean,
            ),
            Head::Regression { .. } => scores.sigmoid().mse_loss(&targets.envelope.to_kind(kind), tch::Reduction::Mean),
        }
    }

    /// Visual rhythm probability per frame, [B, T] (for the CRF, the
    /// emission softmax's rhythm column: a score, not a calibrated probability).
    pub fn probabilities(&self, scores: &Tensor) -> Tensor {
        match &self.head {
            Head::Classifier { .. } | Head::Regression { .. } => scores.sigmoid(),
            Head::BiLstmCrf { .. } => scores.softmax(-1, scores.kind()).select(-1, 1),
        }
    }

    /// The frames each clip's head calls visual rhythm: p ≥ `threshold` for
    /// the classifiers, the peaks of the output (the video's visual-beat peak
    /// picking) for the regression, the Viterbi path for the CRF.
    pub fn decide(&self, scores: &Tensor, threshold: f64) -> Vec<Vec<usize>> {
        match &self.head {
            Head::BiLstmCrf { crf, .. } => crf.decode(scores),
            Head::Regression { peaks, .. } => rows(&scores.sigmoid())
                .iter()
                .map(|output| onset_detect_from_envelope(output, &peaks.peaks, false))
                .collect(),
            Head::Classifier { .. } => rows(&scores.sigmoid())
                .iter()
                .map(|p| p.iter().enumerate().filter(|(_, p)| f64::from(**p) >= threshold).map(|(t, _)| t).collect())
                .collect(),
        }
    }
}

/// The per-frame linear layer of the classifier and regression heads (`classifier.*`).
fn classifier(vs: &nn::Path, rhythm_dim: i64) -> nn::Linear {
    nn::linear(vs / "classifier", 2 * rhythm_dim, 1, Default::default())
}

/// A [B, N] tensor (per-frame probabilities, embeddings) as B rows of f32, on the CPU.
pub fn rows(x: &Tensor) -> Vec<Vec<f32>> {
    let (batch, time) = x.size2().expect("[B, N]");
    let values = Vec::<f32>::try_from(x.detach().to_kind(Kind::Float).to_device(tch::Device::Cpu).reshape([-1]))
        .expect("a float tensor");
    values.chunks(time.max(1) as usize).take(batch as usize).map(<[f32]>::to_vec).collect()
}

/// A linear-chain conditional random field over two tags, 0 (no rhythm) and
/// 1 (rhythm) (Lafferty et al. 2001): a path's score is
/// `start[y_0] + Σ_t e_t[y_t] + Σ_{t>0} trans[y_{t−1}, y_t] + end[y_{T−1}]`.
#[derive(Debug)]
pub struct Crf {
    start: Tensor,
    transitions: Tensor,
    end: Tensor,
}

impl Crf {
    /// Variables `start` \[2\], `transitions` \[2, 2\] (from, to), `end` \[2\].
    pub fn new(vs: &nn::Path) -> Crf {
        let small = nn::Init::Uniform { lo: -0.1, up: 0.1 };
        Crf {
            start: vs.var("start", &[2], small),
            transitions: vs.var("transitions", &[2, 2], small),
            end: vs.var("end", &[2], small),
        }
    }

    /// `−log P(tags | emissions)` per clip, \[B\], for emissions \[B, T, 2\] and
    /// 0/1 tags [B, T]: the log-partition by the forward algorithm minus the
    /// tagged path's score.
    pub fn negative_log_likelihood(&self, emissions: &Tensor, tags: &Tensor) -> Tensor {
        let kind = emissions.kind();
        let time = emissions.size()[1];
        let tags = tags.to_kind(Kind::Int64);
        let emitted = emissions.gather(2, &tags.unsqueeze(-1), false).squeeze_dim(-1).sum_dim_intlist(1, false, kind);
        let first = tags.select(1, 0);
        let last = tags.select(1, time - 1);
        let stepped = if time > 1 {
            let from = tags.narrow(1, 0, time - 1);
            let to = tags.narrow(1, 1, time - 1);
            self.transitions
                .view([-1])
                .index_select(0, &(from * 2 + to).view([-1]))
                .view([-1, time - 1])
                .sum_dim_intlist(1, false, kind)
        } else {
            emitted.zeros_like()
        };
        let path = self.start.index_select(0, &first) + emitted + stepped + self.end.index_select(0, &last);

        let mut alpha = emissions.select(1, 0) + self.start.unsqueeze(0);
        for t in 1..time {
            // alpha'[j] = logsumexp_i(alpha[i] + trans[i, j]) + e_t[j]
            alpha = (alpha.unsqueeze(2) + self.transitions.unsqueeze(0)).logsumexp(1, false) + emissions.select(1, t);
        }
        let log_partition = (alpha + self.end.unsqueeze(0)).logsumexp(1, false);
        log_partition - path
    }

    /// The most likely tags of each clip (Viterbi), as rhythm frame indices.
    pub fn decode(&self, emissions: &Tensor) -> Vec<Vec<usize>> {
        let values = |x: &Tensor| {
            Vec::<f64>::try_from(x.detach().to_kind(Kind::Double).to_device(tch::Device::Cpu).reshape([-1]))
                .expect("floats")
        };
        let (start, transitions, end) = (values(&self.start), values(&self.transitions), values(&self.end));
        let (batch, time, _) = emissions.size3().expect("[B, T, 2]");
        let all = values(emissions);
        (0..batch as usize)
            .map(|b| {
                let e = |t: usize, tag: usize| all[(b * time as usize + t) * 2 + tag];
                let mut score = [start[0] + e(0, 0), start[1] + e(0, 1)];
                let mut back = Vec::with_capacity(time as usize);
                for t in 1..time as usize {
                    let mut next = [0.0; 2];
                    let mut from = [0usize; 2];
                    for to in 0..2 {
                        let (a, b) = (score[0] + transitions[to], score[1] + transitions[2 + to]);
                        (next[to], from[to]) = if b > a { (b, 1) } else { (a, 0) };
                        next[to] += e(t, to);
                    }
                    score = next;
                    back.push(from);
                }
                let mut tag = if score[1] + end[1] > score[0] + end[0] { 1 } else { 0 };
                let mut tags = vec![tag; time as usize];
                for (t, from) in back.iter().enumerate().rev() {
                    tag = from[tag];
                    tags[t] = tag;
                }
                tags.iter().enumerate().filter(|(_, tag)| **tag == 1).map(|(t, _)| t).collect()
            })
            .collect()
    }
}
