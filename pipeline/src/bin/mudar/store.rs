//! `mudar store`: operations on a feature store as a whole.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

/// Operations on a feature store as a whole.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Compact(CompactArgs),
}

/// Rewrites runs of small committed files (a live feed's windows, many small runs) into files
/// of about --file-size-mb, atomically: readers listing a table folder see the old files or the
/// new ones, never a mix. Safe beside running extractions (they go on writing); removals and
/// other compactions wait their turn.
#[derive(Debug, clap::Args)]
struct CompactArgs {
    /// The store folder.
    store: PathBuf,
    /// Target size of the compacted files, MiB (files under half of it are compacted).
    #[arg(long, default_value_t = 128)]
    file_size_mb: u64,
    /// Rows per Parquet row group of the compacted files.
    #[arg(long, default_value_t = 65_536)]
    row_group_rows: usize,
    /// A JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Compact(args) => compact(args),
    }
}

fn compact(args: CompactArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.store.join(mudar_sinks::store::MANIFEST_DIR).is_dir(),
        "{}: not a mudar store",
        args.store.display()
    );
    anyhow::ensure!(args.file_size_mb > 0, "--file-size-mb must be positive");
    let done = mudar_sinks::store::compact(&args.store, args.file_size_mb << 20, args.row_group_rows)?;
    if args.json {
        println!(
            "{}",
            json!({
                "store": args.store,
                "segments_before": done.segments_before,
                "segments_after": done.segments_after,
                "files_before": done.files_before,
                "files_after": done.files_after,
                "bytes": done.bytes,
                "manifest_lines_folded": done.manifest_lines_folded,
                "fold_error": done.fold_error,
            })
        );
    } else {
        eprintln!(
            "mudar store compact: {}: {} segment(s) in {} file(s) rewritten as {} segment(s) in {} file(s) \
             ({:.1} MiB); {} manifest line(s) folded",
            args.store.display(),
            done.segments_before,
            done.files_before,
            done.segments_after,
            done.files_after,
            done.bytes as f64 / (1 << 20) as f64,
            done.manifest_lines_folded
        );
        if let Some(e) = &done.fold_error {
            eprintln!("mudar store compact: the manifests were not folded ({e}); the next compaction tries again");
        }
    }
    Ok(ExitCode::SUCCESS)
}
