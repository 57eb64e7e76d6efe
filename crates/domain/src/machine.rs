//! The case state machine: how one delivery changes a case. Pure functions, applied by the store
//! inside the transaction that records the delivery.
//!
//! The HMAC covers the body only, so the `Idenfy-Event-Type` header is believed only where the
//! body cannot speak for itself. A delivery is judged in this order (DESIGN.md section 3):
//!
//! 1. **Duplicate** — the store saw the same raw body for this case before, under *any* event
//!    type, or the same event type with the same content apart from re-signed file links (see
//!    [`crate::Fingerprint`]). Judged first, so a replay of stored bytes under a forged header
//!    is only ever a duplicate. "Before" means arrival time: a delivery reprocessed from the
//!    quarantine is not a duplicate of copies that arrived after it.
//! 2. **What the delivery is** ([`classify`]), or why it is quarantined:
//!    - CANCELLED and EXPIRED decide by their type (the vendor gives them no `final` flag);
//!    - a body whose overall status is a lifecycle status (DELETED, ARCHIVED, EXPIRED-DELETED)
//!      is a lifecycle notice, not a result, whatever the header;
//!    - MANUAL_FINISHED is final by contract: with a body saying `final: false` it is
//!      quarantined (`header_body_mismatch`);
//!    - a final result whose overall status is not a decision (REVIEWING, ACTIVE, absent, new)
//!      is quarantined (`unsummarisable_final`) rather than make the case final and PENDING;
//!    - RESUBMITTED reopens the case; anything else is a preliminary result;
//!    - a RECONCILED delivery (iDenfy's answer to a lookup) is what its status says: a final
//!      result, a lifecycle notice, or nothing new (see below).
//! 3. **As of arrival** — a delivery that arrived before the case's last decisive delivery (the
//!    last final result or resubmission applied) is stale: in arrival order that later decision
//!    would have superseded it. Live webhooks arrive now, so this only bites deliveries
//!    reprocessed from the quarantine, and deliveries racing each other.
//! 4. A final result always applies (the latest final wins) and so does a resubmission. A
//!    preliminary result applies only while the case is not final and nothing newer was
//!    applied; a lifecycle notice applies unless something newer was — and even then as the
//!    erasure it asks for, to a case not purged yet.
//!
//! Only an applied delivery bumps the revision.
//!
//! # Reconciliation answers
//! When a case stays open for long, the reconciler asks iDenfy's status API and records the
//! answer as a delivery of event type RECONCILED (DESIGN.md section 13), judged like any other
//! — duplicates included: an answer identical to an earlier one is a duplicate by rule 1a. The
//! answer has no `final` flag and no header that could contradict it, so its status decides:
//! APPROVED, DENIED, SUSPECTED and EXPIRED are a final result with that decision; DELETED,
//! ARCHIVED and EXPIRED-DELETED a lifecycle notice; anything else (REVIEWING, ACTIVE, a value
//! Verdict does not know) says nothing the case does not already say, and is kept in the
//! history as **stale**, never bumping the revision — iDenfy is still working on it, and
//! the webhook that ends its work is still to come. Only for a case Verdict never heard of
//! (an operator's `verdict reconcile`) does such an answer create the case, PENDING and not
//! final, as a preliminary result would.
//!
//! # Lifecycle notices
//! A lifecycle status says what iDenfy did with the verification's data, not how it ended. An
//! applied notice therefore keeps the decision, finality, `finalized_at`, the status fields and
//! tags, and changes `overall_status` (and `last_event_type`), bumping the revision so watchers
//! learn of it. It also asks Verdict to forget the person (DESIGN.md section 11):
//! [`Transition::Applied::purges`] tells the store to erase the case's personal data in the
//! same transaction, so the notice and the purge are one change, and the case it returns has
//! no person. A notice judged stale (something newer was applied) does not change the status,
//! but its erasure still applies, once: to a case not purged yet it is a change of its own (the
//! revision, `last_event_type`, no person); to a purged one it is stale. A notice for a case
//! Verdict never saw creates it as PENDING and not final: it does not invent a decision.
//!
//! # Purged cases
//! Once a case is purged ([`Case::purged_at`]) it never holds a person again: a delivery that
//! applies to it changes what it says about the verification, not who was verified.
//!
//! # Delayed deliveries
//! Whatever the order in which deliveries are recorded — some of them late, with their original
//! arrival time — the case ends with the decision and finality of recording them in arrival
//! order: both only ever come from the last decisive delivery by arrival time. `updated_at` is
//! the arrival time of the newest applied delivery and never goes backwards; `created_at` is
//! the earliest. (Fields other than decision and finality come from the last delivery applied,
//! which for a delayed final result or resubmission may be older than a preliminary result it
//! replaces.)

use chrono::{DateTime, Utc};

use crate::{Case, Decision, EventType, Payload, QuarantineReason};

