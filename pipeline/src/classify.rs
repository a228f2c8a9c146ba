//! Dance classification (paper Sec. 4.2, Table 2): the two-stream classifier
//! ([`mudar_operators::model::classifier`]) trained on a frozen MuDaR's
//! outputs as a feature store holds them — per clip, each frame's visual and
//! audio embeddings, the model's visual rhythm and the music's onsets — with
//! the Let's Dance protocol: videos split 80/10/10 at random by a seed, the
//! epoch best on validation kept, accuracy per class and a confusion matrix
//! on the test videos. A video's prediction is the mean of its clips' scores.
//!
//! Memory: each clip's features (2·T·E + 2·T floats: 4 KB for `tiny`) for the
//! videos in play; the store is read a batch at a time.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt32Type};
use mudar_operators::model::classifier::{ClassifierConfig, DanceClassifier};
use mudar_schemas::tables::{CLIPS, VIDEO_FRAMES};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor, nn, nn::OptimizerConfig};

use crate::store_read::scan_table;

/// One clip's inputs to the classifier.
#[derive(Clone, Debug)]
pub struct ClipFeatures {
    pub input: String,
    pub clip: u32,
    /// T·E values each.
    pub visual: Vec<f32>,
    pub audio: Vec<f32>,
    /// T flags each (0 or 1).
    pub rhythm: Vec<f32>,
    pub onsets: Vec<f32>,
}

/// Reads the clips of the inputs `keep` accepts from a store extracted with a model of `frames`
/// (T) frames of `embedding_dim` (E) at `fps`. Clips without embeddings are left out.
pub fn read_clip_features(
    store: &Path,
    frames: usize,
    embedding_dim: usize,
    fps: f64,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<ClipFeatures>, String> {
    let mut clips: Vec<ClipFeatures> = Vec::new();
    // Input → (clip start, index into `clips`), to place frame rows.
    let mut starts: HashMap<String, Vec<(f64, usize)>> = HashMap::new();
    let columns = ["input", "clip", "start_s", "onset_times", "visual_embedding", "audio_embedding"];
    scan_table(store, CLIPS, &columns, |batch| {
        let (Some(visual), Some(audio)) =
            (batch.column_by_name("visual_embedding"), batch.column_by_name("audio_embedding"))
        else {
            return Ok(());
        };
        let (visual, audio) = (visual.as_fixed_size_list(), audio.as_fixed_size_list());
        let width = frames * embedding_dim;
        if visual.value_length() as usize != width {
            return Err(format!(
                "{}: its clip embeddings have {} values, this model's have {width}: the store was extracted with \
                 another model",
                store.display(),
                visual.value_length()
            ));
        }
        let inputs = batch.column(0).as_string::<i32>();
        let ids = batch.column_by_name("clip").expect("clips have clip").as_primitive::<UInt32Type>();
        let start = batch.column_by_name("start_s").expect("clips have start_s").as_primitive::<Float64Type>();
        let onset_times = batch.column_by_name("onset_times").expect("clips have onset_times").as_list::<i32>();
        for row in 0..batch.num_rows() {
            if visual.is_null(row) || audio.is_null(row) || !keep(inputs.value(row)) {
                continue;
            }
            let floats = |list: &arrow_array::FixedSizeListArray| -> Vec<f32> {
                list.value(row).as_primitive::<arrow_array::types::Float32Type>().values().to_vec()
            };
            let mut onsets = vec![0f32; frames];
            let times = onset_times.value(row);
            for &t in times.as_primitive::<Float64Type>().values() {
                let k = ((t - start.value(row)) * fps).round();
                if (0.0..frames as f64).contains(&k) {
                    onsets[k as usize] = 1.0;
                }
            }
            starts.entry(inputs.value(row).to_owned()).or_default().push((start.value(row), clips.len()));
            clips.push(ClipFeatures {
                input: inputs.value(row).to_owned(),
                clip: ids.value(row),
                visual: floats(visual),
                audio: floats(audio),
                rhythm: vec![0.0; frames],
                onsets,
            });
        }
        Ok(())
    })?;
    let clip_s = frames as f64 / fps;
    scan_table(store, VIDEO_FRAMES, &["input", "time_s", "rhythm"], |batch| {
        let Some(decisions) = batch.column_by_name("rhythm") else { return Ok(()) };
        let decisions = decisions.as_boolean();
        let inputs = batch.column(0).as_string::<i32>();
        let times = batch.column_by_name("time_s").expect("frames have time_s").as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            if decisions.is_null(row) || !decisions.value(row) {
                continue;
            }
            let Some(clip_starts) = starts.get(inputs.value(row)) else { continue };
            let time = times.value(row);
            for &(start, at) in clip_starts {
                let k = ((time - start) * fps).round();
                if time >= start - 0.5 / fps && time < start + clip_s && (0.0..frames as f64).contains(&k) {
                    clips[at].rhythm[k as usize] = 1.0;
                }
            }
        }
        Ok(())
    })?;
    Ok(clips)
}

