//! Cutting a CSV stream into chunks of whole records, so that chunks can be parsed and validated
//! on several threads and still report the lines the file has.
//!
//! Records end where the `csv` crate's reader ends them, so a newline inside a quoted field, a
//! stray quote inside an unquoted field, or a file with `\r\n` endings is cut exactly where a
//! reader of the whole file would see a record end. Lines are counted as the `csv` crate counts
//! them: one per `\n`.
//!
//! Most records are found by their quotes alone, jumping from one quote or line end to the next
//! (`memchr`): outside quotes a line end ends the record, a quote that opens a field starts a
//! quoted field, and inside one a quote either doubles (an escaped quote), or closes it before a
//! comma or a line end. Anything else (a quote in the middle of an unquoted field, a closing
//! quote followed by more text) is where readers' quirks differ; from the start of such a record
//! to its end the record is read by `csv_core`, the state machine the `csv` crate parses with,
//! and the quick search takes over again after it.

use std::io::Read;

/// Whole records of a CSV stream, and where they sit in it.
#[derive(Debug)]
pub struct Chunk {
    /// Position in the stream, from 0.
    pub index: usize,
    /// Newlines before the chunk: a record at line `n` of the chunk is at line `base_line + n`
    /// of the stream.
    pub base_line: u64,
    /// The records, ending at a record end (or at the end of the stream).
    pub bytes: Vec<u8>,
}

/// Reads a CSV stream and hands it out in chunks of whole records of about `target` bytes.
pub struct Splitter<R> {
    input: R,
    core: csv_core::Reader,
    /// Bytes of the chunk being built: from a record start to what has been read.
    buf: Vec<u8>,
    /// How much of `buf` the state machine has seen.
    scanned: usize,
    /// Where the last complete record in `buf` ends.
    record_end: usize,
    /// Newlines in `buf[..record_end]`.
    newlines: u64,
    /// Newlines in `buf[record_end..scanned]`.
    newlines_after: u64,
    base_line: u64,
    index: usize,
    eof: bool,
    done: bool,
    /// A read error, returned once the complete records before it have been handed out.
    failed: Option<std::io::Error>,
    target: usize,
    scratch: Vec<u8>,
    ends: Vec<usize>,
    /// Buffers of chunks already used, for the next chunks.
    spare: Vec<Vec<u8>>,
    /// Whether the quick search stands inside a quoted field (at `scanned`).
    quoted: bool,
    /// Whether the record being scanned is read by `csv_core` (see the module's comment).
    exact: bool,
}

/// Where the quick search stopped.
enum Quick {
    /// At a record end at or past what was wanted, at the end of what has been read, or at the
    /// end of the stream.
    Stopped,
    /// At something only `csv_core` can decide: the record from `record_end` is read by it.
    Unsure,
}

impl<R> std::fmt::Debug for Splitter<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Splitter")
            .field("index", &self.index)
            .field("base_line", &self.base_line)
            .finish_non_exhaustive()
    }
}

/// How much is read from the input at a time.
const READ_BYTES: usize = 1 << 20;

impl<R: Read> Splitter<R> {
    /// A splitter over `input`, cutting after the first record end at or past `target` bytes.
    pub fn new(input: R, target: usize) -> Self {
        Splitter {
            input,
            core: csv_core::Reader::new(),
            buf: Vec::new(),
            scanned: 0,
            record_end: 0,
            newlines: 0,
            newlines_after: 0,
            base_line: 0,
            index: 0,
            eof: false,
            done: false,
            failed: None,
            target: target.max(1),
            scratch: vec![0; 64 * 1024],
            ends: vec![0; 1024],
            spare: Vec::new(),
            quoted: false,
            exact: false,
        }
    }

