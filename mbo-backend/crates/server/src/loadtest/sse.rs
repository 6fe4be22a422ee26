//! An incremental Server-Sent-Events parser with bounded memory.
//!
//! Bytes are fed as they arrive, cut anywhere (mid-line, mid-CRLF); events come out through a
//! callback as soon as their blank line is seen. Lines end with LF, CRLF or CR, as the
//! specification says (a CR at the end of one chunk and an LF at the start of the next are one
//! line end).
//!
//! Nothing is buffered per line: a field name is at most a few bytes, and a value is routed
//! to its destination while it streams. A load test only needs the start of each payload
//! (`server_ts` is its first key, `count` comes before the records), so the data of an event
//! is kept up to a cap and the rest is dropped: a 5 MB snapshot costs no more memory than a
//! 100-byte update, which is what makes 10,000 clients in one process affordable.

/// Longest field name told apart; longer ones are unknown fields, ignored.
const NAME_CAP: usize = 8;
/// Longest event name kept (the server's longest is `snapshot`).
const EVENT_CAP: usize = 32;
/// Longest event id kept.
const ID_CAP: usize = 64;

/// One dispatched event, borrowed from the parser until the callback returns.
#[derive(Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event:` field, `message` when there was none.
    pub name: &'a [u8],
    /// The data lines joined with `\n`, cut at the parser's cap.
    pub data: &'a [u8],
    /// The last event id seen on the stream (it persists across events, per the spec).
    // Parsed for conformance and checked by the tests; the load test does not use it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub id: &'a [u8],
}

/// Where the current line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the field name (before any colon).
    Name,
    /// Just after the colon: one leading space is dropped.
    ValueStart,
    /// In the value.
    Value,
}

/// What the current line's value is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Data,
    Event,
    Id,
    /// Comments, `retry` and unknown fields.
    Ignored,
}

/// The parser state of one stream (a few hundred bytes plus the data prefix).
#[derive(Debug)]
pub struct SseParser {
    data_cap: usize,
    state: State,
    /// The last byte seen was a CR: an LF next is the same line end.
    after_cr: bool,
    name: [u8; NAME_CAP],
    name_len: usize,
    name_overflow: bool,
    field: Field,
    /// The `event` or `id` value being read (committed at the end of its line).
    scratch: Vec<u8>,
    event: Vec<u8>,
    id: Vec<u8>,
    data: Vec<u8>,
    /// A `data` line was seen since the last dispatch (even an empty one).
    has_data: bool,
    comments: u64,
}

impl SseParser {
    /// A parser keeping at most `data_cap` bytes of each event's data.
    pub fn new(data_cap: usize) -> Self {
        Self {
            data_cap,
            state: State::Name,
            after_cr: false,
            name: [0; NAME_CAP],
            name_len: 0,
            name_overflow: false,
            field: Field::Ignored,
            scratch: Vec::new(),
            event: Vec::new(),
            id: Vec::new(),
            data: Vec::new(),
            has_data: false,
            comments: 0,
        }
    }

    /// Comment lines seen (the server's keep-alives).
    pub fn comments(&self) -> u64 {
        self.comments
    }

