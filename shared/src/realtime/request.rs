//! The Realtime stream request, from GET query parameters or a POST JSON
//! body, validated as WME documents it (422 with `{status, message}`).
//!
//! Where each partition of a connection starts, first rule that applies:
//! 1. `Last-Event-ID` (our SSE id, a [`Cursor`]) names the partition: there;
//! 2. `offsets[p]`: that offset (inclusive: resume with last seen + 1);
//! 3. `since_per_partition[p]`: the first event published at or after it;
//! 4. `since`: likewise;
//! 5. otherwise live mode: only events that arrive after the connection
//!    opened.
//!
//! Choices, where the spec leaves room:
//! - GET takes `fields` and `parts` exploded (`?parts=0&parts=1`), comma
//!   separated or as a JSON array; `filters`, `offsets` and
//!   `since_per_partition` as JSON (percent-encoded).
//! - Partitions in `offsets`/`since_per_partition` that `parts` does not
//!   cover, or that do not exist, are ignored (WME: "simply ignored").
//! - `fields` naming an object (`version`) must use a wildcard
//!   (`version.*`), as WME requires; subfields (`version.identifier`) work.
//! - Unknown keys are ignored, as in the On-demand request.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::log::{Cursor, PARTITIONS, PARTS, partitions_of_part};
use crate::article::projection::{Filter, validate_path};
use crate::article::title::decode_path_segment;
use crate::time::parse_millis;
use crate::{Error, Result};

/// Fields of the WME event document that hold an object.
const OBJECT_FIELDS: &[&str] = &[
    "event",
    "version",
    "previous_version",
    "namespace",
    "in_language",
    "main_entity",
    "is_part_of",
    "article_body",
    "visibility",
    "image",
    "version.editor",
    "version.scores",
    "version.maintenance_tags",
    "version.size",
    "is_part_of.in_language",
];

/// A validated stream request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamRequest {
    /// `since`, Unix milliseconds.
    pub since: Option<i64>,
    /// Dot paths to keep (exclusive); empty keeps all.
    pub fields: Vec<String>,
    /// Equality filters every event must match.
    pub filters: Vec<Filter>,
    /// The parts (0..=9) asked for; `None` is all.
    pub parts: Option<Vec<u32>>,
    /// Start offsets per partition.
    pub offsets: BTreeMap<u32, u64>,
    /// Start times per partition, Unix milliseconds.
    pub since_per_partition: BTreeMap<u32, i64>,
}

/// Where one partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At this offset.
    Offset(u64),
    /// At the first event published at or after this time (Unix ms).
    Since(i64),
    /// At the end of the log when the connection opened.
    Live,
}

#[derive(Debug, Default, Deserialize)]
struct RawBody {
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    fields: Option<Vec<String>>,
    #[serde(default)]
    filters: Option<Vec<Filter>>,
    #[serde(default)]
    parts: Option<Vec<Value>>,
    #[serde(default)]
    offsets: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    since_per_partition: Option<BTreeMap<String, Value>>,
}

fn unprocessable(message: impl Into<String>) -> Error {
    Error::Unprocessable(message.into())
}

fn part(value: &Value) -> Result<u32> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
        .filter(|p| *p < u64::from(PARTS))
        .map(|p| p as u32)
        .ok_or_else(|| {
            unprocessable(format!(
                "parts must be integers between 0 and {}",
                PARTS - 1
            ))
        })
}

fn partition_key(key: &str, what: &str) -> Result<Option<u32>> {
    let p: u64 = key
        .trim()
        .parse()
        .map_err(|_| unprocessable(format!("{what} keys must be partition numbers")))?;
    Ok((p < u64::from(PARTITIONS)).then_some(p as u32))
}

fn offsets(map: BTreeMap<String, Value>) -> Result<BTreeMap<u32, u64>> {
    let mut out = BTreeMap::new();
    for (key, value) in map {
        let offset = value
            .as_u64()
            .ok_or_else(|| unprocessable("offsets values must be non-negative integers"))?;
        if let Some(p) = partition_key(&key, "offsets")? {
            out.insert(p, offset);
        }
    }
    Ok(out)
}

