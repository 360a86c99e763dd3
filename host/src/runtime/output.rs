//! Guest output: stdout, stderr and `log` calls become lines of the job's log.
//!
//! Every line goes to the run's [`RunHost`]. A run may write at most [`MAX_LINES`] lines
//! and its `log_bytes` limit of bytes, lines of at most [`MAX_LINE_BYTES`] bytes each
//! (longer ones are split); past that, output is dropped unread and one line says so,
//! so a chatty guest cannot flood the store.
//!
//! The work done per write is linear in its bytes and bounded: a stream grants at most
//! [`WRITE_BUDGET`] bytes per write and refuses larger writes.

use super::RunHost;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Most log lines one run may write.
pub(super) const MAX_LINES: u32 = 10_000;
/// Longest log line kept; longer lines are split.
pub(super) const MAX_LINE_BYTES: usize = 4096;
/// Most bytes a guest may write to stdout or stderr at once (what `check-write` grants).
const WRITE_BUDGET: usize = 64 << 10;

/// Counts a run's lines and bytes and forwards them to its host.
pub(super) struct LineSink {
    host: Arc<dyn RunHost>,
    lines: u32,
    bytes: usize,
    max_bytes: usize,
    /// Whether the allowance is spent (and the truncation note written).
    full: bool,
}

impl LineSink {
    /// A sink that takes `max_bytes` of log (each line counted with its newline).
    pub(super) fn new(host: Arc<dyn RunHost>, max_bytes: usize) -> Self {
        Self {
            host,
            lines: 0,
            bytes: 0,
            max_bytes,
            full: false,
        }
    }

    /// Whether the run's allowance is spent: further output is dropped.
    pub(super) fn is_full(&self) -> bool {
        self.full
    }

    /// Forwards one line (cut to [`MAX_LINE_BYTES`]), unless the run's allowance is
    /// spent; the first line past it is replaced by one truncation note.
    pub(super) fn line(&mut self, level: &str, text: &str) {
        if self.full {
            return;
        }
        let text = truncate(text, MAX_LINE_BYTES);
        let cost = text.len() + 1;
        if self.lines >= MAX_LINES || self.bytes + cost > self.max_bytes {
            self.full = true;
            let note = format!(
                "log truncated: a run may write at most {MAX_LINES} lines and {} bytes",
                self.max_bytes
            );
            self.host.log("warn", &note);
            return;
        }
        self.lines += 1;
        self.bytes += cost;
        self.host.log(level, text);
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
    /// The line being written: shorter than [`MAX_LINE_BYTES`], without a newline.
    partial: Arc<Mutex<Vec<u8>>>,
    /// The stream's last bytes, kept even past the allowance, to explain a trap (a
    /// panic message is on stderr).
    end: Arc<Mutex<VecDeque<u8>>>,
}

/// Bytes of the stream's end kept for [`OutputCapture::tail`].
const END_BYTES: usize = 1024;
/// Lines [`OutputCapture::tail`] shows.
const TAIL_LINES: usize = 5;

impl OutputCapture {
    pub(super) fn new(sink: SharedSink, level: &'static str) -> Self {
        Self {
            sink,
            level,
            partial: Arc::default(),
            end: Arc::default(),
        }
    }

    /// The last few lines written (that are not empty), joined.
    pub(super) fn tail(&self) -> String {
        let end = self.end.lock().expect("output buffer lock poisoned");
        let (front, back) = end.as_slices();
        let text = String::from_utf8_lossy(&[front, back].concat()).into_owned();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim_end)
            .filter(|line| !line.is_empty())
            .collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join(" | ")
    }

    /// Keeps the last [`END_BYTES`] of `bytes` as the stream's end: bounded work.
    fn keep_end(&self, bytes: &[u8]) {
        let last = &bytes[bytes.len().saturating_sub(END_BYTES)..];
        let mut end = self.end.lock().expect("output buffer lock poisoned");
        let excess = (end.len() + last.len()).saturating_sub(END_BYTES);
        end.drain(..excess);
        end.extend(last);
    }

