//! Which changes of the feed a `WatchCases` subscriber wants: its server-side filters.
//!
//! A filter is matched against the case *as of each change* (the snapshot stored with it), never
//! against the case as it is now, so a subscriber filtering on `APPROVED` sees the change that
//! approved a case even if a resubmission reopened it since. Fields combine with AND, the values
//! of one field with OR; an empty field does not filter.

use crate::{Case, Decision, Error, key};

/// The most values one filter field accepts: enough for a service following its own clients,
/// small enough that matching and the SQL `IN (…)` of a catch-up read stay cheap.
pub const MAX_FILTER_VALUES: usize = 1000;

/// A validated set of filters. Values are kept sorted and unique, so matching one change is a
/// binary search per field, whatever the number of values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedFilter {
    client_ids: Vec<String>,
    decisions: Vec<Decision>,
    scan_refs: Vec<String>,
    final_only: bool,
}

impl FeedFilter {
    /// Every change.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Validates a subscriber's filters. Refused (`InvalidArgument`, naming the field): more than
    /// [`MAX_FILTER_VALUES`] values in a field, and values no case can have (see
    /// [`key::check_key`]).
    pub fn new(
        client_ids: Vec<String>,
        decisions: Vec<Decision>,
        scan_refs: Vec<String>,
        final_only: bool,
    ) -> Result<Self, Error> {
        let mut decisions = decisions;
        if decisions.len() > MAX_FILTER_VALUES {
            return Err(too_many("decisions", decisions.len()));
        }
        decisions.sort_unstable_by_key(|d| d.as_str());
        decisions.dedup();
        Ok(Self {
            client_ids: keys("client_ids", client_ids)?,
            decisions,
            scan_refs: keys("scan_refs", scan_refs)?,
            final_only,
        })
    }

    /// Whether the change that left `case` in this state is wanted.
    pub fn matches(&self, case: &Case) -> bool {
        (!self.final_only || case.is_final)
            && (self.decisions.is_empty() || self.decisions.contains(&case.decision))
            && (self.client_ids.is_empty()
                || self.client_ids.binary_search(&case.client_id).is_ok())
            && (self.scan_refs.is_empty() || self.scan_refs.binary_search(&case.scan_ref).is_ok())
    }

    /// True when nothing is filtered out.
    pub fn is_everything(&self) -> bool {
        *self == Self::default()
    }

    /// The wanted client ids (any when empty), sorted.
    pub fn client_ids(&self) -> &[String] {
        &self.client_ids
    }

    /// The wanted decisions (any when empty).
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// The wanted scanRefs (any when empty), sorted.
    pub fn scan_refs(&self) -> &[String] {
        &self.scan_refs
    }

    /// Only changes that leave a case final.
    pub fn final_only(&self) -> bool {
        self.final_only
    }
}

fn too_many(field: &str, n: usize) -> Error {
    Error::InvalidArgument(format!(
        "{field} has {n} values; at most {MAX_FILTER_VALUES} are allowed"
    ))
}