/// The vendor statuses that count as a final result where there is no `final` field: in old
/// webhook bodies and in status answers.
const FINAL_STATUSES: [&str; 4] = ["APPROVED", "DENIED", "SUSPECTED", "EXPIRED"];

/// Overall statuses that report what happened to the verification's data, not a decision.
pub const LIFECYCLE_STATUSES: [&str; 3] = ["DELETED", "ARCHIVED", "EXPIRED-DELETED"];

/// Whether this delivery carries a final result, as stored in its history entry.
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
                .is_some_and(|s| FINAL_STATUSES.contains(&s)),
        },
        EventType::Reconciled => payload
            .status
            .overall
            .as_deref()
            .is_some_and(|s| FINAL_STATUSES.contains(&s)),
    }
}

/// What a delivery is for its case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A final result with its decision.
    Final(Decision),
    /// A resubmission: the case reopens for another review round.
    Reopening,
    /// A preliminary result: the automatic check, while a review may follow.
    Preliminary,
    /// A lifecycle status (DELETED, ARCHIVED, EXPIRED-DELETED): keeps the decision.
    Lifecycle,
    /// A reconciliation answer saying the verification is still open (REVIEWING, ACTIVE, or a
    /// status Verdict does not know): nothing the case does not already say.
    Unchanged,
}

impl Kind {
    /// Whether the delivery always applies, superseding everything that arrived before it.
    fn is_decisive(self) -> bool {
        matches!(self, Self::Final(_) | Self::Reopening)
    }
}

/// What a delivery is, read from its signed body first and from the unsigned header only where
/// the body agrees; or why it must be quarantined. Independent of the case, so a quarantine
/// reason never depends on the order deliveries arrive in.
pub fn classify(event: EventType, payload: &Payload) -> Result<Kind, QuarantineReason> {
    match event {
        EventType::Cancelled => return Ok(Kind::Final(Decision::Cancelled)),
        EventType::Expired => return Ok(Kind::Final(Decision::Expired)),
        EventType::Reconciled => return Ok(answered(payload)),
        EventType::AutoFinished
        | EventType::ManualFinished
        | EventType::Resubmitted
        | EventType::Legacy => {}
    }
    let overall = payload.status.overall.as_deref().unwrap_or_default();
    if LIFECYCLE_STATUSES.contains(&overall) {
        return Ok(Kind::Lifecycle);
    }
    if event == EventType::ManualFinished && payload.is_final == Some(false) {
        return Err(QuarantineReason::HeaderBodyMismatch(event));
    }
    if is_final(event, payload) {
        let decision = match overall {
            "APPROVED" => Decision::Approved,
            "DENIED" => Decision::Denied,
            "SUSPECTED" => Decision::Suspected,
            "EXPIRED" => Decision::Expired,
            _ => return Err(QuarantineReason::UnsummarisableFinal),
        };
        return Ok(Kind::Final(decision));
    }
    Ok(match event {
        EventType::Resubmitted => Kind::Reopening,
        _ => Kind::Preliminary,
    })
}

/// What a status answer is: its status alone decides (see the module docs), so it is never
/// quarantined.
fn answered(payload: &Payload) -> Kind {
    let overall = payload.status.overall.as_deref().unwrap_or_default();
    if LIFECYCLE_STATUSES.contains(&overall) {
        return Kind::Lifecycle;
    }
    match overall {
        "APPROVED" => Kind::Final(Decision::Approved),
        "DENIED" => Kind::Final(Decision::Denied),
        "SUSPECTED" => Kind::Final(Decision::Suspected),
        "EXPIRED" => Kind::Final(Decision::Expired),
        _ => Kind::Unchanged,
    }
}

/// The stored state of a case the delivery meets.
#[derive(Debug, Clone, Copy)]
pub struct Prior<'a> {
    /// The case as it is now.
    pub case: &'a Case,
    /// When the last decisive delivery applied to it (a final result or a resubmission)
    /// arrived; `None` when there was none yet. Kept by the store next to the case.
    pub decisive_at: Option<DateTime<Utc>>,
}

/// The result of judging one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per delivery, consumed at once by the store: boxing the case would only add an allocation"
)]
pub enum Transition {
    /// The delivery changes the case.
    Applied {
        /// The case after the delivery.
        case: Case,
        /// The case's new [`Prior::decisive_at`].
        decisive_at: Option<DateTime<Utc>>,
        /// Whether the delivery itself was final.
        delivery_final: bool,
        /// A lifecycle notice: the store erases the case's personal data in the same
        /// transaction and marks it purged (the time of the erasure is the store's to say).
        purges: bool,
    },
    /// Seen before: kept in the history, nothing changes.
    Duplicate {
        /// Whether the delivery itself was final.
        delivery_final: bool,
    },
    /// Superseded by what the case already holds: kept in the history, nothing changes.
    Stale {
        /// Whether the delivery itself was final.
        delivery_final: bool,
    },
    /// Not recorded on the case: set aside in the quarantine.
    Quarantine(QuarantineReason),
}

