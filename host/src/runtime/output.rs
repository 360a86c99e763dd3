//! Guest output: stdout, stderr and `log` calls become lines of the job's log.
//!
//! Every line goes to the run's [`RunHost`]. A run may write at most [`MAX_LINES`] lines
//! of at most [`MAX_LINE_BYTES`] bytes each; past that, output is dropped and one line
//! says so, so a chatty guest cannot flood the store.

use super::RunHost;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Most log lines one run may write.
pub(super) const MAX_LINES: u32 = 10_000;
/// Longest log line kept; longer lines are cut.
pub(super) const MAX_LINE_BYTES: usize = 4096;

/// Counts a run's lines and forwards them to its host.
pub(super) struct LineSink {
    host: Arc<dyn RunHost>,
    lines: u32,
}

impl LineSink {
    pub(super) fn new(host: Arc<dyn RunHost>) -> Self {
        Self { host, lines: 0 }
    }

    /// Forwards one line, unless the run's allowance is spent.
    pub(super) fn line(&mut self, level: &str, text: &str) {
        if self.lines > MAX_LINES {
            return;
        }
        self.lines += 1;
        if self.lines > MAX_LINES {
            let note = format!("log truncated: a run may write at most {MAX_LINES} lines");
            self.host.log("warn", &note);
            return;
        }
        self.host.log(level, truncate(text, MAX_LINE_BYTES));
    }
}

/// The longest prefix of `text` within `max` bytes that ends on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Shared by a run's log import and its output streams.
pub(super) type SharedSink = Arc<Mutex<LineSink>>;

/// A guest output stream (stdout or stderr) split into log lines.
#[derive(Clone)]
pub(super) struct OutputCapture {
    sink: SharedSink,
    level: &'static str,
    partial: Arc<Mutex<Vec<u8>>>,
    /// The last few lines, to explain a trap (a panic message is on stderr).
    recent: Arc<Mutex<VecDeque<String>>>,
}

/// Lines kept for [`OutputCapture::tail`].
const RECENT_LINES: usize = 5;

impl OutputCapture {
    pub(super) fn new(sink: SharedSink, level: &'static str) -> Self {
        Self {
            sink,
            level,
            partial: Arc::default(),
            recent: Arc::default(),
        }
    }

    /// The last few lines written, joined.
    pub(super) fn tail(&self) -> String {
        let recent = self.recent.lock().expect("output buffer lock poisoned");
        recent
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" | ")
    }

    fn write_bytes(&self, bytes: &[u8]) {
        let mut partial = self.partial.lock().expect("output buffer lock poisoned");
        partial.extend_from_slice(bytes);
        while let Some(newline) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=newline).collect();
            self.emit(&line[..line.len() - 1]);
        }
        if partial.len() > MAX_LINE_BYTES {
            let line: Vec<u8> = std::mem::take(&mut *partial);
            self.emit(&line);
        }
    }

    /// Sends what is left after the guest's last newline.
    pub(super) fn finish(&self) {
        let rest = std::mem::take(&mut *self.partial.lock().expect("output buffer lock poisoned"));
        if !rest.is_empty() {
            self.emit(&rest);
        }
    }

    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let mut recent = self.recent.lock().expect("output buffer lock poisoned");
        if recent.len() == RECENT_LINES {
            recent.pop_front();
        }
        recent.push_back(truncate(text, MAX_LINE_BYTES).to_owned());
        drop(recent);
        self.sink
            .lock()
            .expect("log sink lock poisoned")
            .line(self.level, text);
    }
}

impl IsTerminal for OutputCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputCapture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(AsyncCapture(self.clone()))
    }
}

/// How much the guest may write before it must check again: effectively unbounded.
const WRITE_BUDGET: usize = 1 << 20;

impl OutputStream for OutputCapture {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_BUDGET)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for OutputCapture {
    async fn ready(&mut self) {}
}

/// The same capture for WASI interfaces that want a tokio writer.
struct AsyncCapture(OutputCapture);

impl tokio::io::AsyncWrite for AsyncCapture {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.write_bytes(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, String)>>);

    impl RunHost for Recorder {
        fn progress(&self, _: u8, _: &str) {}
        fn log(&self, level: &str, message: &str) {
            self.0
                .lock()
                .unwrap()
                .push((level.to_owned(), message.to_owned()));
        }
    }

    #[test]
    fn output_is_split_into_lines_across_writes() {
        let recorder = Arc::new(Recorder::default());
        let sink = Arc::new(Mutex::new(LineSink::new(recorder.clone())));
        let out = OutputCapture::new(sink, "stdout");
        out.write_bytes(b"hel");
        out.write_bytes(b"lo\r\nwor");
        out.write_bytes(b"ld\n\ntail");
        out.finish();
        let lines = recorder.0.lock().unwrap().clone();
        let texts: Vec<_> = lines.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(texts, ["hello", "world", "", "tail"]);
        assert!(lines.iter().all(|(level, _)| level == "stdout"));
    }

    #[test]
    fn lines_beyond_the_allowance_are_dropped_with_one_note() {
        let recorder = Arc::new(Recorder::default());
        let mut sink = LineSink::new(recorder.clone());
        for i in 0..MAX_LINES + 50 {
            sink.line("info", &i.to_string());
        }
        let lines = recorder.0.lock().unwrap();
        assert_eq!(lines.len(), MAX_LINES as usize + 1);
        assert!(lines.last().unwrap().1.starts_with("log truncated"));
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let text = "é".repeat(MAX_LINE_BYTES);
        let cut = truncate(&text, MAX_LINE_BYTES - 1);
        assert!(cut.len() < MAX_LINE_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
