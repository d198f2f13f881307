//! The On-demand request: `fields`, `filters` and `limit`, from a POST JSON
//! body or GET query parameters, validated as WME does (422 on bad input).
//!
//! Choices, where the WME spec leaves room:
//! - Unknown keys in the POST body are ignored. The spec's request schema
//!   does not set `additionalProperties: false`, and WME's Go service binds
//!   bodies leniently; rejecting them would break SDKs that send extra keys.
//! - GET passes `fields` as the spec's exploded array (`?fields=a&fields=b`);
//!   comma-separated values (`?fields=a,b`) are accepted too. `filters` in a
//!   query is a JSON array (`?filters=[{"field":"...","value":"..."}]`,
//!   percent-encoded), since an array of objects has no flat query form.
//! - An empty POST body is the default request.

use serde::Deserialize;
use serde_json::Value;

use super::projection::{Filter, matches_all, project, validate_path};
use super::title::decode_path_segment;
use crate::{Error, Result};

/// The default number of articles returned (one per project).
pub const DEFAULT_LIMIT: u32 = 3;
/// The largest `limit` accepted.
pub const MAX_LIMIT: u32 = 10;

/// A validated On-demand request.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ArticlesRequest {
    /// Dot paths to keep in each document (exclusive); `None` keeps all.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// Equality filters every returned document must match.
    #[serde(default)]
    pub filters: Option<Vec<Filter>>,
    /// How many documents to return at most (1..=10, default 3).
    #[serde(default)]
    pub limit: Option<u32>,
}