/// The videos of each part of the Let's Dance protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Split {
    pub train: Vec<String>,
    pub validation: Vec<String>,
    pub test: Vec<String>,
}

/// Splits `videos` at random (by `seed`) into 80% training, 10% validation and 10% test
/// (each of the last two at least one video when there are three or more).
pub fn split(videos: &[String], seed: u64) -> Split {
    let mut order: Vec<String> = videos.to_vec();
    order.sort();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n = order.len();
    let held = if n >= 3 { ((n as f64 * 0.1).round() as usize).max(1) } else { 0 };
    let test = order.split_off(n - held);
    let validation = order.split_off(order.len() - held);
    Split { train: order, validation, test }
}

/// Training settings; the defaults are the paper's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainParams {
    pub epochs: usize,
    pub batch: usize,
    pub learning_rate: f64,
    /// Epochs after which the learning rate is divided by ten.
    pub milestones: Vec<usize>,
    pub hidden: i64,
    pub seed: u64,
    pub rhythm: bool,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            epochs: 70,
            batch: 64,
            learning_rate: 4e-3,
            milestones: vec![20, 50],
            hidden: 256,
            seed: 0,
            rhythm: true,
        }
    }
}

/// A trained classifier and what it is for.
#[derive(Debug)]
pub struct Classifier {
    pub classes: Vec<String>,
    pub net: DanceClassifier,
    pub weights: nn::VarStore,
    pub frames: usize,
}

/// Accuracy, per class and overall, and the confusion matrix, of videos.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Evaluation {
    pub videos: usize,
    pub accuracy: f64,
    /// (class, accuracy over its videos, its videos).
    pub per_class: Vec<(String, Option<f64>, usize)>,
    /// `confusion[true][predicted]`, in the order of `classes`.
    pub confusion: Vec<Vec<u64>>,
    pub classes: Vec<String>,
}

/// One video's prediction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    pub input: String,
    pub label: String,
    pub probability: f64,
    pub clips: usize,
}

/// How training went, epoch by epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TrainLog {
    /// (epoch, mean training loss, validation accuracy).
    pub epochs: Vec<(usize, f64, f64)>,
    pub best_epoch: usize,
    pub best_validation: f64,
}

impl Classifier {
    /// A fresh classifier for `classes` over clips of `frames` frames of `embedding_dim` values.
    pub fn new(
        classes: Vec<String>,
        frames: usize,
        embedding_dim: usize,
        hidden: i64,
        rhythm: bool,
        device: Device,
    ) -> Classifier {
        let weights = nn::VarStore::new(device);
        let config =
            ClassifierConfig { embedding_dim: embedding_dim as i64, hidden, classes: classes.len() as i64, rhythm };
        let net = DanceClassifier::new(&weights.root(), config);
        Classifier { classes, net, weights, frames }
    }

