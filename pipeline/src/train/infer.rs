//! The trained model as a stage of the extraction graph (`mudar extract
//! --model`): each clip the [`TrainingClips`](super::clips::TrainingClips)
//! stage cuts goes through MuDaR with its own music, giving the visual-rhythm
//! probability of its frames and the clip's two embeddings.

use std::rc::Rc;

use mudar_operators::model::estimator::rows;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;

use super::clips::{CachedClip, ClipOutcome, TrainingClip};
use super::trained::{TrainedModel, model_inputs};
use crate::graph::{ModelOutput, Record, StreamId};

/// Clips per forward pass.
const BATCH: usize = 8;

pub trait RhythmModel<'scope> {
    /// `Record::Model` for every clip that makes a model input; clips that do
    /// not (too short, no audio) get none, and their rows keep null model columns.
    fn rhythm_model(self, model: Rc<TrainedModel>) -> Stream<'scope, u64, Vec<(StreamId, Record)>>;
}

impl<'scope> RhythmModel<'scope> for Stream<'scope, u64, Vec<(StreamId, ClipOutcome)>> {
    fn rhythm_model(self, model: Rc<TrainedModel>) -> Stream<'scope, u64, Vec<(StreamId, Record)>> {
        // Already exchanged by stream: the clips stay on the worker that cut them.
        self.unary(Pipeline, "RhythmModel", move |_, _| {
            move |input, output| {
                input.for_each(|time, data| {
                    let clips: Vec<(StreamId, TrainingClip)> =
                        data.drain(..).filter_map(|(id, outcome)| outcome.ok().map(|clip| (id, clip))).collect();
                    let mut session = output.session(&time);
                    for group in clips.chunks(BATCH) {
                        let outputs = infer(&model, &group.iter().map(|(_, clip)| clip).collect::<Vec<_>>());
                        session
                            .give_iterator(group.iter().map(|(id, _)| *id).zip(outputs.into_iter().map(Record::Model)));
                    }
                });
            }
        })
        .container::<Vec<_>>()
    }
}

/// The model's outputs for a group of clips, in order.
fn infer(trained: &TrainedModel, clips: &[&TrainingClip]) -> Vec<ModelOutput> {
    let cached: Vec<CachedClip> = clips.iter().map(|c| CachedClip::from_training(c)).collect();
    let (frames, hoof, audio) = model_inputs(&cached.iter().collect::<Vec<_>>(), trained.config(), trained.device);
    let inference = trained.infer(&frames, &hoof, Some(&audio));
    let probability = rows(&inference.rhythm_probability);
    let visual = rows(&inference.visual_embedding);
    let audio = rows(inference.audio_embedding.as_ref().expect("the clips' own audio was given"));
    let decided = inference.rhythm_frames;
    clips
        .iter()
        .enumerate()
        .map(|(i, clip)| {
            let frames = clip.frame_times.len();
            let mut rhythm = vec![false; frames];
            decided[i].iter().filter(|&&t| t < frames).for_each(|&t| rhythm[t] = true);
            ModelOutput {
                clip: clip.meta.clip,
                start_s: clip.meta.start_s,
                frame_times: clip.frame_times.clone(),
                rhythm_probability: probability[i].clone(),
                rhythm,
                visual_embedding: visual[i].clone(),
                audio_embedding: audio[i].clone(),
            }
        })
        .collect()
}