    /// Parses `chunk`, calling `on_event` for every event it completes.
    pub fn feed(&mut self, chunk: &[u8], mut on_event: impl FnMut(&Event<'_>)) {
        let mut rest = chunk;
        while let Some((&b, tail)) = rest.split_first() {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    rest = tail;
                    continue;
                }
            }
            match self.state {
                State::Name => {
                    rest = tail;
                    match b {
                        b'\r' | b'\n' => {
                            self.after_cr = b == b'\r';
                            self.end_line(&mut on_event);
                        }
                        b':' => {
                            self.field = self.classify();
                            self.begin_value();
                            self.state = State::ValueStart;
                        }
                        _ => match self.name.get_mut(self.name_len) {
                            Some(slot) => {
                                *slot = b;
                                self.name_len += 1;
                            }
                            None => self.name_overflow = true,
                        },
                    }
                }
                State::ValueStart => {
                    if b == b' ' {
                        rest = tail;
                    }
                    self.state = State::Value;
                }
                State::Value => {
                    // The whole run up to the line end at once, not byte by byte.
                    let end = rest
                        .iter()
                        .position(|&c| c == b'\r' || c == b'\n')
                        .unwrap_or(rest.len());
                    let (value, after) = rest.split_at(end);
                    self.append_value(value);
                    rest = after;
                    if let Some((&eol, tail)) = rest.split_first() {
                        rest = tail;
                        self.after_cr = eol == b'\r';
                        self.end_line(&mut on_event);
                    }
                }
            }
        }
    }

    /// The field named by the bytes before the colon (or the whole line).
    fn classify(&self) -> Field {
        if self.name_overflow {
            return Field::Ignored;
        }
        match self.name.get(..self.name_len) {
            Some(b"data") => Field::Data,
            Some(b"event") => Field::Event,
            Some(b"id") => Field::Id,
            _ => Field::Ignored,
        }
    }

    /// A field's value starts.
    fn begin_value(&mut self) {
        match self.field {
            Field::Data => {
                // Lines of one event are joined with LF.
                if self.has_data {
                    self.push_data(b"\n");
                }
                self.has_data = true;
            }
            Field::Event | Field::Id => self.scratch.clear(),
            Field::Ignored => {
                if self.name_len == 0 && !self.name_overflow {
                    self.comments += 1;
                }
            }
        }
    }

    fn append_value(&mut self, value: &[u8]) {
        match self.field {
            Field::Data => self.push_data(value),
            Field::Event | Field::Id => {
                let cap = if self.field == Field::Event {
                    EVENT_CAP
                } else {
                    ID_CAP
                };
                let room = cap.saturating_sub(self.scratch.len());
                self.scratch
                    .extend_from_slice(value.get(..room).unwrap_or(value));
            }
            Field::Ignored => {}
        }
    }

    fn push_data(&mut self, bytes: &[u8]) {
        let room = self.data_cap.saturating_sub(self.data.len());
        self.data
            .extend_from_slice(bytes.get(..room).unwrap_or(bytes));
    }

    fn end_line(&mut self, on_event: &mut impl FnMut(&Event<'_>)) {
        match self.state {
            State::Name if self.name_len == 0 && !self.name_overflow => self.dispatch(on_event),
            State::Name => {
                // A field name alone on its line: the field with an empty value.
                self.field = self.classify();
                self.begin_value();
                self.commit();
            }
            State::ValueStart | State::Value => self.commit(),
        }
        self.state = State::Name;
        self.name_len = 0;
        self.name_overflow = false;
        self.field = Field::Ignored;
    }

    /// The end of an `event` or `id` line: its value takes effect.
    fn commit(&mut self) {
        match self.field {
            Field::Event => std::mem::swap(&mut self.event, &mut self.scratch),
            // An id containing NUL is ignored (spec).
            Field::Id if !self.scratch.contains(&0) => {
                std::mem::swap(&mut self.id, &mut self.scratch);
            }
            _ => {}
        }
    }

    /// A blank line: the event is complete (dispatched only if it had data, per spec).
    fn dispatch(&mut self, on_event: &mut impl FnMut(&Event<'_>)) {
        if self.has_data {
            let name: &[u8] = if self.event.is_empty() {
                b"message"
            } else {
                &self.event
            };
            on_event(&Event {
                name,
                data: &self.data,
                id: &self.id,
            });
        }
        self.has_data = false;
        self.data.clear();
        self.event.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Owned copy of an event.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Owned {
        name: String,
        data: String,
        id: String,
    }

    fn parse_chunks(chunks: &[&[u8]], cap: usize) -> (Vec<Owned>, u64) {
        let mut p = SseParser::new(cap);
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, |e| {
                out.push(Owned {
                    name: String::from_utf8(e.name.to_vec()).unwrap(),
                    data: String::from_utf8(e.data.to_vec()).unwrap(),
                    id: String::from_utf8(e.id.to_vec()).unwrap(),
                });
            });
        }
        (out, p.comments())
    }

    fn ev(name: &str, data: &str, id: &str) -> Owned {
        Owned {
            name: name.into(),
            data: data.into(),
            id: id.into(),
        }
    }

    const STREAM: &str = ": hello\n\
        id: 0-1\n\
        event: snapshot\n\
        data: {\"server_ts\":1,\"symbol\":\"CLX5\"}\n\
        \n\
        : keep-alive\n\
        \n\
        event: book\r\n\
        id: 0-2\r\n\
        data: {\"server_ts\":2}\r\n\
        \r\n\
        event:trade\r\
        data:first\r\
        data:  second\r\
        data\r\
        \r\
        data: no name\n\n\
        event: ignored-no-data\n\n\
        id\n\
        retry: 1000\n\
        unknownfieldname: x\n\
        event: status\n\
        data: {\"server_ts\":3}\n\n\
        event: partial\n\
        data: never dispatched";

    fn expected() -> Vec<Owned> {
        vec![
            ev("snapshot", "{\"server_ts\":1,\"symbol\":\"CLX5\"}", "0-1"),
            ev("book", "{\"server_ts\":2}", "0-2"),
            // One leading space is dropped, further ones kept; `data` alone is an empty line.
            ev("trade", "first\n second\n", "0-2"),
            ev("message", "no name", "0-2"),
            ev("status", "{\"server_ts\":3}", ""),
        ]
    }

    #[test]
    fn whole_stream() {
        let (events, comments) = parse_chunks(&[STREAM.as_bytes()], 1 << 20);
        assert_eq!(events, expected());
        assert_eq!(comments, 2);
    }

    #[test]
    fn split_at_every_byte_position() {
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            let (events, comments) = parse_chunks(&[a, b], 1 << 20);
            assert_eq!(events, expected(), "cut at {cut}");
            assert_eq!(comments, 2, "cut at {cut}");
        }
        // Two cuts, and one byte at a time.
        for cut in (0..bytes.len()).step_by(7) {
            for cut2 in cut..bytes.len() {
                let (events, _) =
                    parse_chunks(&[&bytes[..cut], &bytes[cut..cut2], &bytes[cut2..]], 1 << 20);
                assert_eq!(events, expected(), "cuts at {cut}, {cut2}");
            }
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse_chunks(&singles, 1 << 20).0, expected());
    }

    #[test]
    fn crlf_split_between_chunks_is_one_line_end() {
        let (events, _) = parse_chunks(&[b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"], 64);
        assert_eq!(events, vec![ev("message", "a", ""), ev("message", "b", "")]);
    }

    #[test]
    fn data_is_cut_at_the_cap_but_the_event_still_arrives() {
        let big = format!(
            "event: mbo\ndata: {{\"server_ts\":7,\"records\":[{}]}}\n\n",
            "1,".repeat(10_000)
        );
        let (events, _) = parse_chunks(&[big.as_bytes()], 16);
        assert_eq!(events, vec![ev("mbo", "{\"server_ts\":7,\"", "")]);
        // Next event is unaffected.
        let two = format!("{big}event: book\ndata: x\n\n");
        let (events, _) = parse_chunks(&[two.as_bytes()], 16);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1], ev("book", "x", ""));
    }

    #[test]
    fn long_event_names_and_nul_ids() {
        let name = "x".repeat(100);
        let text = format!("id: 5\nevent: {name}\ndata: d\n\nid: a\0b\ndata: e\n\n");
        let (events, _) = parse_chunks(&[text.as_bytes()], 64);
        assert_eq!(events[0].name, "x".repeat(EVENT_CAP));
        assert_eq!(events[0].id, "5");
        assert_eq!(events[1].id, "5", "an id with NUL is ignored");
    }
}