impl ArticlesRequest {
    /// Parses and validates a POST JSON body; bad JSON or values are `Unprocessable`.
    pub fn from_json(body: &[u8]) -> Result<Self> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(ArticlesRequest::default());
        }
        let request: ArticlesRequest = serde_json::from_slice(body)?;
        request.validate()?;
        Ok(request)
    }

    /// Parses and validates GET query parameters (the part after `?`).
    pub fn from_query(query: &str) -> Result<Self> {
        let mut request = ArticlesRequest::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode_path_segment(&value.replace('+', " "))?;
            match key {
                "fields" | "fields[]" => request
                    .fields
                    .get_or_insert_with(Vec::new)
                    .extend(value.split(',').map(|f| f.trim().to_string())),
                "filters" => {
                    let filters: Vec<Filter> = serde_json::from_str(&value).map_err(|e| {
                        Error::Unprocessable(format!(
                            "filters must be a JSON array of {{field, value}}: {e}"
                        ))
                    })?;
                    request.filters.get_or_insert_with(Vec::new).extend(filters);
                }
                "limit" => {
                    let limit = value.trim().parse::<u32>().map_err(|_| {
                        Error::Unprocessable(format!("limit must be between 1 and {MAX_LIMIT}"))
                    })?;
                    request.limit = Some(limit);
                }
                // Unknown parameters are ignored, like unknown body keys.
                _ => {}
            }
        }
        request.validate()?;
        Ok(request)
    }

    /// Checks limit range, field paths and filters.
    pub fn validate(&self) -> Result<()> {
        if self
            .limit
            .is_some_and(|limit| !(1..=MAX_LIMIT).contains(&limit))
        {
            return Err(Error::Unprocessable(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        for field in self.fields.iter().flatten() {
            validate_path(field, true)?;
        }
        for filter in self.filters.iter().flatten() {
            filter.validate()?;
        }
        Ok(())
    }

    /// The effective limit.
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT) as usize
    }

    /// Filters, limits and projects the candidate documents, in order.
    pub fn apply<'a>(&self, docs: impl IntoIterator<Item = &'a Value>) -> Vec<Value> {
        let filters = self.filters.as_deref().unwrap_or_default();
        let fields = self.fields.as_deref().unwrap_or_default();
        docs.into_iter()
            .filter(|doc| matches_all(doc, filters))
            .take(self.limit())
            .map(|doc| project(doc.clone(), fields))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unprocessable<T: std::fmt::Debug>(result: Result<T>) {
        assert!(matches!(result, Err(Error::Unprocessable(_))), "{result:?}");
    }

    #[test]
    fn parses_post_bodies() {
        let body = br#"{"fields": ["name", "version.identifier"], "filters": [{"field": "in_language.identifier", "value": "en"}], "limit": 2, "extra": 1}"#;
        let request = ArticlesRequest::from_json(body).expect("valid");
        assert_eq!(request.limit(), 2);
        assert_eq!(request.filters.as_ref().map(Vec::len), Some(1));
        assert_eq!(ArticlesRequest::from_json(b"").expect("empty").limit(), 3);
        assert_eq!(
            ArticlesRequest::from_json(b"{}")
                .expect("empty object")
                .limit(),
            3
        );
    }

    #[test]
    fn rejects_invalid_requests_with_422() {
        unprocessable(ArticlesRequest::from_json(br#"{"limit": 0}"#));
        unprocessable(ArticlesRequest::from_json(br#"{"limit": 11}"#));
        unprocessable(ArticlesRequest::from_json(br#"{"limit": -1}"#));
        unprocessable(ArticlesRequest::from_json(br#"{"limit": "3"}"#));
        unprocessable(ArticlesRequest::from_json(br#"{"fields": "name"}"#));
        unprocessable(ArticlesRequest::from_json(br#"{"fields": ["a..b"]}"#));
        unprocessable(ArticlesRequest::from_json(
            br#"{"filters": [{"field": "name"}]}"#,
        ));
        unprocessable(ArticlesRequest::from_json(
            br#"{"filters": [{"field": "name", "value": [1]}]}"#,
        ));
        unprocessable(ArticlesRequest::from_json(b"{not json"));
        let err = ArticlesRequest::from_json(br#"{"limit": 11}"#).expect_err("too large");
        assert_eq!(err.body().message, "limit must be between 1 and 10");
        unprocessable(ArticlesRequest::from_query("limit=11"));
        unprocessable(ArticlesRequest::from_query("limit=ten"));
        unprocessable(ArticlesRequest::from_query("filters=oops"));
    }

    #[test]
    fn parses_get_query_parameters() {
        let q = "fields=name,url&fields=version.identifier&limit=1&filters=%5B%7B%22field%22%3A%22in_language.identifier%22%2C%22value%22%3A%22en%22%7D%5D&other=x";
        let request = ArticlesRequest::from_query(q).expect("valid");
        assert_eq!(
            request.fields.as_deref(),
            Some(
                &[
                    "name".to_string(),
                    "url".to_string(),
                    "version.identifier".to_string()
                ][..]
            )
        );
        assert_eq!(request.limit(), 1);
        assert_eq!(request.filters.expect("filters")[0].value, json!("en"));
        assert_eq!(ArticlesRequest::from_query("").expect("empty").limit(), 3);
    }

    #[test]
    fn applies_to_the_real_squirrel_articles() {
        if wikiedge_tests::fixtures_or_skip().is_none() {
            return;
        }
        let all: Vec<Value> = serde_json::from_str(
            &std::fs::read_to_string(
                wikiedge_tests::fixtures().join("wme/responses/articles.json"),
            )
            .expect("fixture"),
        )
        .expect("json");
        let body = br#"{"fields": ["name", "is_part_of.identifier", "version.identifier"], "filters": [{"field": "in_language.identifier", "value": "en"}]}"#;
        let out = ArticlesRequest::from_json(body).expect("valid").apply(&all);
        assert_eq!(
            out,
            vec![
                json!({"name": "Squirrel", "is_part_of": {"identifier": "enwiki"}, "version": {"identifier": 1171934824}})
            ]
        );
        let limited =
            ArticlesRequest::from_json(br#"{"fields": ["is_part_of.identifier"], "limit": 2}"#)
                .expect("valid")
                .apply(&all);
        assert_eq!(
            limited,
            vec![
                json!({"is_part_of": {"identifier": "dewiki"}}),
                json!({"is_part_of": {"identifier": "enwiki"}})
            ]
        );
        assert_eq!(ArticlesRequest::default().apply(&all).len(), 3);
    }
}
