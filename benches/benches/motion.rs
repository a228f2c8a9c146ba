//! Dance motion throughput beside the peers a user would otherwise run, in
//! one run: PWC-Net flow pairs per second at 256×256 on the CPU, 1 and 2
//! threads, batches of 1, 8 and 32, next to the same network in PyTorch
//! (eager mode); HOOF per frame next to NumPy; and, when a GPU is visible,
//! PWC-Net pairs per second on it by batch size and precision.
//!
//! `cargo bench -p mudar-benches --bench motion` (after `. scripts/env.sh`).
//! Random weights: speed does not depend on their values. Under `cargo test`
//! it runs one small batch, as a smoke test.

use mudar_benches::best_of;
use mudar_operators::motion::warp::{smooth_field_pair, value_noise};
use mudar_operators::motion::{HoofParams, PwcNet, hoof};
use tch::{Device, Kind, Tensor, nn};

/// Pairs per second of PWC-Net on `batch` random `size`×`size` pairs.
fn pwcnet_pairs_per_second(net: &PwcNet, device: Device, kind: Kind, size: i64, batch: i64) -> f64 {
    let first = Tensor::rand([batch, 3, size, size], (Kind::Float, device));
    let second = Tensor::rand([batch, 3, size, size], (Kind::Float, device));
    let run = || {
        let flow = net.flow(&first.to_kind(kind), &second.to_kind(kind));
        // Waits for a GPU to finish.
        std::hint::black_box(flow.sum(Kind::Float).double_value(&[]));
    };
    run();
    batch as f64 / best_of(if batch < 32 { 3 } else { 2 }, run)
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let (size, batches): (i64, &[i64]) = if benching { (256, &[1, 8, 32]) } else { (64, &[1]) };
    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = PwcNet::new(&vs.root());

    let (i0, truth) = {
        let i0 = value_noise(size as usize, size as usize, 3);
        smooth_field_pair(&i0, 4.0, 5)
    };
    drop(i0);
    let dir = tempfile::tempdir().unwrap();
    let flo = dir.path().join("field.flo");
    truth.write_flo(std::fs::File::create(&flo).unwrap()).unwrap();

    println!("| PWC-Net {size}x{size}, CPU | threads | mudar pairs/s | PyTorch pairs/s | mudar / PyTorch |");
    println!("| --- | --- | --- | --- | --- |");
    let mut numpy_hoof_us = None;
    for threads in if benching { vec![1, 2] } else { vec![1] } {
        tch::set_num_threads(threads);
        let mut args: Vec<String> = vec![size.to_string(), threads.to_string()];
        args.extend(batches.iter().map(|b| b.to_string()));
        args.extend(["--hoof".into(), flo.display().to_string()]);
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        let peer = if benching { mudar_benches::python_peer("pytorch_motion.py", &args) } else { None };
        for &batch in batches {
            let ours = pwcnet_pairs_per_second(&net, Device::Cpu, Kind::Float, size, batch);
            let theirs = peer.as_ref().and_then(|p| p["pwcnet"][batch.to_string()].as_f64());
            let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
            println!(
                "| batch {batch} | {threads} | {ours:.2} | {} | {} |",
                show(theirs),
                show(theirs.map(|t| ours / t))
            );
        }
        numpy_hoof_us = numpy_hoof_us.or(peer.as_ref().and_then(|p| p["hoof_us"].as_f64()));
    }

    let params = HoofParams::default();
    let ours_us = best_of(20, || {
        std::hint::black_box(hoof(&truth, &params));
    }) * 1e6;
    println!();
    println!("| HOOF, {size}x{size} flow, B = {} | mudar µs/frame | NumPy µs/frame | speed-up |", params.bins);
    println!("| --- | --- | --- | --- |");
    let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    println!("| one frame | {ours_us:.1} | {} | {} |", show(numpy_hoof_us), show(numpy_hoof_us.map(|n| n / ours_us)));

    if tch::Cuda::is_available() {
        let device = Device::Cuda(0);
        vs.set_device(device);
        println!();
        println!("| PWC-Net {size}x{size}, GPU | precision | pairs/s |");
        println!("| --- | --- | --- |");
        for (precision, kind) in [("f32", Kind::Float), ("f16", Kind::Half)] {
            vs.set_kind(kind);
            for batch in [1, 8, 32, 128] {
                let rate = pwcnet_pairs_per_second(&net, device, kind, size, batch);
                println!("| batch {batch} | {precision} | {rate:.1} |");
            }
        }
    }
}
