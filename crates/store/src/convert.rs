//! The one place where rows become domain values and back.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::{NotSet, Set, Unchanged};
use sea_orm::FromQueryResult;
use verdict_domain::{
    Case, CaseEvent, Cursor, Decision, FeedChange, Fingerprint, NewQuarantine, Outcome, Person,
    QuarantineItem,
};

use crate::Error;
use crate::entity::{case, case_change, case_person, delivery, quarantine};

/// A case row (and its person row, when the reader wants personal data) as a domain case.
pub(crate) fn case_from_row(row: case::Model, person: Option<Person>) -> Result<Case, Error> {
    Ok(Case {
        decision: Decision::parse(&row.decision)
            .ok_or_else(|| Error::corrupt(format!("cases.decision {:?}", row.decision)))?,
        revision: to_u64(row.revision, "cases.revision")?,
        fraud_tags: tags_from_json(&row.fraud_tags, "cases.fraud_tags")?,
        mismatch_tags: tags_from_json(&row.mismatch_tags, "cases.mismatch_tags")?,
        suspicion_reasons: tags_from_json(&row.suspicion_reasons, "cases.suspicion_reasons")?,
        scan_ref: row.scan_ref,
        client_id: row.client_id,
        external_ref: row.external_ref,
        is_final: row.is_final,
        overall_status: row.overall_status,
        last_event_type: row.last_event_type,
        auto_document: row.auto_document,
        auto_face: row.auto_face,
        manual_document: row.manual_document,
        manual_face: row.manual_face,
        created_at: row.created_at,
        updated_at: row.updated_at,
        finalized_at: row.finalized_at,
        purged_at: row.purged_at,
        person,
    })
}

/// Every column of a case row from the domain case, with the store's bookkeeping:
/// `last_position` and `decisive_at`.
pub(crate) fn case_to_row(
    case: &Case,
    last_position: i64,
    decisive_at: Option<DateTime<Utc>>,
) -> Result<case::ActiveModel, Error> {
    Ok(case::ActiveModel {
        scan_ref: Unchanged(case.scan_ref.clone()),
        client_id: Set(case.client_id.clone()),
        external_ref: Set(case.external_ref.clone()),
        decision: Set(case.decision.as_str().to_owned()),
        is_final: Set(case.is_final),
        overall_status: Set(case.overall_status.clone()),
        last_event_type: Set(case.last_event_type.clone()),
        revision: Set(to_i64(case.revision, "case revision")?),
        auto_document: Set(case.auto_document.clone()),
        auto_face: Set(case.auto_face.clone()),
        manual_document: Set(case.manual_document.clone()),
        manual_face: Set(case.manual_face.clone()),
        fraud_tags: Set(tags_to_json(&case.fraud_tags)),
        mismatch_tags: Set(tags_to_json(&case.mismatch_tags)),
        suspicion_reasons: Set(tags_to_json(&case.suspicion_reasons)),
        created_at: Set(case.created_at),
        updated_at: Set(case.updated_at),
        finalized_at: Set(case.finalized_at),
        last_position: Set(last_position),
        decisive_at: Set(decisive_at),
        purged_at: Set(case.purged_at),
    })
}

pub(crate) fn person_from_row(row: case_person::Model) -> Person {
    Person {
        first_name: row.first_name,
        last_name: row.last_name,
        date_of_birth: row.date_of_birth,
        nationality: row.nationality,
        sex: row.sex,
        document_type: row.document_type,
        document_number: row.document_number,
        document_expiry: row.document_expiry,
        issuing_country: row.issuing_country,
    }
}

pub(crate) fn person_to_row(scan_ref: &str, person: &Person) -> case_person::ActiveModel {
    case_person::ActiveModel {
        scan_ref: Set(scan_ref.to_owned()),
        first_name: Set(person.first_name.clone()),
        last_name: Set(person.last_name.clone()),
        date_of_birth: Set(person.date_of_birth.clone()),
        nationality: Set(person.nationality.clone()),
        sex: Set(person.sex.clone()),
        document_type: Set(person.document_type.clone()),
        document_number: Set(person.document_number.clone()),
        document_expiry: Set(person.document_expiry.clone()),
        issuing_country: Set(person.issuing_country.clone()),
    }
}

/// The columns of a delivery that make a history entry (the raw body stays in the database).
#[derive(Debug, FromQueryResult)]
pub(crate) struct DeliveryEvent {
    pub(crate) event_type: String,
    pub(crate) is_final: bool,
    pub(crate) outcome: String,
    pub(crate) revision: i64,
    pub(crate) overall_status: Option<String>,
    pub(crate) received_at: DateTime<Utc>,
}

/// The columns `DeliveryEvent` reads.
pub(crate) const DELIVERY_EVENT_COLUMNS: [delivery::Column; 6] = [
    delivery::Column::EventType,
    delivery::Column::IsFinal,
    delivery::Column::Outcome,
    delivery::Column::Revision,
    delivery::Column::OverallStatus,
    delivery::Column::ReceivedAt,
];

