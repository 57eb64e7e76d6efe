//! The case state machine: how one delivery changes a case. Pure functions, applied by the store
//! inside the transaction that records the delivery.
//!
//! Rules, in arrival order:
//! 1. a delivery whose event type and raw body were both stored before for this case is a
//!    duplicate and changes nothing;
//! 2. a final event always applies (the latest final wins);
//! 3. a non-final event applies only while the case is not final — except RESUBMITTED, which
//!    always applies because it reopens the case for a new review round.
//!
//! Only an applied delivery bumps the revision.

use chrono::{DateTime, Utc};

use crate::{Case, Decision, EventType, Outcome, Payload};

/// The vendor statuses that count as a final result in payloads without a `final` field.
const LEGACY_FINAL_STATUSES: [&str; 4] = ["APPROVED", "DENIED", "SUSPECTED", "EXPIRED"];

/// Whether this delivery carries a final result.
///
/// MANUAL_FINISHED, CANCELLED and EXPIRED always do; otherwise the body's `final` decides, and
/// for payloads from before `final` existed the overall status does. A resubmission is never
/// final by inference: it announces another round.
pub fn is_final(event: EventType, payload: &Payload) -> bool {
    match event {
        EventType::ManualFinished | EventType::Cancelled | EventType::Expired => true,
        EventType::Resubmitted => payload.is_final == Some(true),
        EventType::AutoFinished | EventType::Legacy => match payload.is_final {
            Some(is_final) => is_final,
            None => payload
                .status
                .overall
                .as_deref()
                .is_some_and(|s| LEGACY_FINAL_STATUSES.contains(&s)),
        },
    }
}

/// Our decision for a delivery that is being applied.
///
/// Only a final delivery decides anything: a preliminary body saying `overall: EXPIRED` (or a
/// resubmission carrying the previous round's status) leaves the case PENDING, so a decision
/// other than PENDING always comes with `is_final`.
pub fn decision(event: EventType, payload: &Payload, is_final: bool) -> Decision {
    match event {
        EventType::Cancelled => return Decision::Cancelled,
        EventType::Expired => return Decision::Expired,
        EventType::AutoFinished
        | EventType::ManualFinished
        | EventType::Resubmitted
        | EventType::Legacy => {}
    }
    if !is_final {
        return Decision::Pending;
    }
    match payload.status.overall.as_deref().unwrap_or_default() {
        "APPROVED" => Decision::Approved,
        "DENIED" => Decision::Denied,
        "SUSPECTED" => Decision::Suspected,
        // EXPIRED-DELETED is the documented spelling for an expired token whose data was deleted.
        "EXPIRED" | "EXPIRED-DELETED" => Decision::Expired,
        // Final but with a status we cannot summarise (REVIEWING, DELETED, a new value): the
        // raw status is still in `overall_status` for callers who know better.
        _ => Decision::Pending,
    }
}

/// The result of applying one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// What happened to the delivery.
    pub outcome: Outcome,
    /// Whether the delivery itself was final.
    pub delivery_final: bool,
    /// The case after the delivery (unchanged unless `outcome` is `Applied`).
    pub case: Case,
}

/// Applies one delivery to the current state of its case (`None` for a new case).
///
/// `already_stored` tells whether a delivery with the same event type and the same raw body was
/// stored for this case before; only the store can know that.
pub fn apply(
    current: Option<&Case>,
    event: EventType,
    payload: &Payload,
    already_stored: bool,
    received_at: DateTime<Utc>,
) -> Transition {
    let delivery_final = is_final(event, payload);
    let outcome = match current {
        _ if already_stored && current.is_some() => Outcome::Duplicate,
        None => Outcome::Applied,
        Some(_) if delivery_final || event == EventType::Resubmitted => Outcome::Applied,
        Some(case) if case.is_final => Outcome::Stale,
        Some(_) => Outcome::Applied,
    };
    let case = match (outcome, current) {
        (Outcome::Applied, _) => applied(current, event, payload, delivery_final, received_at),
        (_, Some(case)) => case.clone(),
        (_, None) => unreachable!("a delivery for a new case is always applied"),
    };
    Transition {
        outcome,
        delivery_final,
        case,
    }
}

fn applied(
    current: Option<&Case>,
    event: EventType,
    payload: &Payload,
    is_final: bool,
    at: DateTime<Utc>,
) -> Case {
    let status = &payload.status;
    // A body that names the person states it whole (a reviewer may have blanked a field the
    // automatic check misread); only a body with no identity at all, such as a cancellation,
    // keeps what we knew. Merging field by field would make the final person depend on whether
    // a preliminary result happened to arrive before the final one or after it (then stale).
    let person = match (payload.person(), current.and_then(|c| c.person.as_ref())) {
        (new, Some(old)) if new.is_empty() => old.clone(),
        (new, _) => new,
    };
    let finalized_at = match (is_final, current) {
        (false, _) => None,
        (true, Some(c)) if c.is_final => c.finalized_at.or(Some(at)),
        (true, _) => Some(at),
    };
    Case {
        scan_ref: payload.scan_ref().to_owned(),
        client_id: payload
            .client_id
            .clone()
            .or_else(|| current.map(|c| c.client_id.clone()))
            .unwrap_or_default(),
        external_ref: payload
            .external_ref
            .clone()
            .or_else(|| current.and_then(|c| c.external_ref.clone())),
        decision: decision(event, payload, is_final),
        is_final,
        overall_status: status.overall.clone(),
        last_event_type: event.as_str().to_owned(),
        revision: current.map_or(1, |c| c.revision + 1),
        auto_document: status.auto_document.clone(),
        auto_face: status.auto_face.clone(),
        manual_document: status.manual_document.clone(),
        manual_face: status.manual_face.clone(),
        fraud_tags: status.fraud_tags.clone(),
        mismatch_tags: status.mismatch_tags.clone(),
        suspicion_reasons: status.suspicion_reasons.clone(),
        created_at: current.map_or(at, |c| c.created_at),
        updated_at: at,
        finalized_at,
        person: (!person.is_empty()).then_some(person),
    }
}

#[cfg(test)]
mod tests;
