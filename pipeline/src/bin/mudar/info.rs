//! `mudar info`: what this installation can do.

use std::process::ExitCode;

use serde_json::json;

/// Check the installation: GStreamer and the plugins mudar uses, libtorch and
/// its devices.
///
/// Exits with 1 if a required GStreamer element is missing.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Elements mudar needs, and the Debian package providing each.
const ELEMENTS: &[(&str, &str)] = &[
    ("uridecodebin", "gstreamer1.0-plugins-base"),
    ("audioconvert", "gstreamer1.0-plugins-base"),
    ("audioresample", "gstreamer1.0-plugins-base"),
    ("videoconvert", "gstreamer1.0-plugins-base"),
    ("videoscale", "gstreamer1.0-plugins-base"),
    ("videorate", "gstreamer1.0-plugins-base"),
    ("appsink", "gstreamer1.0-plugins-base"),
    ("appsrc", "gstreamer1.0-plugins-base"),
    ("aspectratiocrop", "gstreamer1.0-plugins-good"),
    ("qtdemux", "gstreamer1.0-plugins-good"),
    ("matroskademux", "gstreamer1.0-plugins-good"),
    ("avdec_h264", "gstreamer1.0-libav"),
    ("vp8dec", "gstreamer1.0-plugins-good"),
    ("vp9dec", "gstreamer1.0-plugins-good"),
    ("x264enc", "gstreamer1.0-plugins-ugly"),
    ("avenc_aac", "gstreamer1.0-libav"),
    ("opusenc", "gstreamer1.0-plugins-base"),
    ("vorbisenc", "gstreamer1.0-plugins-base"),
    ("vp8enc", "gstreamer1.0-plugins-good"),
    ("vp9enc", "gstreamer1.0-plugins-good"),
    ("lamemp3enc", "gstreamer1.0-plugins-good"),
];

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    mudar_pipeline::init()?;
    let missing: Vec<_> = ELEMENTS.iter().filter(|(name, _)| gst::ElementFactory::find(name).is_none()).collect();
    let cuda_devices = if tch::Cuda::is_available() { tch::Cuda::device_count() } else { 0 };
    if args.json {
        let value = json!({
            "mudar": env!("CARGO_PKG_VERSION"),
            "gstreamer": gst::version_string().to_string(),
            "missing_elements": missing.iter().map(|(n, p)| json!({"element": n, "package": p})).collect::<Vec<_>>(),
            "torch": { "cuda_devices": cuda_devices, "cudnn": tch::Cuda::cudnn_is_available(), "threads": tch::get_num_threads() },
        });
        println!("{value}");
    } else {
        println!("mudar      {}", env!("CARGO_PKG_VERSION"));
        println!("gstreamer  {}", gst::version_string());
        match missing.is_empty() {
            true => println!("elements   all {} required elements found", ELEMENTS.len()),
            false => missing.iter().for_each(|(n, p)| println!("elements   MISSING {n} (install {p})")),
        }
        println!(
            "libtorch   {} CPU threads, {cuda_devices} CUDA device(s){}",
            tch::get_num_threads(),
            if tch::Cuda::cudnn_is_available() { ", cuDNN" } else { "" }
        );
    }
    Ok(if missing.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
