//! Bounded text: keeping what an agent sees of a long output, and echoing
//! a command's output to the run's log, in memory that does not grow with
//! the output.
//!
//! An observation keeps the head and the tail of an output and says how
//! much was cut between them. The echo prefixes each line with `STDOUT:` or
//! `STDERR:` (as the original's runner printed them) and stops writing past
//! a size limit, then writes the tail at the end.

use std::io::Write;

/// Bytes kept from the start and from the end of a long observation.
pub const OBS_HEAD: usize = 10_000;
pub const OBS_TAIL: usize = 10_000;

/// Bytes of one command's output echoed to the run's log before echoing
/// stops (the tail is still written at the end).
pub const ECHO_LIMIT: u64 = 64 * 1024 * 1024;

/// A partial line longer than this is written out as if it were a line.
const MAX_LINE: usize = 64 * 1024;

/// The first `head` and last `tail` bytes of a stream of any length.
///
/// The tail is a ring buffer filled with slice copies, so even an
/// unoptimised build keeps up with a gigabyte of output.
#[derive(Debug, Clone)]
pub struct BoundedText {
    head_cap: usize,
    head: Vec<u8>,
    /// Ring of capacity `ring.len()`; `tail_len` bytes are valid, the
    /// oldest at `tail_start`.
    ring: Vec<u8>,
    tail_start: usize,
    tail_len: usize,
    total: u64,
    /// The last byte dropped from the middle: when it is a newline, the
    /// tail starts at a line.
    last_cut: Option<u8>,
}

impl Default for BoundedText {
    fn default() -> Self {
        BoundedText::new(OBS_HEAD, OBS_TAIL)
    }
}

impl BoundedText {
    pub fn new(head: usize, tail: usize) -> BoundedText {
        BoundedText {
            head_cap: head,
            head: Vec::new(),
            ring: vec![0; tail],
            tail_start: 0,
            tail_len: 0,
            total: 0,
            last_cut: None,
        }
    }

    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.head.len() < self.head_cap {
            let n = (self.head_cap - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        let cap = self.ring.len();
        if bytes.is_empty() || cap == 0 {
            if cap == 0 {
                if let Some(&b) = bytes.last() {
                    self.last_cut = Some(b);
                }
            }
            return;
        }
        if bytes.len() >= cap {
            let skip = bytes.len() - cap;
            self.last_cut = if skip > 0 {
                Some(bytes[skip - 1])
            } else if self.tail_len > 0 {
                Some(self.ring[(self.tail_start + self.tail_len - 1) % cap])
            } else {
                self.last_cut
            };
            self.ring.copy_from_slice(&bytes[skip..]);
            self.tail_start = 0;
            self.tail_len = cap;
            return;
        }
        let overflow = (self.tail_len + bytes.len()).saturating_sub(cap);
        if overflow > 0 {
            self.last_cut = Some(self.ring[(self.tail_start + overflow - 1) % cap]);
            self.tail_start = (self.tail_start + overflow) % cap;
            self.tail_len -= overflow;
        }
        // Write after the newest byte, wrapping once at most.
        let at = (self.tail_start + self.tail_len) % cap;
        let first = (cap - at).min(bytes.len());
        self.ring[at..at + first].copy_from_slice(&bytes[..first]);
        self.ring[..bytes.len() - first].copy_from_slice(&bytes[first..]);
        self.tail_len += bytes.len();
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The kept tail, oldest byte first.
    pub fn tail(&self) -> Vec<u8> {
        let cap = self.ring.len();
        let mut out = Vec::with_capacity(self.tail_len);
        if cap == 0 {
            return out;
        }
        let end = self.tail_start + self.tail_len;
        if end <= cap {
            out.extend_from_slice(&self.ring[self.tail_start..end]);
        } else {
            out.extend_from_slice(&self.ring[self.tail_start..]);
            out.extend_from_slice(&self.ring[..end - cap]);
        }
        out
    }

    /// Bytes between head and tail that were dropped.
    pub fn cut(&self) -> u64 {
        self.total - self.head.len() as u64 - self.tail_len as u64
    }

    /// The kept text; when something was cut, head and tail are trimmed to
    /// whole lines and joined by a line saying how much is missing.
    pub fn render(&self) -> String {
        let tail = self.tail();
        if self.cut() == 0 {
            let mut all = self.head.clone();
            all.extend_from_slice(&tail);
            return String::from_utf8_lossy(&all).into_owned();
        }
        // Trim to line boundaries when one is near, so no line is shown
        // half; the trimmed bytes count as cut.
        let mut head = &self.head[..];
        if let Some(i) = head.iter().rposition(|&b| b == b'\n') {
            if i + 1 >= head.len() / 2 {
                head = &head[..=i];
            }
        }
        let mut tail_s = &tail[..];
        let at_line_start = self.last_cut.is_none_or(|b| b == b'\n');
        if let Some(i) = tail_s
            .iter()
            .position(|&b| b == b'\n')
            .filter(|_| !at_line_start)
        {
            if i < tail_s.len() / 2 {
                tail_s = &tail_s[i + 1..];
            }
        }
        let cut = self.total - head.len() as u64 - tail_s.len() as u64;
        let mut out = String::from_utf8_lossy(head).into_owned();
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!(
            "[... {cut} bytes of output cut here; the run's log file holds more ...]\n"
        ));
        out.push_str(&String::from_utf8_lossy(tail_s));
        out
    }
}

/// Writes a command's output to a log, one prefixed line at a time.
pub struct LineEcho<'a> {
    out: &'a mut dyn Write,
    partial: [Vec<u8>; 2],
    written: u64,
    skipped: u64,
    limit: u64,
}