    /// Reads more input into `buf`; false at the end of the stream.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        // Into the buffer's spare capacity, without zeroing it first.
        let n = (&mut self.input).take(READ_BYTES as u64).read_to_end(&mut self.buf)?;
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    /// Gives back a chunk's buffer once its records have been used, to hold a later chunk: the
    /// memory is reused instead of allocated (and zeroed by the kernel) for every chunk.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < 8 {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// Finds record ends in what has been read, by the quick search or, for a record it cannot
    /// decide, by the state machine; stops after the first record end at or past `want` bytes
    /// (if any). At the end of the stream, also finishes the last record.
    fn scan(&mut self, want: usize) {
        loop {
            if !self.exact {
                match self.quick(want) {
                    Quick::Stopped => return,
                    Quick::Unsure => {
                        self.exact = true;
                        self.quoted = false;
                        self.core.reset();
                        self.scanned = self.record_end;
                        self.newlines_after = 0;
                    }
                }
            }
            let input = &self.buf[self.scanned..];
            if input.is_empty() && !self.eof {
                return;
            }
            let (result, nin, _, _) = self.core.read_record(input, &mut self.scratch, &mut self.ends);
            self.newlines_after += bytecount(&input[..nin]);
            self.scanned += nin;
            match result {
                csv_core::ReadRecordResult::Record => {
                    self.record_end = self.scanned;
                    self.newlines += self.newlines_after;
                    self.newlines_after = 0;
                    // The quick search goes on from this record end.
                    self.exact = false;
                    if self.record_end >= want {
                        return;
                    }
                }
                csv_core::ReadRecordResult::End => {
                    self.end_of_stream();
                    return;
                }
                csv_core::ReadRecordResult::InputEmpty => {
                    if !self.eof {
                        return;
                    }
                }
                // The fields themselves are not wanted, only where records end.
                csv_core::ReadRecordResult::OutputFull | csv_core::ReadRecordResult::OutputEndsFull => {}
            }
        }
    }

    /// Finds record ends by quotes and line ends alone, from `scanned` (see the module's comment).
    fn quick(&mut self, want: usize) -> Quick {
        let buf = &self.buf;
        let len = buf.len();
        let mut i = self.scanned;
        let mut end = self.record_end;
        // Line ends that start a record are blank lines, skipped as part of the record after
        // them (as `csv_core` skips them): `lead` is where the record's own bytes start.
        let terminator = |b: &u8| matches!(b, b'\r' | b'\n');
        let mut lead = end + buf[end..i].iter().take_while(|b| terminator(b)).count();
        while i < len {
            if self.quoted {
                let Some(k) = memchr::memchr(b'"', &buf[i..]) else {
                    i = len;
                    break;
                };
                let q = i + k;
                match buf.get(q + 1) {
                    // What follows the quote decides; it has not been read yet.
                    None if !self.eof => {
                        i = q;
                        break;
                    }
                    // The stream ends with the closing quote.
                    None => i = len,
                    Some(b'"') => i = q + 2,
                    Some(b',') => {
                        self.quoted = false;
                        i = q + 2;
                    }
                    Some(b'\n' | b'\r') => {
                        self.quoted = false;
                        i = q + 2;
                        end = i;
                        lead = i;
                        if end >= want {
                            break;
                        }
                    }
                    Some(_) => return Quick::Unsure,
                }
            } else {
                let Some(k) = memchr::memchr3(b'"', b'\n', b'\r', &buf[i..]) else {
                    i = len;
                    break;
                };
                let p = i + k;
                i = p + 1;
                if buf[p] == b'"' {
                    // `buf` starts at a record start; a field starts after a comma or a line end.
                    if p == 0 || matches!(buf[p - 1], b',' | b'\n' | b'\r') {
                        self.quoted = true;
                    } else {
                        return Quick::Unsure;
                    }
                } else if p == lead {
                    lead = i;
                } else {
                    end = i;
                    lead = i;
                    if end >= want {
                        break;
                    }
                }
            }
        }
        // Newlines: those before `end` are the records'; those after, the record being read.
        // A record end found now is past `scanned`, so nothing is counted twice.
        let fresh = bytecount(&buf[self.scanned..i]);
        let after = if end > self.record_end { bytecount(&buf[end..i]) } else { self.newlines_after + fresh };
        self.newlines += self.newlines_after + fresh - after;
        self.newlines_after = after;
        self.record_end = end;
        self.scanned = i;
        if self.eof && i >= len {
            self.quoted = false;
            self.end_of_stream();
        }
        Quick::Stopped
    }

