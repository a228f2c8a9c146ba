//! `mudar flow`: optical flow between two images.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mudar_operators::motion::{DisParams, Flow, Gray, dis_flow};

/// Dense optical flow from FRAME1 to FRAME2 (PNG or JPEG, same size), written
/// as a Middlebury .flo file at the input resolution.
///
/// The backend is DIS (dense inverse search), a weight-free CPU flow.
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
    /// Finest pyramid level computed (0: full resolution, slower and sharper).
    #[arg(long, default_value_t = 1)]
    finest_scale: usize,
    #[arg(long, default_value_t = 8)]
    patch_size: usize,
    #[arg(long, default_value_t = 3)]
    patch_stride: usize,
}

fn load(path: &PathBuf) -> anyhow::Result<Gray> {
    let image = image::open(path).with_context(|| format!("{}: cannot read the image", path.display()))?.to_rgb8();
    let (w, h) = image.dimensions();
    Ok(Gray::from_rgb(image.as_raw(), w as usize, h as usize))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.patch_size >= 2 && args.patch_stride >= 1,
        "--patch-size must be at least 2 and --patch-stride at least 1"
    );
    let (i0, i1) = (load(&args.frame1)?, load(&args.frame2)?);
    anyhow::ensure!(
        (i0.width, i0.height) == (i1.width, i1.height),
        "the frames differ in size: {}x{} and {}x{}",
        i0.width,
        i0.height,
        i1.width,
        i1.height
    );
    let params = DisParams {
        finest_scale: args.finest_scale,
        patch_size: args.patch_size,
        patch_stride: args.patch_stride,
        ..Default::default()
    };
    let flow = dis_flow(&i0, &i1, &params);
    write_flo(&flow, &args.out)?;
    if let Some(png) = &args.png {
        image::save_buffer(png, &flow.to_rgb(None), flow.width as u32, flow.height as u32, image::ColorType::Rgb8)
            .with_context(|| format!("cannot write {}", png.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_flo(flow: &Flow, path: &PathBuf) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    flow.write_flo(std::io::BufWriter::new(file)).with_context(|| format!("cannot write {}", path.display()))
}
