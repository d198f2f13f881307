//! Exceptional-access requests and the admin decision that grants them.
//!
//! Wikimedia Enterprise grants free, higher-rate access to mission-aligned
//! users who explain six things: who they are, the purpose, why the free
//! tier and the public dumps and APIs are not enough, what obligation the
//! access carries (custom development, duration), and how the use aligns
//! with the Wikimedia mission and values. A submission must answer all six;
//! an admin then approves it (which produces a [`Grant`] with an expiry) or
//! declines it with a reason.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::plan::MAX_QUOTA;
use super::{Grant, Product};
use crate::{Error, Result};

/// The longest answer accepted for each of the six criteria, in characters.
pub const MAX_ANSWER_CHARS: usize = 4000;

/// The six answers a requester submits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSubmission {
    /// Who is asking (person or organisation).
    pub who: String,
    /// What the data will be used for.
    pub purpose: String,
    /// Why the free tier and the public dumps and APIs are not enough.
    pub need: String,
    /// What the access obliges (custom development, duration).
    pub obligation: String,
    /// How the use aligns with the Wikimedia mission.
    pub mission_alignment: String,
    /// How the use aligns with the Wikimedia values.
    pub values_alignment: String,
}

impl AccessSubmission {
    /// Parses and validates a JSON body: all six answers present, non-blank
    /// and at most [`MAX_ANSWER_CHARS`] characters; answers are trimmed.
    pub fn parse(body: &[u8]) -> Result<AccessSubmission> {
        let mut s: AccessSubmission = serde_json::from_slice(body)?;
        for (name, value) in [
            ("who", &mut s.who),
            ("purpose", &mut s.purpose),
            ("need", &mut s.need),
            ("obligation", &mut s.obligation),
            ("mission_alignment", &mut s.mission_alignment),
            ("values_alignment", &mut s.values_alignment),
        ] {
            let trimmed = value.trim();
            if trimmed.is_empty() {
                return Err(Error::Unprocessable(format!("{name} must not be empty")));
            }
            if trimmed.chars().count() > MAX_ANSWER_CHARS {
                return Err(Error::Unprocessable(format!(
                    "{name} must be at most {MAX_ANSWER_CHARS} characters"
                )));
            }
            *value = trimmed.to_string();
        }
        Ok(s)
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessStatus {
    /// Awaiting an admin.
    Pending,
    /// Approved; a grant was issued.
    Approved,
    /// Declined with a reason.
    Declined,
}

/// An admin's decision on an access request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum AccessDecision {
    /// Approve with these limits until `expires` (unix seconds).
    Approve {
        /// Monthly quota per product granted.
        #[serde(default)]
        monthly: BTreeMap<Product, u64>,
        /// A raised burst rate, if any.
        #[serde(default)]
        burst_per_second: Option<u64>,
        /// When the grant lapses; must be in the future.
        expires: i64,
    },
    /// Decline with a reason for the requester.
    Decline {
        /// The reason; must not be empty.
        reason: String,
    },
}

/// The recorded decision: what, by whom, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The decision.
    pub decision: AccessDecision,
    /// The admin who decided.
    pub decided_by: String,
    /// When, in unix seconds.
    pub decided_at: i64,
}

/// A stored access request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequest {
    /// The request id (chosen by the component, e.g. random hex).
    pub id: String,
    /// The requesting account's username.
    pub account: String,
    /// The six answers.
    #[serde(flatten)]
    pub answers: AccessSubmission,
    /// Where it stands.
    pub status: AccessStatus,
    /// The decision, once made.
    pub decision: Option<DecisionRecord>,
    /// When it was submitted, in unix seconds.
    pub created: i64,
}

impl AccessRequest {
    /// A new pending request.
    pub fn new(id: &str, account: &str, answers: AccessSubmission, now: i64) -> AccessRequest {
        AccessRequest {
            id: id.to_string(),
            account: account.to_string(),
            answers,
            status: AccessStatus::Pending,
            decision: None,
            created: now,
        }
    }

