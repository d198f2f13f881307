//! Progress of long commands (`import`, `snapshot build`): a live line
//! (indicatif) when stderr is a terminal, and otherwise plain log lines
//! every few seconds — never `\r` redraws into a file or a CI log.

use std::cell::Cell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is written when stderr is not a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing (`--quiet`).
    Off,
    /// A live line on the terminal.
    Live,
    /// A log line every [`PLAIN_EVERY`].
    Plain,
}

impl Mode {
    /// `Off` unless `enabled`; `Live` on a terminal, else `Plain`.
    pub fn detect(enabled: bool) -> Mode {
        match (enabled, std::io::stderr().is_terminal()) {
            (false, _) => Mode::Off,
            (true, true) => Mode::Live,
            (true, false) => Mode::Plain,
        }
    }
}

/// One command's progress.
pub struct Progress {
    label: &'static str,
    mode: Mode,
    bar: Option<ProgressBar>,
    last: Cell<Instant>,
    every: Duration,
}

impl Progress {
    /// Progress labelled `label` (e.g. `import`), shown as [`Mode::detect`] says.
    pub fn new(label: &'static str, enabled: bool) -> Self {
        Self::with_mode(label, Mode::detect(enabled))
    }

    /// Progress in a given mode.
    pub fn with_mode(label: &'static str, mode: Mode) -> Self {
        let bar = (mode == Mode::Live).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(label);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let every = match mode {
            Mode::Live => Duration::from_millis(100),
            _ => PLAIN_EVERY,
        };
        Progress {
            label,
            mode,
            bar,
            last: Cell::new(Instant::now()),
            every,
        }
    }

    /// The mode in use.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Reports the state `message` describes, if it is time to (the
    /// message is only built then).
    pub fn update(&self, message: impl FnOnce() -> String) -> bool {
        if self.mode == Mode::Off || self.last.get().elapsed() < self.every {
            return false;
        }
        self.last.set(Instant::now());
        let message = message();
        match &self.bar {
            Some(bar) => bar.set_message(message),
            None => tracing::info!("{}: {message}", self.label),
        }
        true
    }

    /// Ends the progress with a last line.
    pub fn finish(&self, message: impl std::fmt::Display) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.mode != Mode::Off {
            tracing::info!("{}: done: {message}", self.label);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_progress_reports_at_most_every_interval_and_off_never() {
        let plain = Progress::with_mode("t", Mode::Plain);
        // Created just now: not yet time.
        assert!(!plain.update(|| "x".into()));
        plain.last.set(Instant::now() - PLAIN_EVERY);
        let mut built = false;
        assert!(plain.update(|| {
            built = true;
            "y".into()
        }));
        assert!(built);
        assert!(!plain.update(|| "z".into()));

        let off = Progress::with_mode("t", Mode::Off);
        off.last.set(Instant::now() - PLAIN_EVERY);
        assert!(!off.update(|| "x".into()));
        assert_eq!(Mode::detect(false), Mode::Off);
    }
}