    /// At the end of the stream: whatever follows the last record end (nothing, blank lines,
    /// a record without a line end, an unclosed quote) is the last record.
    fn end_of_stream(&mut self) {
        self.record_end = self.buf.len();
        self.newlines += self.newlines_after;
        self.newlines_after = 0;
        self.done = true;
    }

    /// Cuts `buf` at the last record end and returns what is before it.
    fn cut(&mut self) -> Chunk {
        let mut rest = self.spare.pop().unwrap_or_default();
        rest.reserve(self.target.min(64 << 20) + 2 * READ_BYTES);
        rest.extend_from_slice(&self.buf[self.record_end..]);
        let mut bytes = std::mem::replace(&mut self.buf, rest);
        bytes.truncate(self.record_end);
        let chunk = Chunk { index: self.index, base_line: self.base_line, bytes };
        self.index += 1;
        self.base_line += self.newlines;
        self.newlines = 0;
        self.scanned -= self.record_end;
        self.record_end = 0;
        chunk
    }

    /// The line being read (for an error that stops the stream).
    pub fn line(&self) -> u64 {
        self.base_line + self.newlines + self.newlines_after + 1
    }

    /// The first record alone (the header), as a chunk; `None` for an empty stream. The chunks
    /// after it are numbered from 0.
    pub fn first_record(&mut self) -> std::io::Result<Option<Chunk>> {
        let first = self.next_with(1)?;
        self.index = 0;
        Ok(first)
    }

    /// The next chunk of whole records; `None` after the last.
    pub fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        self.next_with(self.target)
    }

    fn next_with(&mut self, want: usize) -> std::io::Result<Option<Chunk>> {
        loop {
            if self.record_end >= want || ((self.done || self.failed.is_some()) && self.record_end > 0) {
                return Ok(Some(self.cut()));
            }
            if self.failed.is_some() && self.scanned < self.buf.len() {
                // What was read before the error may hold more complete records.
                let before = self.scanned;
                self.scan(want);
                if self.scanned > before {
                    continue;
                }
            }
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
            if self.done {
                return Ok(None);
            }
            self.scan(want);
            if self.record_end >= want || self.done {
                continue;
            }
            if let Err(e) = self.fill() {
                self.failed = Some(e);
            }
        }
    }
}