fn since_per_partition(map: BTreeMap<String, Value>) -> Result<BTreeMap<u32, i64>> {
    let mut out = BTreeMap::new();
    for (key, value) in map {
        let text = value.as_str().ok_or_else(|| {
            unprocessable("since_per_partition values must be RFC 3339 timestamps")
        })?;
        let ms = parse_millis(text)?;
        if let Some(p) = partition_key(&key, "since_per_partition")? {
            out.insert(p, ms);
        }
    }
    Ok(out)
}

fn json<T: serde::de::DeserializeOwned>(text: &str, name: &str, shape: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| unprocessable(format!("{name} must be {shape}: {e}")))
}

impl StreamRequest {
    fn from_raw(raw: RawBody) -> Result<Self> {
        let request = StreamRequest {
            since: raw.since.as_deref().map(parse_millis).transpose()?,
            fields: raw.fields.unwrap_or_default(),
            filters: raw.filters.unwrap_or_default(),
            parts: raw
                .parts
                .map(|parts| parts.iter().map(part).collect::<Result<Vec<_>>>())
                .transpose()?,
            offsets: raw.offsets.map(offsets).transpose()?.unwrap_or_default(),
            since_per_partition: raw
                .since_per_partition
                .map(since_per_partition)
                .transpose()?
                .unwrap_or_default(),
        };
        request.validate()?;
        Ok(request)
    }

