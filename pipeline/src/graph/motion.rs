//! Dance motion: consecutive frame pairs, optical flow batched across
//! streams, then HOOF, motion energy and visual beats per frame.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use mudar_operators::motion::{DisParams, Flow, FlowBackend, HoofParams, MotionStream, VisualBeatParams};
use mudar_schemas::VideoFrameRow;
use serde::{Deserialize, Serialize};
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::operator::Operator;

use super::{Event, Record, StreamId, stream_of};

/// Two consecutive frames of a stream: `first` is frame `index`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FramePair {
    pub index: u32,
    pub time_s: f64,
    pub width: u32,
    pub height: u32,
    pub first: Vec<u8>,
    pub second: Vec<u8>,
}

/// What flows between the pairing, flow and motion stages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PairItem {
    Pair(FramePair),
    /// The stream's video ended.
    Closed,
}

#[derive(Clone, Debug)]
pub enum FlowItem {
    Flow { index: u32, time_s: f64, flow: Flow },
    Closed,
}

pub trait FramePairs<'scope> {
    /// Each stream's consecutive frame pairs, in order; none across a gap in a stream.
    fn frame_pairs(self) -> Stream<'scope, u64, Vec<(StreamId, PairItem)>>;
}

impl<'scope> FramePairs<'scope> for Stream<'scope, u64, Vec<(StreamId, Event)>> {
    fn frame_pairs(self) -> Stream<'scope, u64, Vec<(StreamId, PairItem)>> {
        let mut previous: HashMap<StreamId, (u32, crate::VideoFrame)> = HashMap::new();
        self.unary(Exchange::new(stream_of), "FramePairs", move |_, _| {
            move |input, output| {
                input.for_each(|time, data| {
                    let mut session = output.session(&time);
                    for (id, event) in data.drain(..) {
                        match event {
                            Event::Video(frame) => {
                                let index = match previous.remove(&id) {
                                    // Frames missing in between (a live source dropped them, or
                                    // its stream jumped): no flow across the gap.
                                    Some((index, first)) if is_gap(&first, &frame) => index + 1,
                                    Some((index, first)) => {
                                        session.give((
                                            id,
                                            PairItem::Pair(FramePair {
                                                index,
                                                time_s: first.pts.as_secs_f64(),
                                                width: first.width,
                                                height: first.height,
                                                first: first.rgb,
                                                second: frame.rgb.clone(),
                                            }),
                                        ));
                                        index + 1
                                    }
                                    None => 0,
                                };
                                previous.insert(id, (index, frame));
                            }
                            Event::Closed(_) => {
                                previous.remove(&id);
                                session.give((id, PairItem::Closed));
                            }
                            Event::Opened(_) | Event::SenderClock(_) | Event::Audio(_) => {}
                        }
                    }
                });
            }
        })
        .container::<Vec<_>>()
    }
}

/// Whether frames are missing between `first` and `second`: `second` starts more than half a
/// frame after `first` ends (frames of unknown duration never make a gap).
fn is_gap(first: &crate::VideoFrame, second: &crate::VideoFrame) -> bool {
    !first.duration.is_zero() && second.pts > first.pts + first.duration * 3 / 2
}

pub trait OpticalFlow<'scope> {
    /// The flow of every pair, computed in batches of up to `batch` pairs
    /// gathered across the streams this worker owns: a batch runs as soon as
    /// it is full, or when the frontier shows no more pairs of its epochs
    /// are coming. Each stream's items leave in the order they came.
    fn optical_flow(self, backend: Rc<FlowBackend>, batch: usize) -> Stream<'scope, u64, Vec<(StreamId, FlowItem)>>;
}

impl<'scope> OpticalFlow<'scope> for Stream<'scope, u64, Vec<(StreamId, PairItem)>> {
    fn optical_flow(self, backend: Rc<FlowBackend>, batch: usize) -> Stream<'scope, u64, Vec<(StreamId, FlowItem)>> {
        let batch = batch.max(1);
        let mut stash: VecDeque<(Capability<u64>, StreamId, PairItem)> = VecDeque::new();
        // Pairs arrive already on their stream's worker (FramePairs exchanged them).
        self.unary_frontier(Pipeline, "OpticalFlow", move |_, _| {
            move |(input, frontier), output| {
                input.for_each(|time, data| {
                    let cap = time.retain_least(0).expect("a capability for output 0");
                    stash.extend(data.drain(..).map(|(id, item)| (cap.clone(), id, item)));
                });
                loop {
                    // A full batch, else the items whose epochs are complete.
                    let full = stash
                        .iter()
                        .scan(0, |pairs, (_, _, item)| {
                            *pairs += matches!(item, PairItem::Pair(_)) as usize;
                            Some(*pairs)
                        })
                        .position(|pairs| pairs == batch);
                    let take = match full {
                        Some(last) => last + 1,
                        None => stash.iter().take_while(|(cap, _, _)| !frontier.less_equal(cap.time())).count(),
                    };
                    if take == 0 {
                        break;
                    }
                    let items: Vec<_> = stash.drain(..take).collect();
                    let mut flows = compute_flows(&backend, &items).into_iter();
                    for (cap, id, item) in items {
                        let out = match item {
                            PairItem::Pair(pair) => FlowItem::Flow {
                                index: pair.index,
                                time_s: pair.time_s,
                                flow: flows.next().expect("one flow per pair"),
                            },
                            PairItem::Closed => FlowItem::Closed,
                        };
                        output.session(&cap).give((id, out));
                    }
                }
            }
        })
        .container::<Vec<_>>()
    }
}