impl<'a> LineEcho<'a> {
    pub fn new(out: &'a mut dyn Write, limit: u64) -> LineEcho<'a> {
        LineEcho {
            out,
            partial: [Vec::new(), Vec::new()],
            written: 0,
            skipped: 0,
            limit,
        }
    }

    fn prefix(stream: usize) -> &'static [u8] {
        if stream == 0 {
            b"STDOUT: "
        } else {
            b"STDERR: "
        }
    }

    /// `stream` 0 is stdout, 1 is stderr.
    pub fn push(&mut self, stream: usize, mut bytes: &[u8]) {
        if self.written >= self.limit {
            // Past the limit nothing more is written until `finish`.
            self.skipped += bytes.len() as u64;
            return;
        }
        while let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            let (line, rest) = bytes.split_at(i + 1);
            if self.partial[stream].is_empty() {
                self.emit(stream, line);
            } else {
                let mut l = std::mem::take(&mut self.partial[stream]);
                l.extend_from_slice(line);
                self.emit(stream, &l);
            }
            bytes = rest;
        }
        self.partial[stream].extend_from_slice(bytes);
        if self.partial[stream].len() >= MAX_LINE {
            let mut l = std::mem::take(&mut self.partial[stream]);
            l.push(b'\n');
            self.emit(stream, &l);
        }
    }

    fn emit(&mut self, stream: usize, line: &[u8]) {
        if self.written >= self.limit {
            self.skipped += line.len() as u64;
            return;
        }
        self.written += line.len() as u64;
        let _ = self.out.write_all(Self::prefix(stream));
        let _ = self.out.write_all(line);
    }

    /// Flushes partial lines; when output was skipped, says how much and
    /// writes the given tails so the end of the output is in the log.
    pub fn finish(mut self, tails: [&BoundedText; 2]) {
        for s in 0..2 {
            if !self.partial[s].is_empty() {
                let mut l = std::mem::take(&mut self.partial[s]);
                l.push(b'\n');
                self.emit(s, &l);
            }
        }
        if self.skipped > 0 {
            let _ = writeln!(
                self.out,
                "[mlab: {} more bytes of output were not written to this log; the last part of each stream follows]",
                self.skipped
            );
            for (s, t) in tails.iter().enumerate() {
                let tail = t.tail();
                for line in tail.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    let _ = self.out.write_all(Self::prefix(s));
                    let _ = self.out.write_all(line);
                    let _ = self.out.write_all(b"\n");
                }
            }
        }
        let _ = self.out.flush();
    }
}

/// Shortens an observation that is already in memory the same way.
pub fn bound(text: &str) -> String {
    if text.len() <= OBS_HEAD + OBS_TAIL {
        return text.to_string();
    }
    let mut b = BoundedText::default();
    b.push(text.as_bytes());
    b.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        let mut b = BoundedText::new(10, 10);
        b.push(b"hello ");
        b.push(b"world\n");
        assert_eq!(b.render(), "hello world\n");
        assert_eq!(b.cut(), 0);
    }

    #[test]
    fn long_output_keeps_head_and_tail_and_says_what_was_cut() {
        let mut b = BoundedText::new(20, 20);
        for i in 0..1000 {
            b.push(format!("line {i:04}\n").as_bytes());
        }
        let r = b.render();
        assert!(r.starts_with("line 0000\nline 0001\n"), "{r}");
        assert!(r.ends_with("line 0998\nline 0999\n"), "{r}");
        assert!(r.contains("9960 bytes of output cut here"), "{r}");
        assert!(!r.contains("line 0500"));
        assert!(r.len() < 200);
    }

    #[test]
    fn ring_keeps_the_last_bytes_across_any_chunking() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for chunk in [1, 3, 7, 16, 17, 100, 5000] {
            let mut b = BoundedText::new(10, 16);
            for c in data.chunks(chunk) {
                b.push(c);
            }
            assert_eq!(b.tail(), &data[data.len() - 16..], "chunk {chunk}");
            assert_eq!(b.head, &data[..10]);
            assert_eq!(b.cut(), 5000 - 26);
        }
    }

    #[test]
    fn echo_prefixes_lines_and_stops_at_its_limit() {
        let mut log = Vec::new();
        let mut tail_out = BoundedText::new(0, 16);
        let tail_err = BoundedText::new(0, 16);
        {
            let mut e = LineEcho::new(&mut log, 30);
            e.push(0, b"one\ntw");
            e.push(1, b"bad\n");
            e.push(0, b"o\n");
            for _ in 0..10 {
                e.push(0, b"more output\n");
                tail_out.push(b"more output\n");
            }
            tail_out.push(b"the end\n");
            e.push(0, b"the end\n");
            e.finish([&tail_out, &tail_err]);
        }
        let s = String::from_utf8(log).unwrap();
        assert!(
            s.starts_with("STDOUT: one\nSTDERR: bad\nSTDOUT: two\n"),
            "{s}"
        );
        assert!(s.contains("more bytes of output were not written"), "{s}");
        assert!(s.ends_with("STDOUT: the end\n"), "{s}");
    }

    #[test]
    fn bound_leaves_short_text_alone() {
        assert_eq!(bound("abc"), "abc");
        let long = "x\n".repeat(50_000);
        assert!(bound(&long).len() < OBS_HEAD + OBS_TAIL + 200);
    }
}