    /// Parses and validates a POST JSON body; an empty body is the default.
    pub fn from_json(body: &[u8]) -> Result<Self> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(StreamRequest::default());
        }
        let raw: RawBody = serde_json::from_slice(body)
            .map_err(|e| unprocessable(format!("invalid request body: {e}")))?;
        Self::from_raw(raw)
    }

    /// Parses and validates GET query parameters.
    pub fn from_query(query: &str) -> Result<Self> {
        let mut raw = RawBody::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode_path_segment(&value.replace('+', " "))?;
            let value = value.trim();
            let list = |value: &str| -> Vec<String> {
                if value.starts_with('[') {
                    serde_json::from_str::<Vec<Value>>(value)
                        .map(|items| {
                            items
                                .into_iter()
                                .map(|v| match v {
                                    Value::String(s) => s,
                                    other => other.to_string(),
                                })
                                .collect()
                        })
                        .unwrap_or_else(|_| vec![value.to_string()])
                } else {
                    value.split(',').map(|s| s.trim().to_string()).collect()
                }
            };
            match key {
                "since" => raw.since = Some(value.to_string()),
                "fields" | "fields[]" => {
                    raw.fields.get_or_insert_with(Vec::new).extend(list(value))
                }
                "parts" | "parts[]" => raw
                    .parts
                    .get_or_insert_with(Vec::new)
                    .extend(list(value).into_iter().map(Value::String)),
                "filters" => raw
                    .filters
                    .get_or_insert_with(Vec::new)
                    .extend(json::<Vec<Filter>>(
                        value,
                        "filters",
                        "a JSON array of {field, value}",
                    )?),
                "offsets" => {
                    raw.offsets = Some(json(
                        value,
                        "offsets",
                        "a JSON object of partition: offset",
                    )?)
                }
                "since_per_partition" => {
                    raw.since_per_partition = Some(json(
                        value,
                        "since_per_partition",
                        "a JSON object of partition: timestamp",
                    )?)
                }
                _ => {}
            }
        }
        Self::from_raw(raw)
    }

    /// Checks field paths and filters.
    pub fn validate(&self) -> Result<()> {
        for field in &self.fields {
            validate_path(field, true)?;
            if OBJECT_FIELDS.contains(&field.as_str()) {
                return Err(unprocessable(format!(
                    "field '{field}' is an object: use '{field}.*'"
                )));
            }
        }
        for filter in &self.filters {
            filter.validate()?;
        }
        Ok(())
    }

    /// The partitions the connection reads, in order.
    pub fn partitions(&self) -> Vec<u32> {
        match &self.parts {
            None => (0..PARTITIONS).collect(),
            Some(parts) => {
                let mut out: Vec<u32> = parts.iter().flat_map(|p| partitions_of_part(*p)).collect();
                out.sort_unstable();
                out.dedup();
                out
            }
        }
    }

    /// Where a partition starts, given the `Last-Event-ID` cursor if any.
    pub fn start(&self, partition: u32, resume: Option<&Cursor>) -> Start {
        if let Some(offset) = resume.and_then(|c| c.0.get(&partition)) {
            return Start::Offset(*offset);
        }
        if let Some(offset) = self.offsets.get(&partition) {
            return Start::Offset(*offset);
        }
        if let Some(ms) = self.since_per_partition.get(&partition) {
            return Start::Since(*ms);
        }
        match self.since {
            Some(ms) => Start::Since(ms),
            None => Start::Live,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(query: &str, body: &str, expect_ok: bool) {
        let q = StreamRequest::from_query(query);
        let b = StreamRequest::from_json(body.as_bytes());
        assert_eq!(q.is_ok(), expect_ok, "query {query}: {q:?}");
        assert_eq!(b.is_ok(), expect_ok, "body {body}: {b:?}");
        if expect_ok {
            assert_eq!(q.ok(), b.ok(), "{query} vs {body}");
        }
    }

    #[test]
    fn query_and_body_agree() {
        check("", "", true);
        check(
            "since=2024-01-01T00:00:00Z",
            r#"{"since":"2024-01-01T00:00:00Z"}"#,
            true,
        );
        check("parts=0&parts=3", r#"{"parts":[0,3]}"#, true);
        check("parts=[0,3]", r#"{"parts":[0,3]}"#, true);
        check("offsets=%7B%220%22%3A5%7D", r#"{"offsets":{"0":5}}"#, true);
        check(
            "fields=name,version.*",
            r#"{"fields":["name","version.*"]}"#,
            true,
        );
        check(
            "since_per_partition={\"1\":\"2024-01-01T00:00:00Z\"}",
            r#"{"since_per_partition":{"1":"2024-01-01T00:00:00Z"}}"#,
            true,
        );
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        check("since=yesterday", r#"{"since":"yesterday"}"#, false);
        check("parts=10", r#"{"parts":[10]}"#, false);
        check("parts=-1", r#"{"parts":[-1]}"#, false);
        check("parts=x", r#"{"parts":["x"]}"#, false);
        check("offsets={\"a\":1}", r#"{"offsets":{"a":1}}"#, false);
        check("offsets={\"0\":-1}", r#"{"offsets":{"0":-1}}"#, false);
        check("offsets=[1]", r#"{"offsets":[1]}"#, false);
        check(
            "since_per_partition={\"0\":\"x\"}",
            r#"{"since_per_partition":{"0":"x"}}"#,
            false,
        );
        check("fields=version", r#"{"fields":["version"]}"#, false);
        check("fields=a..b", r#"{"fields":["a..b"]}"#, false);
        check(
            "filters=[{\"field\":\"a\",\"value\":[1]}]",
            r#"{"filters":[{"field":"a","value":[1]}]}"#,
            false,
        );
    }

    #[test]
    fn starts_follow_the_documented_precedence() -> Result<()> {
        let r = StreamRequest::from_json(
            br#"{"since":"2024-01-01T00:00:00Z","parts":[1,2],
                 "offsets":{"1":7,"5":9,"99":1},
                 "since_per_partition":{"2":"2024-01-02T00:00:00Z"}}"#,
        )?;
        assert_eq!(r.partitions(), vec![1, 2]);
        assert_eq!(r.start(1, None), Start::Offset(7));
        assert_eq!(r.start(2, None), Start::Since(1_704_153_600_000));
        assert_eq!(r.start(3, None), Start::Since(1_704_067_200_000));
        let resume = Cursor::decode("2:4");
        assert_eq!(r.start(2, resume.as_ref()), Start::Offset(4));
        assert_eq!(StreamRequest::default().start(0, None), Start::Live);
        Ok(())
    }
}