/// Judges one delivery against its case (`None` for a case Verdict never saw).
///
/// `seen_before` tells whether the store holds a delivery that makes this one a duplicate
/// (rule 1, judged by arrival time); only the store can know that.
pub fn apply(
    prior: Option<Prior<'_>>,
    event: EventType,
    payload: &Payload,
    seen_before: bool,
    received_at: DateTime<Utc>,
) -> Transition {
    let delivery_final = is_final(event, payload);
    if seen_before {
        return Transition::Duplicate { delivery_final };
    }
    let kind = match classify(event, payload) {
        Ok(kind) => kind,
        Err(reason) => return Transition::Quarantine(reason),
    };
    let decisive_at = prior.and_then(|p| p.decisive_at);
    if let Some(prior) = prior {
        let case = prior.case;
        let superseded = decisive_at.is_some_and(|at| received_at < at);
        let applies = !superseded
            && match kind {
                Kind::Final(_) | Kind::Reopening => true,
                Kind::Preliminary => !case.is_final && received_at >= case.updated_at,
                Kind::Lifecycle => received_at >= case.updated_at,
                Kind::Unchanged => false,
            };
        if !applies {
            if kind == Kind::Lifecycle && !case.is_purged() {
                return Transition::Applied {
                    case: erased(case, event),
                    decisive_at,
                    delivery_final,
                    purges: true,
                };
            }
            return Transition::Stale { delivery_final };
        }
    }
    let current = prior.map(|p| p.case);
    let purges = kind == Kind::Lifecycle;
    let mut case = match kind {
        Kind::Lifecycle => noted(current, event, payload, received_at),
        Kind::Final(_) | Kind::Reopening | Kind::Preliminary | Kind::Unchanged => {
            applied(current, event, payload, kind, received_at)
        }
    };
    if purges || case.is_purged() {
        case.person = None;
    }
    Transition::Applied {
        case,
        decisive_at: match kind.is_decisive() {
            true => Some(received_at),
            false => decisive_at,
        },
        delivery_final,
        purges,
    }
}

/// A superseded lifecycle notice applied as the erasure it asks for: nothing but the revision,
/// the event type and the person change.
fn erased(case: &Case, event: EventType) -> Case {
    Case {
        last_event_type: event.as_str().to_owned(),
        revision: case.revision + 1,
        person: None,
        ..case.clone()
    }
}

/// A result (final, preliminary, a reopening, or an answer about a case never seen) applied: the
/// body states the case anew.
fn applied(
    current: Option<&Case>,
    event: EventType,
    payload: &Payload,
    kind: Kind,
    at: DateTime<Utc>,
) -> Case {
    let status = &payload.status;
    let (decision, is_final) = match kind {
        Kind::Final(decision) => (decision, true),
        Kind::Reopening | Kind::Preliminary | Kind::Lifecycle | Kind::Unchanged => {
            (Decision::Pending, false)
        }
    };
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
        decision,
        is_final,
        overall_status: status.overall.clone(),
        auto_document: status.auto_document.clone(),
        auto_face: status.auto_face.clone(),
        manual_document: status.manual_document.clone(),
        manual_face: status.manual_face.clone(),
        fraud_tags: status.fraud_tags.clone(),
        mismatch_tags: status.mismatch_tags.clone(),
        suspicion_reasons: status.suspicion_reasons.clone(),
        finalized_at,
        person: (!person.is_empty()).then_some(person),
        ..changed(current, event, payload, at)
    }
}

/// A lifecycle notice applied: only the overall status changes (see the module docs).
fn noted(current: Option<&Case>, event: EventType, payload: &Payload, at: DateTime<Utc>) -> Case {
    Case {
        overall_status: payload.status.overall.clone(),
        ..changed(current, event, payload, at)
    }
}

/// What every applied delivery changes — identity, revision, times — on top of the current
/// case, or on an empty PENDING case for a new one.
fn changed(current: Option<&Case>, event: EventType, payload: &Payload, at: DateTime<Utc>) -> Case {
    let base = match current {
        Some(case) => case.clone(),
        None => Case::new(payload.scan_ref.as_str(), at),
    };
    Case {
        client_id: payload
            .client_id
            .clone()
            .unwrap_or_else(|| base.client_id.clone()),
        external_ref: payload
            .external_ref
            .clone()
            .or_else(|| base.external_ref.clone()),
        last_event_type: event.as_str().to_owned(),
        revision: base.revision + 1,
        created_at: base.created_at.min(at),
        updated_at: base.updated_at.max(at),
        ..base
    }
}

#[cfg(test)]
mod tests;