    /// Splits `bytes` into lines, looking at each byte once; once the run's allowance
    /// is spent, drops them unread.
    fn write_bytes(&self, mut bytes: &[u8]) {
        self.keep_end(bytes);
        let mut partial = self.partial.lock().expect("output buffer lock poisoned");
        let mut sink = self.sink.lock().expect("log sink lock poisoned");
        while !bytes.is_empty() {
            if sink.is_full() {
                partial.clear();
                return;
            }
            // A newline within reach ends the line; else the line fills up to its cap.
            let room = MAX_LINE_BYTES - partial.len();
            let window = &bytes[..bytes.len().min(room + 1)];
            match window.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    if partial.is_empty() {
                        self.emit(&mut sink, &bytes[..end]);
                    } else {
                        partial.extend_from_slice(&bytes[..end]);
                        self.emit(&mut sink, &partial);
                        partial.clear();
                    }
                    bytes = &bytes[end + 1..];
                }
                None => {
                    let take = bytes.len().min(room);
                    partial.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if partial.len() == MAX_LINE_BYTES {
                        self.emit(&mut sink, &partial);
                        partial.clear();
                    }
                }
            }
        }
    }

    /// Sends what is left after the guest's last newline.
    pub(super) fn finish(&self) {
        let rest = std::mem::take(&mut *self.partial.lock().expect("output buffer lock poisoned"));
        if !rest.is_empty() {
            let mut sink = self.sink.lock().expect("log sink lock poisoned");
            self.emit(&mut sink, &rest);
        }
    }

    fn emit(&self, sink: &mut LineSink, line: &[u8]) {
        if sink.is_full() {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        sink.line(self.level, text);
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

impl OutputStream for OutputCapture {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        if bytes.len() > WRITE_BUDGET {
            return Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                "a write of {} bytes is larger than the {WRITE_BUDGET} bytes check-write grants",
                bytes.len()
            )));
        }
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
        let taken = &buf[..buf.len().min(WRITE_BUDGET)];
        self.0.write_bytes(taken);
        std::task::Poll::Ready(Ok(taken.len()))
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

    fn capture(max_bytes: usize) -> (Arc<Recorder>, OutputCapture) {
        let recorder = Arc::new(Recorder::default());
        let sink = Arc::new(Mutex::new(LineSink::new(recorder.clone(), max_bytes)));
        (recorder, OutputCapture::new(sink, "stdout"))
    }

    fn texts(recorder: &Recorder) -> Vec<String> {
        let lines = recorder.0.lock().unwrap();
        lines.iter().map(|(_, m)| m.clone()).collect()
    }

    #[test]
    fn output_is_split_into_lines_across_writes() {
        let (recorder, out) = capture(1 << 20);
        out.write_bytes(b"hel");
        out.write_bytes(b"lo\r\nwor");
        out.write_bytes(b"ld\n\ntail");
        out.finish();
        assert_eq!(texts(&recorder), ["hello", "world", "", "tail"]);
        let lines = recorder.0.lock().unwrap();
        assert!(lines.iter().all(|(level, _)| level == "stdout"));
    }

    #[test]
    fn long_lines_are_split_at_the_line_cap() {
        let (recorder, out) = capture(1 << 20);
        out.write_bytes(&[b'a'; MAX_LINE_BYTES - 1]);
        out.write_bytes(&[b'b'; MAX_LINE_BYTES + 2]);
        out.write_bytes(b"\n");
        let lines = texts(&recorder);
        assert_eq!(
            lines.len(),
            3,
            "{:?}",
            lines.iter().map(String::len).collect::<Vec<_>>()
        );
        assert_eq!(lines[0], format!("{}b", "a".repeat(MAX_LINE_BYTES - 1)));
        assert_eq!(lines[1], "b".repeat(MAX_LINE_BYTES));
        assert_eq!(lines[2], "b");
    }

    #[test]
    fn lines_beyond_the_allowance_are_dropped_with_one_note() {
        let recorder = Arc::new(Recorder::default());
        let mut sink = LineSink::new(recorder.clone(), usize::MAX);
        for i in 0..MAX_LINES + 50 {
            sink.line("info", &i.to_string());
        }
        let lines = recorder.0.lock().unwrap();
        assert_eq!(lines.len(), MAX_LINES as usize + 1);
        assert!(lines.last().unwrap().1.starts_with("log truncated"));
    }

    #[test]
    fn bytes_beyond_the_allowance_are_dropped_with_one_note() {
        let (recorder, out) = capture(100);
        for _ in 0..20 {
            out.write_bytes(b"123456789\n");
        }
        out.finish();
        let lines = texts(&recorder);
        assert_eq!(lines.len(), 11, "{lines:?}");
        assert!(lines[..10].iter().all(|line| line == "123456789"));
        assert!(lines[10].starts_with("log truncated"), "{lines:?}");
    }

    #[test]
    fn the_tail_shows_the_last_lines_even_past_the_allowance() {
        let (_, out) = capture(10);
        out.write_bytes(&[b'x'; 5000]);
        out.write_bytes(b"\nfirst\n\nsecond\r\nthird");
        let tail = out.tail();
        assert!(tail.ends_with("xx | first | second | third"), "{tail}");
        assert!(
            tail.split(" | ").next().unwrap().len() < END_BYTES,
            "{tail}"
        );
        for n in 0..10 {
            out.write_bytes(format!("line {n}\n").as_bytes());
        }
        assert_eq!(out.tail(), "line 5 | line 6 | line 7 | line 8 | line 9");
    }

    #[test]
    fn a_write_full_of_newlines_is_handled_in_linear_time() {
        let (recorder, out) = capture(usize::MAX);
        let started = std::time::Instant::now();
        for _ in 0..(8 << 20) / WRITE_BUDGET {
            out.write_bytes(&[b'\n'; WRITE_BUDGET]);
        }
        let lines = recorder.0.lock().unwrap();
        assert_eq!(lines.len(), MAX_LINES as usize + 1);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn writes_larger_than_granted_are_refused() {
        let (recorder, mut out) = capture(1 << 20);
        let granted = out.check_write().unwrap();
        assert_eq!(granted, WRITE_BUDGET);
        assert!(out.write(Bytes::from(vec![b'x'; granted + 1])).is_err());
        assert!(recorder.0.lock().unwrap().is_empty());
        out.write(Bytes::from_static(b"fits\n")).unwrap();
        assert_eq!(texts(&recorder), ["fits"]);
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let text = "é".repeat(MAX_LINE_BYTES);
        let cut = truncate(&text, MAX_LINE_BYTES - 1);
        assert!(cut.len() < MAX_LINE_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
