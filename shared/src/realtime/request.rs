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
//! WME's 422 rules (its realtime handler's request model), all kept:
//! - `parts`: at most 10 values, each 0-9; `parts` together with `since`
//!   is refused ("for parallel consumption, specify either offsets or
//!   time-offsets (since_per_partition)");
//! - `offsets` and `since_per_partition`: at most 50 entries each, keys
//!   integers; one partition (of those the connection reads) in both is
//!   refused;
//! - `since` and `since_per_partition` values: RFC 3339, not in the future
//!   ([`StreamRequest::check_clock`]);
//! - `fields`: at most 255, each 1-255 characters, an object only with a
//!   wildcard; `filters`: at most 255, never on an object.
//!
//! Choices, where the spec leaves room:
//! - GET takes `fields` and `parts` exploded (`?parts=0&parts=1`), comma
//!   separated or as a JSON array; `filters`, `offsets` and
//!   `since_per_partition` as JSON (percent-encoded).
//! - Partitions in `offsets`/`since_per_partition` that `parts` does not
//!   cover, or that do not exist (50 and up), are ignored (WME: "simply
//!   ignored"). Without `parts` they apply to every partition (WME's
//!   handler drops them then; honouring them loses nothing).
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

/// The most `fields` or `filters` a request may name (WME: 255).
const MAX_LIST: usize = 255;
/// The longest field path (WME: 255 characters).
const MAX_FIELD_CHARS: usize = 255;

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
        let count = |map: &Option<BTreeMap<String, Value>>| map.as_ref().map_or(0, |m| m.len());
        for (name, len) in [
            ("offsets", count(&raw.offsets)),
            ("since_per_partition", count(&raw.since_per_partition)),
        ] {
            if len > PARTITIONS as usize {
                return Err(unprocessable(format!(
                    "the query param {name} has length {len}, max allowed length {PARTITIONS}"
                )));
            }
        }
        if let Some(parts) = &raw.parts
            && parts.len() > PARTS as usize
        {
            return Err(unprocessable(format!(
                "the query param parts has length {}, max allowed length {PARTS}",
                parts.len()
            )));
        }
        for (name, len) in [
            ("fields", raw.fields.as_ref().map_or(0, Vec::len)),
            ("filters", raw.filters.as_ref().map_or(0, Vec::len)),
        ] {
            if len > MAX_LIST {
                return Err(unprocessable(format!(
                    "{name} has {len} entries, at most {MAX_LIST} are allowed"
                )));
            }
        }
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

    /// Checks field paths, filters and WME's parameter combinations.
    pub fn validate(&self) -> Result<()> {
        if self.parts.as_ref().is_some_and(|p| !p.is_empty()) && self.since.is_some() {
            return Err(unprocessable(
                "for parallel consumption (parts), specify either offsets or time-offsets \
                 (since_per_partition), not since",
            ));
        }
        let partitions = self.partitions();
        if let Some(p) = self
            .offsets
            .keys()
            .find(|p| self.since_per_partition.contains_key(p) && partitions.contains(p))
        {
            return Err(unprocessable(format!(
                "for a specific partition, specify either offset or time-offset \
                 (since_per_partition), not both (partition {p})"
            )));
        }
        for field in &self.fields {
            if field.is_empty() || field.chars().count() > MAX_FIELD_CHARS {
                return Err(unprocessable(format!(
                    "fields must be 1 to {MAX_FIELD_CHARS} characters long"
                )));
            }
            validate_path(field, true)?;
            if OBJECT_FIELDS.contains(&field.as_str()) {
                return Err(unprocessable(format!(
                    "field '{field}' is an object: use '{field}.*'"
                )));
            }
        }
        for filter in &self.filters {
            filter.validate()?;
            if OBJECT_FIELDS.contains(&filter.field.as_str()) {
                return Err(unprocessable(format!(
                    "can't filter on a '{}' object",
                    filter.field
                )));
            }
        }
        Ok(())
    }

    /// WME refuses start times in the future: `since` and every
    /// `since_per_partition` value must be at or before `now_ms`.
    pub fn check_clock(&self, now_ms: i64) -> Result<()> {
        if self.since.is_some_and(|ms| ms > now_ms) {
            return Err(unprocessable("since cannot be in the future"));
        }
        if let Some((p, _)) = self
            .since_per_partition
            .iter()
            .find(|(_, ms)| **ms > now_ms)
        {
            return Err(unprocessable(format!(
                "since_per_partition for partition {p} is in the future"
            )));
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
        check("offsets={\"x\":1}", r#"{"offsets":{"x":1}}"#, false);
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
        // parts 1 and 2 are partitions 5..=14; 1 and 99 are ignored.
        let r = StreamRequest::from_json(
            br#"{"parts":[1,2],
                 "offsets":{"5":7,"1":9,"99":1},
                 "since_per_partition":{"6":"2024-01-02T00:00:00Z","5":"2024-01-03T00:00:00Z"}}"#,
        );
        // 5 is in both: refused.
        assert!(matches!(r, Err(Error::Unprocessable(_))), "{r:?}");
        let r = StreamRequest::from_json(
            br#"{"parts":[1,2],
                 "offsets":{"5":7,"1":9,"99":1},
                 "since_per_partition":{"6":"2024-01-02T00:00:00Z","1":"2024-01-03T00:00:00Z"}}"#,
        )?;
        assert_eq!(r.partitions(), (5..15).collect::<Vec<u32>>());
        assert_eq!(r.start(5, None), Start::Offset(7));
        assert_eq!(r.start(6, None), Start::Since(1_704_153_600_000));
        assert_eq!(r.start(7, None), Start::Live);
        let resume = Cursor::decode("6:4");
        assert_eq!(r.start(6, resume.as_ref()), Start::Offset(4));
        let r = StreamRequest::from_json(br#"{"since":"2024-01-01T00:00:00Z","offsets":{"3":2}}"#)?;
        assert_eq!(r.partitions().len(), 50);
        assert_eq!(r.start(3, None), Start::Offset(2));
        assert_eq!(r.start(4, None), Start::Since(1_704_067_200_000));
        assert_eq!(StreamRequest::default().start(0, None), Start::Live);
        Ok(())
    }

    #[test]
    fn wmes_422_rules_hold() {
        // parts with since.
        check(
            "parts=0&since=2024-01-01T00:00:00Z",
            r#"{"parts":[0],"since":"2024-01-01T00:00:00Z"}"#,
            false,
        );
        // more than ten parts (duplicates count, as in WME).
        check(
            "parts=[0,1,2,3,4,5,6,7,8,9,0]",
            r#"{"parts":[0,1,2,3,4,5,6,7,8,9,0]}"#,
            false,
        );
        check(
            "parts=[0,1,2,3,4,5,6,7,8,9]",
            r#"{"parts":[0,1,2,3,4,5,6,7,8,9]}"#,
            true,
        );
        // 51 offsets / since_per_partition entries.
        let many: Vec<String> = (0..51).map(|p| format!("\"{p}\":1")).collect();
        let body = format!(r#"{{"offsets":{{{}}}}}"#, many.join(","));
        assert!(StreamRequest::from_json(body.as_bytes()).is_err());
        let fifty: Vec<String> = (0..50).map(|p| format!("\"{p}\":1")).collect();
        let body = format!(r#"{{"offsets":{{{}}}}}"#, fifty.join(","));
        assert_eq!(
            StreamRequest::from_json(body.as_bytes())
                .map(|r| r.offsets.len())
                .ok(),
            Some(50)
        );
        let many: Vec<String> = (0..51)
            .map(|p| format!("\"{p}\":\"2024-01-01T00:00:00Z\""))
            .collect();
        let body = format!(r#"{{"since_per_partition":{{{}}}}}"#, many.join(","));
        assert!(StreamRequest::from_json(body.as_bytes()).is_err());
        // the same partition in offsets and since_per_partition.
        check(
            "offsets={\"3\":1}&since_per_partition={\"3\":\"2024-01-01T00:00:00Z\"}",
            r#"{"offsets":{"3":1},"since_per_partition":{"3":"2024-01-01T00:00:00Z"}}"#,
            false,
        );
        // ...unless parts leaves that partition out (then it is ignored).
        check(
            "parts=1&offsets={\"3\":1}&since_per_partition={\"3\":\"2024-01-01T00:00:00Z\"}",
            r#"{"parts":[1],"offsets":{"3":1},"since_per_partition":{"3":"2024-01-01T00:00:00Z"}}"#,
            true,
        );
        // fields and filters.
        let long = "a".repeat(256);
        check(
            &format!("fields={long}"),
            &format!(r#"{{"fields":["{long}"]}}"#),
            false,
        );
        let fields: Vec<String> = (0..256).map(|i| format!("\"f{i}\"")).collect();
        let body = format!(r#"{{"fields":[{}]}}"#, fields.join(","));
        assert!(StreamRequest::from_json(body.as_bytes()).is_err());
        check(
            "filters=[{\"field\":\"version\",\"value\":\"x\"}]",
            r#"{"filters":[{"field":"version","value":"x"}]}"#,
            false,
        );
        // partitions 50 and up are not partitions: ignored.
        assert_eq!(
            StreamRequest::from_json(br#"{"offsets":{"50":1,"49":2}}"#)
                .map(|r| r.offsets)
                .ok(),
            Some(BTreeMap::from([(49, 2)]))
        );
    }

    #[test]
    fn start_times_in_the_future_are_refused() -> Result<()> {
        let now = 1_704_067_200_000; // 2024-01-01T00:00:00Z
        let r = StreamRequest::from_json(br#"{"since":"2024-01-01T00:00:00Z"}"#)?;
        assert!(r.check_clock(now).is_ok());
        assert!(matches!(
            r.check_clock(now - 1),
            Err(Error::Unprocessable(_))
        ));
        let r =
            StreamRequest::from_json(br#"{"since_per_partition":{"7":"2024-01-01T00:00:01Z"}}"#)?;
        assert!(r.check_clock(now + 1000).is_ok());
        assert!(matches!(r.check_clock(now), Err(Error::Unprocessable(_))));
        Ok(())
    }
}
