//! Progress bars on a terminal, nothing otherwise.

use indicatif::{ProgressBar, ProgressStyle};

/// A line for a live feed's connection (no end, so no bar): a spinner, the feed, and a message
/// the caller keeps current.
pub fn feed(input: String) -> ProgressBar {
    let line = ProgressBar::new_spinner();
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        line.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    line.set_style(ProgressStyle::with_template("{spinner} {prefix} {msg}").expect("valid template"));
    line.set_prefix(input);
    line.enable_steady_tick(std::time::Duration::from_millis(200));
    line
}

/// A bar counting `total` `unit`s with throughput and ETA, hidden when stderr is not a terminal.
pub fn bar(total: u64, message: String, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let template = format!("{{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}})");
    bar.set_style(ProgressStyle::with_template(&template).expect("valid template").progress_chars("=> "));
    bar.set_message(message);
    bar
}