    /// The clips as the network's inputs, on its device.
    fn batch(&self, clips: &[&ClipFeatures]) -> (Tensor, Tensor, Tensor, Tensor) {
        let (b, t, e) = (clips.len() as i64, self.frames as i64, self.net.config().embedding_dim);
        let device = self.weights.device();
        let stack = |of: &dyn Fn(&ClipFeatures) -> &[f32], shape: &[i64]| {
            let flat: Vec<f32> = clips.iter().flat_map(|c| of(c).iter().copied()).collect();
            Tensor::from_slice(&flat).view(shape).to_device(device)
        };
        (
            stack(&|c| &c.visual, &[b, t, e]),
            stack(&|c| &c.rhythm, &[b, t]),
            stack(&|c| &c.audio, &[b, t, e]),
            stack(&|c| &c.onsets, &[b, t]),
        )
    }

    fn scores(&self, clips: &[&ClipFeatures]) -> Tensor {
        let (v, r, a, o) = self.batch(clips);
        self.net.forward(&v, &r, &a, &o)
    }

    /// Each video's class probabilities: the softmax of the mean of its clips' scores.
    pub fn video_probabilities(&self, clips: &[ClipFeatures]) -> BTreeMap<String, (Vec<f64>, usize)> {
        let mut by_video: BTreeMap<&str, Vec<&ClipFeatures>> = BTreeMap::new();
        for clip in clips {
            by_video.entry(&clip.input).or_default().push(clip);
        }
        tch::no_grad(|| {
            by_video
                .into_iter()
                .map(|(video, clips)| {
                    let mean = self.scores(&clips).mean_dim(0, false, None).softmax(-1, Kind::Float);
                    let probabilities = Vec::<f32>::try_from(mean.to_device(Device::Cpu)).expect("float scores");
                    (video.to_owned(), (probabilities.into_iter().map(f64::from).collect(), clips.len()))
                })
                .collect()
        })
    }

    pub fn predict(&self, clips: &[ClipFeatures]) -> Vec<Prediction> {
        self.video_probabilities(clips)
            .into_iter()
            .map(|(input, (p, clips))| {
                let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
                Prediction { input, label: self.classes[best].clone(), probability: p[best], clips }
            })
            .collect()
    }

    /// Scores the videos of `clips` against `labels` (video → class name).
    pub fn evaluate(&self, clips: &[ClipFeatures], labels: &HashMap<String, String>) -> Evaluation {
        let n = self.classes.len();
        let index: HashMap<&str, usize> = self.classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
        let mut confusion = vec![vec![0u64; n]; n];
        for prediction in self.predict(clips) {
            let Some(truth) = labels.get(&prediction.input).and_then(|l| index.get(l.as_str())) else { continue };
            confusion[*truth][index[prediction.label.as_str()]] += 1;
        }
        let videos: u64 = confusion.iter().flatten().sum();
        let right: u64 = (0..n).map(|i| confusion[i][i]).sum();
        let per_class = (0..n)
            .map(|i| {
                let count: u64 = confusion[i].iter().sum();
                (self.classes[i].clone(), (count > 0).then(|| confusion[i][i] as f64 / count as f64), count as usize)
            })
            .collect();
        Evaluation {
            videos: videos as usize,
            accuracy: if videos > 0 { right as f64 / videos as f64 } else { 0.0 },
            per_class,
            confusion,
            classes: self.classes.clone(),
        }
    }