    /// Applies an admin decision. A request is decided once (409 after);
    /// an approval needs an expiry after `now` and at least one positive
    /// limit, a decline a non-empty reason (422 otherwise). Returns the grant
    /// to store on the account when approved.
    pub fn decide(
        &mut self,
        decision: AccessDecision,
        admin: &str,
        now: i64,
    ) -> Result<Option<Grant>> {
        if self.status != AccessStatus::Pending {
            return Err(Error::Conflict(format!(
                "access request {} has already been decided",
                self.id
            )));
        }
        let (status, grant) = match &decision {
            AccessDecision::Approve {
                monthly,
                burst_per_second,
                expires,
            } => {
                if *expires <= now {
                    return Err(Error::Unprocessable("expires must be in the future".into()));
                }
                let in_range = |q: u64| (1..=MAX_QUOTA).contains(&q);
                if monthly.values().any(|q| !in_range(*q))
                    || burst_per_second.is_some_and(|b| !in_range(b))
                {
                    return Err(Error::Unprocessable(format!(
                        "granted limits must be between 1 and {MAX_QUOTA}"
                    )));
                }
                if monthly.is_empty() && burst_per_second.is_none() {
                    return Err(Error::Unprocessable(
                        "an approval must grant monthly limits or a burst rate".into(),
                    ));
                }
                let grant = Grant {
                    monthly: monthly.clone(),
                    burst_per_second: *burst_per_second,
                    expires: *expires,
                    reason: format!("access request {}", self.id),
                };
                (AccessStatus::Approved, Some(grant))
            }
            AccessDecision::Decline { reason } => {
                let reason = reason.trim();
                if reason.is_empty() || reason.chars().count() > MAX_ANSWER_CHARS {
                    return Err(Error::Unprocessable(format!(
                        "a decline needs a reason of 1 to {MAX_ANSWER_CHARS} characters"
                    )));
                }
                (AccessStatus::Declined, None)
            }
        };
        self.status = status;
        self.decision = Some(DecisionRecord {
            decision,
            decided_by: admin.to_string(),
            decided_at: now,
        });
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(skip: Option<&str>, long: Option<&str>) -> Vec<u8> {
        let mut map = serde_json::Map::new();
        for f in [
            "who",
            "purpose",
            "need",
            "obligation",
            "mission_alignment",
            "values_alignment",
        ] {
            if Some(f) == skip {
                continue;
            }
            let v = if Some(f) == long {
                "x".repeat(MAX_ANSWER_CHARS + 1)
            } else {
                format!(" {f} answer ")
            };
            map.insert(f.into(), v.into());
        }
        serde_json::to_vec(&map).expect("json")
    }

    fn request() -> AccessRequest {
        let answers = AccessSubmission::parse(&body(None, None)).expect("valid");
        AccessRequest::new("ar-1", "alice", answers, 100)
    }

    #[test]
    fn a_submission_needs_all_six_answers_within_bounds() {
        assert_eq!(request().answers.need, "need answer");
        for f in ["who", "need", "values_alignment"] {
            assert_eq!(
                AccessSubmission::parse(&body(Some(f), None)).map_err(|e| e.status()),
                Err(422)
            );
            assert_eq!(
                AccessSubmission::parse(&body(None, Some(f))).map_err(|e| e.status()),
                Err(422)
            );
        }
        let blank = br#"{"who":" ","purpose":"p","need":"n","obligation":"o","mission_alignment":"m","values_alignment":"v"}"#;
        assert_eq!(
            AccessSubmission::parse(blank).err(),
            Some(Error::Unprocessable("who must not be empty".into()))
        );
        assert_eq!(
            AccessSubmission::parse(b"{\"who\": 5}").map_err(|e| e.status()),
            Err(422)
        );
    }

    #[test]
    fn an_approval_produces_a_grant_and_closes_the_request() {
        let mut r = request();
        let decision: AccessDecision = serde_json::from_str(
            r#"{"action":"approve","monthly":{"ondemand":1000000},"burst_per_second":50,"expires":5000}"#,
        )
        .expect("decision");
        let grant = r
            .decide(decision.clone(), "root", 200)
            .expect("approved")
            .expect("grant");
        assert_eq!(grant.expires, 5000);
        assert_eq!(grant.monthly.get(&Product::Ondemand), Some(&1_000_000));
        assert_eq!(r.status, AccessStatus::Approved);
        assert_eq!(
            r.decide(decision, "root", 201).map_err(|e| e.status()),
            Err(409)
        );
    }

    #[test]
    fn an_approval_must_expire_in_the_future_and_grant_something() {
        let approve = |monthly: BTreeMap<Product, u64>, expires| AccessDecision::Approve {
            monthly,
            burst_per_second: None,
            expires,
        };
        let one = BTreeMap::from([(Product::Chunk, 10)]);
        let zero = BTreeMap::from([(Product::Chunk, 0)]);
        for (d, why) in [
            (approve(one.clone(), 200), "expiry now"),
            (approve(one, 100), "expiry past"),
            (approve(BTreeMap::new(), 900), "nothing granted"),
            (approve(zero, 900), "zero limit"),
        ] {
            let mut r = request();
            assert_eq!(
                r.decide(d, "root", 200).map_err(|e| e.status()),
                Err(422),
                "{why}"
            );
            assert_eq!(r.status, AccessStatus::Pending, "{why}: unchanged");
        }
    }

    #[test]
    fn a_decline_needs_a_reason_and_grants_nothing() {
        let mut r = request();
        let blank = AccessDecision::Decline {
            reason: "  ".into(),
        };
        assert_eq!(
            r.decide(blank, "root", 200).map_err(|e| e.status()),
            Err(422)
        );
        let ok = AccessDecision::Decline {
            reason: "commercial use".into(),
        };
        assert_eq!(r.decide(ok, "root", 200), Ok(None));
        assert_eq!(r.status, AccessStatus::Declined);
        assert_eq!(
            r.decision.as_ref().map(|d| d.decided_by.as_str()),
            Some("root")
        );
    }

    #[test]
    fn a_request_round_trips_through_json() {
        let r = request();
        let json = serde_json::to_string(&r).expect("serialise");
        assert!(json.contains("\"status\":\"pending\""));
        assert_eq!(serde_json::from_str::<AccessRequest>(&json).ok(), Some(r));
    }
}
