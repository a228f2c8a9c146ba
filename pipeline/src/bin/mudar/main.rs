//! `mudar`: music-dance video understanding from the command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod classify;
mod eval;
mod extract;
mod flow;
mod info;
mod motion;
mod music;
mod probe;
mod progress;
mod retarget;
mod retrieve;
mod store;
mod synth;
mod train;

/// Music-dance video understanding: decode dance videos, measure their music
/// and dance rhythm, and build feature stores.
///
/// Inputs are local paths or URIs in any format GStreamer decodes (MP4, WebM,
/// MKV, AVI, MOV, GIF; WAV, FLAC, OGG, MP3, M4A). Start with `mudar synth` to
/// make sample dances, then `mudar probe` them, `mudar music` their music
/// rhythm and `mudar motion` their dance motion. `mudar info` checks the
/// installation.
#[derive(Debug, Parser)]
#[command(name = "mudar", version, about, long_about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Probe(probe::Args),
    Music(music::Args),
    Extract(extract::Args),
    Flow(flow::Args),
    Motion(motion::Args),
    Synth(synth::Args),
    Train(train::Args),
    Eval(eval::Args),
    Retrieve(retrieve::Args),
    Classify(classify::Args),
    Retarget(retarget::Args),
    Store(store::Args),
    Info(info::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe(args) => probe::run(args),
        Command::Music(args) => music::run(args),
        Command::Extract(args) => extract::run(args),
        Command::Flow(args) => flow::run(args),
        Command::Motion(args) => motion::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Retrieve(args) => retrieve::run(args),
        Command::Classify(args) => classify::run(args),
        Command::Retarget(args) => retarget::run(args),
        Command::Store(args) => store::run(args),
        Command::Info(args) => info::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mudar: {err:#}");
            ExitCode::FAILURE
        }
    }
}