/// The flows of the pairs among `items`, in order; pairs of different sizes run as separate batches.
///
/// DIS runs a lone pair on one thread: a batch of one means the flow has
/// caught up with the decoders, whose threads the cores are better left to
/// (splitting a pair's short phases over busy cores costs more CPU than the
/// wait it saves). Larger batches run their pairs side by side.
fn compute_flows(backend: &FlowBackend, items: &[(Capability<u64>, StreamId, PairItem)]) -> Vec<Flow> {
    let pairs: Vec<&FramePair> = items
        .iter()
        .filter_map(|(_, _, item)| match item {
            PairItem::Pair(pair) => Some(pair),
            PairItem::Closed => None,
        })
        .collect();
    let lone;
    let backend = match backend {
        FlowBackend::Dis(params) if pairs.len() == 1 && params.threads > 1 => {
            lone = FlowBackend::Dis(DisParams { threads: 1, ..*params });
            &lone
        }
        backend => backend,
    };
    let mut flows: Vec<Option<Flow>> = vec![None; pairs.len()];
    let mut sizes: Vec<(u32, u32)> = pairs.iter().map(|p| (p.width, p.height)).collect();
    sizes.sort_unstable();
    sizes.dedup();
    for (width, height) in sizes {
        let which: Vec<usize> =
            (0..pairs.len()).filter(|&i| (pairs[i].width, pairs[i].height) == (width, height)).collect();
        let frames: Vec<(&[u8], &[u8])> = which.iter().map(|&i| (&pairs[i].first[..], &pairs[i].second[..])).collect();
        for (i, flow) in which.into_iter().zip(backend.flows(&frames, width as usize, height as usize)) {
            flows[i] = Some(flow);
        }
    }
    flows.into_iter().map(|f| f.expect("every pair has a flow")).collect()
}

pub trait MotionFeatures<'scope> {
    /// `video_frames` rows of every stream, each as soon as its visual beat
    /// is decided (`MotionStream`, the streaming form).
    fn motion_features(self, hoof: HoofParams, beats: VisualBeatParams)
    -> Stream<'scope, u64, Vec<(StreamId, Record)>>;
}

impl<'scope> MotionFeatures<'scope> for Stream<'scope, u64, Vec<(StreamId, FlowItem)>> {
    fn motion_features(
        self,
        hoof: HoofParams,
        beats: VisualBeatParams,
    ) -> Stream<'scope, u64, Vec<(StreamId, Record)>> {
        // Per stream: its motion, and the times of frames whose row is not out yet.
        let mut streams: HashMap<StreamId, (MotionStream, VecDeque<f64>)> = HashMap::new();
        self.unary(Pipeline, "MotionFeatures", move |_, _| {
            move |input, output| {
                input.for_each(|time, data| {
                    let mut session = output.session(&time);
                    for (id, item) in data.drain(..) {
                        let frames = match item {
                            FlowItem::Flow { time_s, flow, .. } => {
                                let (motion, times) = streams
                                    .entry(id)
                                    .or_insert_with(|| (MotionStream::new(hoof, beats), VecDeque::new()));
                                times.push_back(time_s);
                                motion.push(&flow).into_iter().map(|f| (f, times.pop_front())).collect::<Vec<_>>()
                            }
                            FlowItem::Closed => match streams.remove(&id) {
                                Some((mut motion, mut times)) => {
                                    motion.finish().into_iter().map(|f| (f, times.pop_front())).collect()
                                }
                                None => Vec::new(),
                            },
                        };
                        for (frame, time_s) in frames {
                            let row = VideoFrameRow {
                                frame: frame.index as u32,
                                time_s: time_s.expect("a time per flow"),
                                hoof: frame.hoof,
                                motion_energy: frame.motion_energy,
                                impact: frame.impact,
                                visual_beat: frame.visual_beat,
                                // The model stage's, joined in the store sink.
                                rhythm_probability: None,
                                rhythm: None,
                            };
                            session.give((id, Record::Video(row)));
                        }
                    }
                });
            }
        })
        .container::<Vec<_>>()
    }
}