    /// Trains on the clips of `split.train`, keeping the weights of the epoch with the best
    /// validation accuracy (the latest on ties). `progress` hears of each epoch.
    pub fn train(
        &mut self,
        clips: &[ClipFeatures],
        labels: &HashMap<String, String>,
        split: &Split,
        params: &TrainParams,
        mut progress: impl FnMut(usize, f64, f64),
    ) -> Result<TrainLog, String> {
        let index: HashMap<&str, i64> = self.classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as i64)).collect();
        let in_train: std::collections::HashSet<&str> = split.train.iter().map(String::as_str).collect();
        let train: Vec<(&ClipFeatures, i64)> = clips
            .iter()
            .filter(|c| in_train.contains(c.input.as_str()))
            .filter_map(|c| Some((c, *index.get(labels.get(&c.input)?.as_str())?)))
            .collect();
        if train.is_empty() {
            return Err("no training clips: no labelled video with clips in the training split".to_owned());
        }
        let validation: Vec<ClipFeatures> =
            clips.iter().filter(|c| split.validation.contains(&c.input)).cloned().collect();
        tch::manual_seed(params.seed as i64);
        let mut optimizer =
            nn::Adam::default().build(&self.weights, params.learning_rate).map_err(|e| e.to_string())?;
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let mut log = TrainLog::default();
        let mut best: Option<Vec<(String, Tensor)>> = None;
        for epoch in 0..params.epochs {
            let decays = params.milestones.iter().filter(|&&m| epoch >= m).count() as i32;
            optimizer.set_lr(params.learning_rate * 0.1f64.powi(decays));
            let mut order: Vec<usize> = (0..train.len()).collect();
            order.shuffle(&mut rng);
            let (mut loss_sum, mut batches) = (0.0, 0);
            for chunk in order.chunks(params.batch.max(1)) {
                let clips: Vec<&ClipFeatures> = chunk.iter().map(|&i| train[i].0).collect();
                let targets = Tensor::from_slice(&chunk.iter().map(|&i| train[i].1).collect::<Vec<_>>())
                    .to_device(self.weights.device());
                let loss = self.scores(&clips).cross_entropy_for_logits(&targets);
                optimizer.backward_step(&loss);
                loss_sum += loss.double_value(&[]);
                batches += 1;
            }
            let accuracy = match validation.is_empty() {
                true => 0.0,
                false => self.evaluate(&validation, labels).accuracy,
            };
            let loss = loss_sum / batches.max(1) as f64;
            log.epochs.push((epoch, loss, accuracy));
            progress(epoch, loss, accuracy);
            // Ties go to the later epoch: a validation set of a few videos ties often, and the
            // longer-trained weights are the better guess.
            if best.is_none() || accuracy >= log.best_validation {
                (log.best_epoch, log.best_validation) = (epoch, accuracy);
                best = Some(self.weights.variables().into_iter().map(|(n, t)| (n, t.copy())).collect());
            }
        }
        if let Some(best) = best {
            let mut variables = self.weights.variables();
            tch::no_grad(|| {
                for (name, tensor) in best {
                    if let Some(var) = variables.get_mut(&name) {
                        var.copy_(&tensor);
                    }
                }
            });
        }
        Ok(log)
    }

    /// Writes the weights (`classifier.safetensors`) and what they are for (`classifier.json`,
    /// `info` added) into `dir`.
    pub fn save(&self, dir: &Path, info: serde_json::Value) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut named: Vec<(String, Tensor)> = self.weights.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let weights = dir.join("classifier.safetensors");
        Tensor::write_safetensors(&named, &weights).map_err(|e| format!("{}: {e}", weights.display()))?;
        let json = serde_json::json!({
            "classes": self.classes,
            "config": self.net.config(),
            "frames": self.frames,
            "info": info,
        });
        let path = dir.join("classifier.json");
        std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json") + "\n")
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads what [`Classifier::save`] wrote; returns it and its `info`.
    pub fn load(dir: &Path, device: Device) -> Result<(Classifier, serde_json::Value), String> {
        let path = dir.join("classifier.json");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let bad = |what: &str| format!("{}: no {what}", path.display());
        let classes: Vec<String> = serde_json::from_value(json["classes"].clone()).map_err(|_| bad("classes"))?;
        let config: ClassifierConfig = serde_json::from_value(json["config"].clone()).map_err(|_| bad("config"))?;
        let frames = json["frames"].as_u64().ok_or_else(|| bad("frames"))? as usize;
        let classifier =
            Classifier::new(classes, frames, config.embedding_dim as usize, config.hidden, config.rhythm, device);
        let weights = dir.join("classifier.safetensors");
        let tensors = Tensor::read_safetensors(&weights).map_err(|e| format!("{}: {e}", weights.display()))?;
        let mut variables = classifier.weights.variables();
        tch::no_grad(|| -> Result<(), String> {
            for (name, tensor) in tensors {
                let var =
                    variables.get_mut(&name).ok_or_else(|| format!("{}: unknown tensor {name}", weights.display()))?;
                var.copy_(&tensor);
            }
            Ok(())
        })?;
        Ok((classifier, json["info"].clone()))
    }
}