fn bytecount(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record of `text` as the csv crate reads it, with its line.
    fn whole(text: &str) -> Vec<(u64, Vec<String>)> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).has_headers(false).from_reader(text.as_bytes());
        reader
            .records()
            .map(|r| {
                let r = r.expect("record");
                (r.position().map_or(0, |p| p.line()), r.iter().map(str::to_string).collect())
            })
            .collect()
    }

    /// The same records read chunk by chunk, lines shifted by each chunk's base.
    fn chunked(text: &str, target: usize) -> Vec<(u64, Vec<String>)> {
        let mut splitter = Splitter::new(text.as_bytes(), target);
        let mut out = Vec::new();
        let mut indexes = Vec::new();
        while let Some(chunk) = splitter.next_chunk().expect("chunk") {
            indexes.push(chunk.index);
            let mut reader =
                csv::ReaderBuilder::new().flexible(true).has_headers(false).from_reader(chunk.bytes.as_slice());
            for r in reader.records() {
                let r = r.expect("record");
                out.push((
                    chunk.base_line + r.position().map_or(0, |p| p.line()),
                    r.iter().map(str::to_string).collect(),
                ));
            }
        }
        assert_eq!(indexes, (0..indexes.len()).collect::<Vec<_>>());
        out
    }

    #[test]
    fn chunks_hold_whole_records_at_their_lines() {
        // A field longer than the state machine's scratch space, one with many newlines, a record
        // with more fields than it keeps ends for.
        let long =
            format!("a,b\n{},2\n\"{}\",3\n{}\n", "x".repeat(200_000), "y\n".repeat(70_000), vec!["f"; 3000].join(","));
        let texts = [
            "a,b\n1,2\n3,4\n",
            "a,b\n1,2\n3,4",
            "a,b\r\n1,\"x\r\ny\"\r\n3,4\r\n",
            "a,b\n\"multi\nline\nfield\",2\n\n\n5,\"q\"\"uoted\"\n",
            "a,b\nx\"y,2\n\"p\nq\",3\n",
            "",
            "\n\n",
            "only header",
            long.as_str(),
        ];
        for text in texts {
            let expected = whole(text);
            for target in [1, 2, 3, 5, 8, 13, 1000] {
                assert_eq!(chunked(text, target), expected, "{text:?} in chunks of {target}");
            }
        }
    }

    proptest::proptest! {
        /// Any text of letters, commas, quotes and line ends (well-formed or not) is cut where
        /// the csv crate ends records, whichever way records are found.
        #[test]
        fn any_text_is_cut_where_the_csv_crate_ends_records(
            text in proptest::string::string_regex("[a,\"\r\n]{0,80}").expect("regex"),
            target in 1usize..40,
        ) {
            proptest::prop_assert_eq!(chunked(&text, target), whole(&text));
        }
    }

    #[test]
    fn the_first_record_comes_alone() {
        let text = "h1,\"h\n2\"\n1,2\n3,4\n";
        let mut splitter = Splitter::new(text.as_bytes(), 1 << 20);
        let header = splitter.first_record().expect("read").expect("a header");
        assert_eq!(header.bytes, b"h1,\"h\n2\"\n");
        let rest = splitter.next_chunk().expect("read").expect("rows");
        assert_eq!((rest.index, rest.base_line, rest.bytes.as_slice()), (0, 2, b"1,2\n3,4\n".as_slice()));
        assert!(splitter.next_chunk().expect("read").is_none());
    }

    /// Reads its bytes, then fails.
    struct Broken<'a>(&'a [u8]);

    impl Read for Broken<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("corrupt"));
            }
            let n = self.0.read(buf)?;
            Ok(n)
        }
    }

    #[test]
    fn records_before_a_read_error_come_out_before_it() {
        let mut splitter = Splitter::new(Broken(b"a,b\n1,2\n3,\"4"), 1 << 20);
        splitter.first_record().expect("read").expect("a header");
        let chunk = splitter.next_chunk().expect("read").expect("the complete record");
        assert_eq!(chunk.bytes, b"1,2\n");
        assert_eq!(splitter.next_chunk().expect_err("then the error").to_string(), "corrupt");
        assert_eq!(splitter.line(), 3);
    }

    #[test]
    fn large_input_is_cut_near_the_target() {
        let mut text = String::from("a,b\n");
        for i in 0..100_000 {
            text.push_str(&format!("{i},\"v\n{i}\"\n"));
        }
        let mut splitter = Splitter::new(text.as_bytes(), 64 * 1024);
        let mut sizes = Vec::new();
        while let Some(chunk) = splitter.next_chunk().expect("chunk") {
            sizes.push(chunk.bytes.len());
        }
        assert!(sizes.len() > 10, "{sizes:?}");
        assert!(sizes[..sizes.len() - 1].iter().all(|s| (64 * 1024..64 * 1024 + 64).contains(s)), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), text.len());
    }
}
#[cfg(test)]
mod debug_tmp {
    #[test]
    fn show() {
        let text = "a,b\r\n1,\"x\r\ny\"\r\n3,4\r\n";
        let mut s = super::Splitter::new(text.as_bytes(), 1);
        while let Some(c) = s.next_chunk().expect("c") {
            eprintln!("{} {:?}", c.base_line, String::from_utf8_lossy(&c.bytes));
        }
    }
}
