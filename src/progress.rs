//! Progress of a run: a bar on a terminal (sequences done of planned with the time left, items
//! and their rate), a `progress` log line every ten seconds otherwise
//! (cron mails and log shippers get a heartbeat, not a redrawn line).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::model::page::Event;

const LOG_EVERY: Duration = Duration::from_secs(10);

/// Counts sequences, pages, items and bytes as the snapshot takes them.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    planned: AtomicU64,
    done: AtomicU64,
    items: AtomicU64,
    bytes: AtomicU64,
    started: Instant,
    last_log: Mutex<Instant>,
}

impl Progress {
    /// A bar on stderr when `bar`, log lines otherwise.
    pub fn new(bar: bool) -> Progress {
        let bar = bar.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} sequences, ETA {eta}  {msg}",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            planned: AtomicU64::new(0),
            done: AtomicU64::new(0),
            items: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            started: Instant::now(),
            last_log: Mutex::new(Instant::now()),
        }
    }

    /// Adds planned sequences.
    pub fn plan(&self, sequences: u64) {
        let total = self.planned.fetch_add(sequences, Ordering::Relaxed) + sequences;
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Takes one event of the extraction.
    pub fn event(&self, event: &Event) {
        match event {
            Event::Page(page) => {
                self.items.fetch_add(page.items.len() as u64, Ordering::Relaxed);
                self.bytes.fetch_add(page.body.len() as u64, Ordering::Relaxed);
            }
            Event::Done { .. } | Event::NotReady { .. } => {
                self.done.fetch_add(1, Ordering::Relaxed);
            }
            Event::Restart { .. } => {}
        }
        self.show();
    }

    fn show(&self) {
        let (done, planned) = (self.done.load(Ordering::Relaxed), self.planned.load(Ordering::Relaxed));
        let (items, bytes) = (self.items.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed));
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            // Items per second since the start, in whole numbers.
            let ms = (self.started.elapsed().as_millis() as u64).max(1);
            let rate = items.saturating_mul(1000) / ms;
            bar.set_message(format!("{items} items ({rate}/s), {} MB", bytes / 1_000_000));
            return;
        }
        let Ok(mut last) = self.last_log.lock() else { return };
        if last.elapsed() >= LOG_EVERY {
            *last = Instant::now();
            tracing::info!(
                event = "progress",
                sequences_done = done,
                sequences_planned = planned,
                items,
                bytes,
                elapsed_s = self.started.elapsed().as_secs()
            );
        }
    }

    /// A writer for log lines that prints them above the bar (plain stderr without one).
    pub fn log_writer(&self) -> LogWriter {
        LogWriter(self.bar.clone())
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Writes log lines to stderr, above the progress bar when there is one.
#[derive(Debug, Clone)]
pub struct LogWriter(Option<ProgressBar>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &self.0 {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf)).map(|()| buf.len()),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
