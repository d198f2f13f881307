//! A Server-Sent Events parser (the `text/event-stream` format of the HTML
//! standard), line by line: the one every SSE reader of the project uses —
//! `wikiedge follow` and the tests that read `/v2/realtime` streams.
//!
//! Feed it lines without their end (`\n`, `\r\n` or `\r` already removed);
//! it returns a [`Block`] at each blank line that ends a block with any
//! field in it. Comments (`:…`) are ignored, a single space after the colon
//! is dropped, several `data:` lines join with `\n`, `retry:` and unknown
//! fields are ignored, an `id` containing NUL is ignored (as the standard
//! says). Unlike a browser, a block with an `id` but no `data` is reported
//! too (with `data: None`), since a reader that resumes needs every id.

/// One block of fields, ended by a blank line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Block {
    /// The block's `id`, when it has one.
    pub id: Option<String>,
    /// The block's `event` type, when given.
    pub event: Option<String>,
    /// The joined `data` lines; `None` when the block had none (no event).
    pub data: Option<String>,
}

/// The parser's state between lines.
#[derive(Debug, Default)]
pub struct Parser {
    block: Block,
    any: bool,
    last_event_id: Option<String>,
}

impl Parser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last `id` seen (the value to send back as `Last-Event-ID`).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// Takes one line; returns the block it ends, if it is a blank line
    /// after at least one field.
    pub fn line(&mut self, line: &str) -> Option<Block> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if !std::mem::take(&mut self.any) {
                return None;
            }
            return Some(std::mem::take(&mut self.block));
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" if !value.contains('\0') => {
                self.block.id = Some(value.to_string());
                self.last_event_id = Some(value.to_string());
                self.any = true;
            }
            "event" => {
                self.block.event = Some(value.to_string());
                self.any = true;
            }
            "data" => {
                match &mut self.block.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.block.data = Some(value.to_string()),
                }
                self.any = true;
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(text: &str) -> (Vec<Block>, Option<String>) {
        let mut p = Parser::new();
        let out = text.split('\n').filter_map(|l| p.line(l)).collect();
        (out, p.last_event_id().map(str::to_string))
    }

    #[test]
    fn fields_comments_and_multiline_data() {
        let (got, last) = blocks(
            ": hello\n\nid: 1\ndata: {\"a\":1}\n\nevent: message\ndata: x\ndata:y\r\nretry: 10\n\nid: 3\n\n",
        );
        assert_eq!(
            got,
            vec![
                Block {
                    id: Some("1".into()),
                    event: None,
                    data: Some("{\"a\":1}".into())
                },
                Block {
                    id: None,
                    event: Some("message".into()),
                    data: Some("x\ny".into())
                },
                Block {
                    id: Some("3".into()),
                    event: None,
                    data: None
                },
            ]
        );
        assert_eq!(last.as_deref(), Some("3"));
    }

    #[test]
    fn an_unfinished_block_and_nul_ids_are_not_reported() {
        let (got, last) = blocks("id: 7\ndata: x\n\nid: a\0b\ndata: y");
        assert_eq!(got.len(), 1);
        assert_eq!(last.as_deref(), Some("7"));
        let (got, _) = blocks("data\n\n");
        assert_eq!(got[0].data.as_deref(), Some(""));
    }
}