/// Checks one field's keys and returns them sorted and unique. Values are never echoed: they
/// are the caller's identifiers.
fn keys(field: &str, mut values: Vec<String>) -> Result<Vec<String>, Error> {
    if values.len() > MAX_FILTER_VALUES {
        return Err(too_many(field, values.len()));
    }
    for (i, value) in values.iter().enumerate() {
        key::check_key(&format!("{field}[{i}]"), value)?;
    }
    values.sort_unstable();
    values.dedup();
    Ok(values)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn case(client_id: &str, scan_ref: &str, decision: Decision, is_final: bool) -> Case {
        Case {
            scan_ref: scan_ref.into(),
            client_id: client_id.into(),
            external_ref: None,
            decision,
            is_final,
            overall_status: None,
            last_event_type: "IDENTIFICATION".into(),
            revision: 1,
            auto_document: None,
            auto_face: None,
            manual_document: None,
            manual_face: None,
            fraud_tags: vec![],
            mismatch_tags: vec![],
            suspicion_reasons: vec![],
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            finalized_at: None,
            purged_at: None,
            person: None,
        }
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn an_empty_filter_matches_everything() {
        let filter = FeedFilter::new(vec![], vec![], vec![], false).unwrap();
        assert!(filter.is_everything());
        assert!(filter.matches(&case("c", "s", Decision::Pending, false)));
    }

    #[test]
    fn values_of_one_field_combine_with_or() {
        let filter = FeedFilter::new(strings(&["b", "a"]), vec![], vec![], false).unwrap();
        assert!(filter.matches(&case("a", "s", Decision::Pending, false)));
        assert!(filter.matches(&case("b", "s", Decision::Pending, false)));
        assert!(!filter.matches(&case("c", "s", Decision::Pending, false)));

        let filter = FeedFilter::new(
            vec![],
            vec![Decision::Denied, Decision::Approved],
            vec![],
            false,
        )
        .unwrap();
        assert!(filter.matches(&case("c", "s", Decision::Approved, true)));
        assert!(filter.matches(&case("c", "s", Decision::Denied, true)));
        assert!(!filter.matches(&case("c", "s", Decision::Pending, false)));
    }

    #[test]
    fn fields_combine_with_and() {
        let filter = FeedFilter::new(
            strings(&["a"]),
            vec![Decision::Approved],
            strings(&["s1", "s2"]),
            true,
        )
        .unwrap();
        assert!(filter.matches(&case("a", "s2", Decision::Approved, true)));
        assert!(!filter.matches(&case("b", "s2", Decision::Approved, true)));
        assert!(!filter.matches(&case("a", "s3", Decision::Approved, true)));
        assert!(!filter.matches(&case("a", "s2", Decision::Denied, true)));
        // PENDING with final set cannot happen today, but final_only is its own condition.
        assert!(!filter.matches(&case("a", "s2", Decision::Approved, false)));
    }

    #[test]
    fn final_only_alone_keeps_final_changes() {
        let filter = FeedFilter::new(vec![], vec![], vec![], true).unwrap();
        assert!(!filter.is_everything());
        assert!(filter.matches(&case("a", "s", Decision::Cancelled, true)));
        assert!(!filter.matches(&case("a", "s", Decision::Pending, false)));
    }

    #[test]
    fn values_are_kept_sorted_and_unique() {
        let filter = FeedFilter::new(
            strings(&["b", "a", "b"]),
            vec![Decision::Denied, Decision::Approved, Decision::Denied],
            strings(&["z", "y", "z"]),
            false,
        )
        .unwrap();
        assert_eq!(filter.client_ids(), ["a", "b"]);
        assert_eq!(filter.scan_refs(), ["y", "z"]);
        assert_eq!(filter.decisions(), [Decision::Approved, Decision::Denied]);
    }

    #[test]
    fn at_most_a_thousand_values_per_field() {
        let many = |n: usize| (0..n).map(|i| format!("s{i}")).collect::<Vec<_>>();
        assert!(FeedFilter::new(vec![], vec![], many(MAX_FILTER_VALUES), false).is_ok());
        let Err(Error::InvalidArgument(message)) =
            FeedFilter::new(vec![], vec![], many(MAX_FILTER_VALUES + 1), false)
        else {
            panic!("refused");
        };
        assert_eq!(
            message,
            "scan_refs has 1001 values; at most 1000 are allowed"
        );
        assert!(FeedFilter::new(many(MAX_FILTER_VALUES + 1), vec![], vec![], false).is_err());
        let decisions = vec![Decision::Approved; MAX_FILTER_VALUES + 1];
        assert!(FeedFilter::new(vec![], decisions, vec![], false).is_err());
    }

    #[test]
    fn values_no_case_can_have_are_refused_without_being_echoed() {
        for (value, problem) in [
            (String::new(), "client_ids[1] must not be empty"),
            ("x".repeat(129), "client_ids[1] is longer than 128 bytes"),
            ("a\0b".to_owned(), "client_ids[1] contains a NUL byte"),
        ] {
            let Err(Error::InvalidArgument(message)) =
                FeedFilter::new(vec!["ok".into(), value], vec![], vec![], false)
            else {
                panic!("{problem}: refused");
            };
            assert_eq!(message, problem);
        }
        assert!(FeedFilter::new(vec!["x".repeat(128)], vec![], vec![], false).is_ok());
    }
}