/// A delivery as a history entry.
pub(crate) fn event_from_row(row: DeliveryEvent) -> Result<CaseEvent, Error> {
    Ok(CaseEvent {
        outcome: Outcome::parse(&row.outcome)
            .ok_or_else(|| Error::corrupt(format!("deliveries.outcome {:?}", row.outcome)))?,
        revision: to_u64(row.revision, "deliveries.revision")?,
        event_type: row.event_type,
        is_final: row.is_final,
        overall_status: row.overall_status,
        received_at: row.received_at,
    })
}

/// The feed row for an applied change: the snapshot never holds the person.
pub(crate) fn change_to_row(
    position: i64,
    case: &Case,
    traceparent: Option<String>,
    committed_at: DateTime<Utc>,
) -> Result<case_change::ActiveModel, Error> {
    let snapshot = Case {
        person: None,
        ..case.clone()
    };
    let snapshot = serde_json::to_string(&snapshot)
        .map_err(|e| Error::corrupt(format!("case snapshot not serialisable: {e}")))?;
    Ok(case_change::ActiveModel {
        position: Set(position),
        scan_ref: Set(case.scan_ref.clone()),
        revision: Set(to_i64(case.revision, "case revision")?),
        is_final: Set(case.is_final),
        client_id: Set(Some(case.client_id.clone())),
        decision: Set(Some(case.decision.as_str().to_owned())),
        snapshot: Set(snapshot),
        traceparent: Set(traceparent),
        committed_at: Set(committed_at),
    })
}

/// A feed row as a change; `person` is the case's current person, when asked for.
pub(crate) fn change_from_row(
    row: case_change::Model,
    person: Option<Person>,
) -> Result<FeedChange, Error> {
    let mut case: Case = serde_json::from_str(&row.snapshot).map_err(|e| {
        Error::corrupt(format!(
            "case_changes.snapshot at {} unreadable: {e}",
            row.position
        ))
    })?;
    case.person = person;
    Ok(FeedChange {
        position: Cursor(to_u64(row.position, "case_changes.position")?),
        case,
        traceparent: row.traceparent,
    })
}

/// A quarantine row for `item`, whose body names the case `scan_ref`. With `purged_at` (the
/// case is purged) the row keeps the hashes but not the body, and waits for nothing.
pub(crate) fn quarantine_to_row(
    item: NewQuarantine,
    fingerprint: Fingerprint,
    scan_ref: Option<String>,
    purged_at: Option<DateTime<Utc>>,
) -> quarantine::ActiveModel {
    let body = match purged_at {
        Some(_) => Vec::new(),
        None => item.body.to_vec(),
    };
    quarantine::ActiveModel {
        id: NotSet,
        event_type: Set(item.event_type),
        scan_ref: Set(scan_ref),
        body: Set(body),
        reason: Set(item.reason.to_string()),
        reason_kind: Set(Some(item.reason.kind().to_owned())),
        body_sha256: Set(Some(fingerprint.body_sha256)),
        content_sha256: Set(Some(fingerprint.content_sha256)),
        received_at: Set(item.received_at),
        traceparent: Set(item.traceparent),
        released_at: Set(purged_at),
        purged_at: Set(purged_at),
    }
}

pub(crate) fn quarantine_from_row(row: quarantine::Model) -> QuarantineItem {
    QuarantineItem {
        id: row.id,
        event_type: row.event_type,
        scan_ref: row.scan_ref,
        body: row.body.into(),
        reason: row.reason,
        reason_kind: row.reason_kind,
        received_at: row.received_at,
        traceparent: row.traceparent,
    }
}

/// A client's cursor as a column value. Positions above `i64::MAX` cannot exist, so such a
/// cursor saturates: "after it" is nothing, "before it" is everything.
pub(crate) fn position(cursor: Cursor) -> i64 {
    i64::try_from(cursor.0).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::corrupt(format!("{what} is negative")))
}

pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, Error> {
    i64::try_from(value).map_err(|_| Error::corrupt(format!("{what} exceeds i64")))
}

pub(crate) fn tags_to_json(tags: &[String]) -> String {
    serde_json::Value::from(tags).to_string()
}

fn tags_from_json(raw: &str, what: &str) -> Result<Vec<String>, Error> {
    serde_json::from_str(raw).map_err(|e| Error::corrupt(format!("{what} unreadable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_as_json_arrays() {
        let tags = vec!["DOC_FACE_MISMATCH".to_owned(), "with \"quotes\"".to_owned()];
        let json = tags_to_json(&tags);
        assert_eq!(tags_from_json(&json, "t").unwrap(), tags);
        assert_eq!(tags_to_json(&[]), "[]");
    }

    #[test]
    fn cursors_beyond_i64_saturate() {
        assert_eq!(position(Cursor(7)), 7);
        assert_eq!(position(Cursor(u64::MAX)), i64::MAX);
    }
}
