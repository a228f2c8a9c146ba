//! `mudar flow`: optical flow between two images.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use mudar_operators::motion::{DisParams, Flow, FlowBackend};
use mudar_pipeline::extract::FlowChoice;

/// Dense optical flow from FRAME1 to FRAME2 (PNG or JPEG, same size), written
/// as a Middlebury .flo file at the input resolution.
///
/// Backends: PWC-Net with the weights given by --weights (a safetensors file
/// from scripts/convert_pwcnet.py), or DIS (dense inverse search), a
/// weight-free CPU flow, the default without weights.
#[derive(Debug, clap::Args)]
pub struct Args {
    frame1: PathBuf,
    frame2: PathBuf,
    /// Output .flo file.
    #[arg(long, short)]
    out: PathBuf,
    /// Also write the Middlebury colour coding of the flow to this PNG.
    #[arg(long)]
    png: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendArgs,
}

/// Flow backend options, shared by the commands that compute flow.
#[derive(Debug, clap::Args)]
pub struct BackendArgs {
    /// Flow backend; default: pwcnet when --weights is given, else dis.
    #[arg(long, value_parser = ["dis", "pwcnet"])]
    backend: Option<String>,
    /// PWC-Net weights (safetensors, see scripts/convert_pwcnet.py).
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// PWC-Net device: cpu, cuda, cuda:N, or auto (the first GPU if any).
    #[arg(long, default_value = "auto")]
    device: String,
    /// PWC-Net in half precision (GPU only).
    #[arg(long)]
    half: bool,
    /// DIS: finest pyramid level computed (0: full resolution, slower and sharper).
    #[arg(long, default_value_t = DisParams::default().finest_scale)]
    finest_scale: usize,
    /// DIS: side of the square patches.
    #[arg(long, default_value_t = DisParams::default().patch_size)]
    patch_size: usize,
    /// DIS: distance between neighbouring patches.
    #[arg(long, default_value_t = DisParams::default().patch_stride)]
    patch_stride: usize,
}

impl BackendArgs {
    /// The device --device names (also the one a model trains on).
    pub fn device(&self) -> anyhow::Result<tch::Device> {
        parse_device(&self.device)
    }

    /// The backend the options choose, to build per worker.
    pub fn choice(&self) -> anyhow::Result<FlowChoice> {
        let pwcnet = match self.backend.as_deref() {
            Some("pwcnet") => true,
            Some(_) => false,
            None => self.weights.is_some(),
        };
        if !pwcnet {
            anyhow::ensure!(
                self.patch_size >= 2 && self.patch_stride >= 1,
                "--patch-size must be at least 2 and --patch-stride at least 1"
            );
            return Ok(FlowChoice::Dis(DisParams {
                finest_scale: self.finest_scale,
                patch_size: self.patch_size,
                patch_stride: self.patch_stride,
                ..Default::default()
            }));
        }
        let weights = self.weights.clone().context(
            "the pwcnet backend needs --weights FILE.safetensors (convert a public checkpoint with \
             scripts/convert_pwcnet.py), or use --backend dis",
        )?;
        let device = parse_device(&self.device)?;
        anyhow::ensure!(!self.half || device.is_cuda(), "--half needs a GPU (--device cuda)");
        Ok(FlowChoice::PwcNet { weights, device, half: self.half })
    }

    pub fn backend(&self) -> anyhow::Result<FlowBackend> {
        self.choice()?.backend().map_err(anyhow::Error::msg)
    }
}

pub fn parse_device(name: &str) -> anyhow::Result<tch::Device> {
    let device = match name {
        "auto" => tch::Device::cuda_if_available(),
        "cpu" => tch::Device::Cpu,
        "cuda" => tch::Device::Cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => tch::Device::Cuda(n),
            None => anyhow::bail!("unknown device {other:?}: use cpu, cuda, cuda:N or auto"),
        },
    };
    if let tch::Device::Cuda(n) = device {
        let count = tch::Cuda::device_count() as usize;
        anyhow::ensure!(n < count, "no CUDA device {n}: this machine has {count} (see `mudar info`)");
    }
    Ok(device)
}

fn load(path: &Path) -> anyhow::Result<image::RgbImage> {
    Ok(image::open(path).with_context(|| format!("{}: cannot read the image", path.display()))?.to_rgb8())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let backend = args.backend.backend()?;
    let (i0, i1) = (load(&args.frame1)?, load(&args.frame2)?);
    anyhow::ensure!(
        i0.dimensions() == i1.dimensions(),
        "the frames differ in size: {}x{} and {}x{}",
        i0.width(),
        i0.height(),
        i1.width(),
        i1.height()
    );
    let (width, height) = (i0.width() as usize, i0.height() as usize);
    let flow = backend.flows(&[(i0.as_raw(), i1.as_raw())], width, height).pop().expect("one pair, one flow");
    write_flo(&flow, &args.out)?;
    if let Some(png) = &args.png {
        image::save_buffer(png, &flow.to_rgb(None), flow.width as u32, flow.height as u32, image::ColorType::Rgb8)
            .with_context(|| format!("cannot write {}", png.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_flo(flow: &Flow, path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    flow.write_flo(std::io::BufWriter::new(file)).with_context(|| format!("cannot write {}", path.display()))
}
