//! Domain ↔ protobuf conversion, and nowhere else: handlers and streams call these so the wire
//! format and the domain model can evolve apart without conversions scattering through the code.
//!
//! Functions rather than `From` impls, because both sides are foreign types here.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;
use verdict_domain as domain;
use verdict_ingest::Reprocessed;
use verdict_proto::verdict::v1 as pb;

#[cfg(test)]
mod tests;

/// A case as callers see it. Personal data is only included for [`pb::CaseView::Full`], even if
/// the store returned more, so a BASIC reader can never receive it by accident. History is
/// left empty: only `GetCase` with `include_history` fills it.
///
/// By reference: a change watched by many streams is converted once per stream from the one
/// case they share, and a BASIC conversion copies nothing of the person it leaves out.
pub fn case_to_proto(case: &domain::Case, view: pb::CaseView) -> pb::Case {
    let person = match view {
        pb::CaseView::Full => case.person.as_ref().map(person_to_proto),
        pb::CaseView::Unspecified | pb::CaseView::Basic => None,
    };
    pb::Case {
        scan_ref: case.scan_ref.clone(),
        client_id: case.client_id.clone(),
        external_ref: case.external_ref.clone().unwrap_or_default(),
        decision: decision_to_proto(case.decision).into(),
        r#final: case.is_final,
        overall_status: case.overall_status.clone().unwrap_or_default(),
        last_event_type: case.last_event_type.clone(),
        revision: case.revision,
        auto_document: case.auto_document.clone().unwrap_or_default(),
        auto_face: case.auto_face.clone().unwrap_or_default(),
        manual_document: case.manual_document.clone().unwrap_or_default(),
        manual_face: case.manual_face.clone().unwrap_or_default(),
        fraud_tags: case.fraud_tags.clone(),
        mismatch_tags: case.mismatch_tags.clone(),
        suspicion_reasons: case.suspicion_reasons.clone(),
        created_at: Some(timestamp(case.created_at)),
        updated_at: Some(timestamp(case.updated_at)),
        finalized_at: case.finalized_at.map(timestamp),
        person,
        history: Vec::new(),
        purged_at: case.purged_at.map(timestamp),
    }
}

/// The identity read from the document; unknown fields become empty strings, as proto3 has no
/// absent strings.
pub fn person_to_proto(person: &domain::Person) -> pb::Person {
    let text = |field: &Option<String>| field.clone().unwrap_or_default();
    pb::Person {
        first_name: text(&person.first_name),
        last_name: text(&person.last_name),
        date_of_birth: text(&person.date_of_birth),
        nationality: text(&person.nationality),
        sex: text(&person.sex),
        document_type: text(&person.document_type),
        document_number: text(&person.document_number),
        document_expiry: text(&person.document_expiry),
        issuing_country: text(&person.issuing_country),
    }
}

/// One stored delivery in a case's history.
pub fn case_event_to_proto(event: domain::CaseEvent) -> pb::CaseEvent {
    pb::CaseEvent {
        event_type: event.event_type,
        r#final: event.is_final,
        outcome: event.outcome.as_str().to_owned(),
        revision: event.revision,
        overall_status: event.overall_status.unwrap_or_default(),
        received_at: Some(timestamp(event.received_at)),
    }
}

/// A quarantined delivery as `ListQuarantine` shows it: metadata and reason, never the body.
pub fn quarantine_item_to_proto(item: domain::QuarantineItem) -> pb::QuarantineItem {
    pb::QuarantineItem {
        id: item.id,
        event_type: item.event_type.unwrap_or_default(),
        scan_ref: item.scan_ref.unwrap_or_default(),
        reason_kind: item.reason_kind.unwrap_or_default(),
        reason: item.reason,
        received_at: Some(timestamp(item.received_at)),
        body_bytes: item.body.len() as u64,
    }
}

/// What a reprocess made of one quarantined delivery.
pub fn reprocessed_to_proto(done: &Reprocessed) -> pb::ReprocessedItem {
    let id = done.id();
    match done {
        Reprocessed::Skipped { why, .. } => pb::ReprocessedItem {
            id,
            outcome: "skipped".to_owned(),
            reason: why.clone(),
            ..pb::ReprocessedItem::default()
        },
        Reprocessed::Ingested { recorded, .. } => {
            let quarantined = match recorded {
                domain::Recorded::Quarantined { reason, .. } => Some(reason),
                domain::Recorded::Applied { .. }
                | domain::Recorded::Duplicate { .. }
                | domain::Recorded::Stale { .. } => None,
            };
            pb::ReprocessedItem {
                id,
                outcome: recorded.label().to_owned(),
                scan_ref: recorded
                    .case()
                    .map(|case| case.scan_ref.clone())
                    .unwrap_or_default(),
                revision: recorded.case().map_or(0, |case| case.revision),
                reason_kind: quarantined
                    .map(|reason| reason.kind().to_owned())
                    .unwrap_or_default(),
                reason: quarantined.map(ToString::to_string).unwrap_or_default(),
            }
        }
    }
}

/// Verdict's decision on the wire. Exhaustive so a new domain decision fails to compile here
/// until the contract says how to show it.
pub fn decision_to_proto(decision: domain::Decision) -> pb::Decision {
    match decision {
        domain::Decision::Pending => pb::Decision::Pending,
        domain::Decision::Approved => pb::Decision::Approved,
        domain::Decision::Denied => pb::Decision::Denied,
        domain::Decision::Suspected => pb::Decision::Suspected,
        domain::Decision::Expired => pb::Decision::Expired,
        domain::Decision::Cancelled => pb::Decision::Cancelled,
    }
}

/// A decision from a request; `UNSPECIFIED` means "any" (no filter), hence `None`.
pub fn decision_from_proto(decision: pb::Decision) -> Option<domain::Decision> {
    match decision {
        pb::Decision::Unspecified => None,
        pb::Decision::Pending => Some(domain::Decision::Pending),
        pb::Decision::Approved => Some(domain::Decision::Approved),
        pb::Decision::Denied => Some(domain::Decision::Denied),
        pb::Decision::Suspected => Some(domain::Decision::Suspected),
        pb::Decision::Expired => Some(domain::Decision::Expired),
        pb::Decision::Cancelled => Some(domain::Decision::Cancelled),
    }
}

/// A protobuf timestamp. chrono represents a leap second as nanos ≥ 1e9, which protobuf forbids,
/// so the value is normalized.
pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    let mut ts = Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(999_999_999),
    };
    ts.normalize();
    ts
}
