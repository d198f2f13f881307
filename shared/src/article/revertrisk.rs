//! `version.scores.revertrisk` from Wikimedia's public Lift Wing
//! language-agnostic revert-risk model, off unless an operator sets the
//! model URL (variable `revertrisk_url`).
//!
//! The request is `POST {url}` with `{"rev_id": N, "lang": "en"}`; the
//! model answers `{"model_name": "revertrisk-language-agnostic", ...,
//! "output": {"prediction": false, "probabilities": {"true": 0.1,
//! "false": 0.9}}}`, which becomes WME's
//! `{"revertrisk": {"prediction": false, "probability": {"false": 0.9,
//! "true": 0.1}}}` (schema `scores`/`revertrisk` of WME's OpenAPI).

use serde_json::{Value, json};

/// Lift Wing's public endpoint of the model, for operators who enable it.
pub const LIFT_WING_URL: &str =
    "https://api.wikimedia.org/service/lw/inference/v1/models/revertrisk-language-agnostic:predict";

/// The request body for a revision of a wiki in language `lang`.
pub fn request_body(rev_id: u64, lang: &str) -> Vec<u8> {
    json!({"rev_id": rev_id, "lang": lang})
        .to_string()
        .into_bytes()
}

/// WME's `scores` object for a model answer about `rev_id`; `None` for
/// anything else (an error body, another revision, a missing number).
pub fn scores(json: &[u8], rev_id: u64) -> Option<Value> {
    let root: Value = serde_json::from_slice(json).ok()?;
    if root
        .get("revision_id")
        .and_then(Value::as_u64)
        .is_some_and(|id| id != rev_id)
    {
        return None;
    }
    let output = root.get("output")?;
    let prediction = output.get("prediction")?.as_bool()?;
    let probabilities = output.get("probabilities")?;
    let p_true = probabilities.get("true")?.as_f64()?;
    let p_false = probabilities.get("false")?.as_f64()?;
    Some(json!({"revertrisk": {
        "prediction": prediction,
        "probability": {"false": p_false, "true": p_true},
    }}))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &[u8] = br#"{"model_name": "revertrisk-language-agnostic", "model_version": "3",
        "wiki_db": "enwiki", "revision_id": 1171934824,
        "output": {"prediction": false, "probabilities": {"true": 0.1187, "false": 0.8813}}}"#;

    #[test]
    fn the_model_answer_becomes_wmes_scores() {
        assert_eq!(
            scores(ANSWER, 1171934824),
            Some(json!({"revertrisk": {"prediction": false,
                "probability": {"false": 0.8813, "true": 0.1187}}}))
        );
        assert_eq!(
            request_body(1171934824, "en"),
            br#"{"lang":"en","rev_id":1171934824}"#.to_vec()
        );
    }

    #[test]
    fn errors_and_other_revisions_give_nothing() {
        assert_eq!(scores(ANSWER, 1), None);
        assert_eq!(
            scores(br#"{"error": "The MW API does not have any info"}"#, 1),
            None
        );
        assert_eq!(scores(b"<html>", 1), None);
    }
}
