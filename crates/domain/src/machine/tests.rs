use chrono::TimeZone;
use serde_json::{Value, json};

use super::*;
use crate::{Fingerprint, Outcome, Person};

mod props;
mod reconciled;
mod rules;
mod trust;

const GO_IDENFY: &[u8] = include_bytes!("../../tests/fixtures/go-idenfy-webhook.json");
const LEGACY: &[u8] = include_bytes!("../../tests/fixtures/idenfy-legacy-example.json");

use EventType::{AutoFinished, Cancelled, Expired, Legacy, ManualFinished, Resubmitted};

fn at(second: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + second, 0).unwrap()
}

fn payload(body: &Value) -> Payload {
    Payload::parse(&serde_json::to_vec(body).unwrap()).unwrap()
}

/// A body of case "s" with the given `final` flag (absent when `None`) and overall status.
fn body(is_final: Option<bool>, overall: &str) -> Value {
    let mut body = json!({
        "scanRef": "s",
        "clientId": "client-1",
        "status": {"overall": overall, "autoDocument": "DOC_VALIDATED", "autoFace": "FACE_MATCH"},
        "data": {"docFirstName": "ANNA", "docLastName": "KARENINA"},
    });
    if let Some(is_final) = is_final {
        body["final"] = json!(is_final);
    }
    body
}

fn final_of(event: EventType, body: &Value) -> bool {
    is_final(event, &payload(body))
}

/// What [`classify`] makes of a delivery.
fn kind_of(event: EventType, body: &Value) -> Result<Kind, QuarantineReason> {
    classify(event, &payload(body))
}

/// The decision a delivery would give a case it applies to.
fn decision_of(event: EventType, body: &Value) -> Decision {
    match kind_of(event, body) {
        Ok(Kind::Final(decision)) => decision,
        Ok(Kind::Preliminary | Kind::Reopening | Kind::Lifecycle | Kind::Unchanged) => {
            Decision::Pending
        }
        Err(reason) => panic!("{event} {body} is quarantined: {reason}"),
    }
}

/// A delivery judged against nothing: the first one Verdict sees of a case.
fn first(event: EventType, body: &Value, received_at: DateTime<Utc>) -> Transition {
    apply(None, event, &payload(body), false, received_at)
}

/// The case a first delivery creates; panics if it does not apply.
fn created(event: EventType, body: &Value) -> (Case, bool) {
    match first(event, body, at(0)) {
        Transition::Applied {
            case,
            delivery_final,
            ..
        } => (case, delivery_final),
        other => panic!("{event} {body} did not apply: {other:?}"),
    }
}

/// A recorded delivery as the tests look at it: its outcome, its own finality and the case
/// after it.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    outcome: Outcome,
    delivery_final: bool,
    case: Case,
}

/// A model of the store around [`apply`]: every delivery is kept — in the case history (even a
/// duplicate of a case that does not exist yet) or in the quarantine — and "seen before" is
/// answered as the real store does: an earlier kept delivery with the same raw body (rule 1a),
/// or with the same event type and content (rule 1b), "earlier" meaning by arrival time, never
/// the quarantine item being reprocessed.
#[derive(Debug, Default)]
struct Store {
    case: Option<Case>,
    decisive_at: Option<DateTime<Utc>>,
    kept: Vec<(DateTime<Utc>, EventType, Fingerprint)>,
    clock: i64,
}

impl Store {
    /// Records a delivery arriving now, one second after the previous one.
    fn deliver(&mut self, event: EventType, body: &[u8]) -> Step {
        self.clock += 1;
        let received_at = at(self.clock);
        match self.judge(event, body, received_at, None) {
            Transition::Quarantine(reason) => panic!("{event} was quarantined: {reason}"),
            t => self.step(t),
        }
    }

    fn deliver_json(&mut self, event: EventType, body: &Value) -> Step {
        self.deliver(event, &serde_json::to_vec(body).unwrap())
    }

    /// Judges a delivery that arrived at `received_at` and keeps what the real store keeps.
    /// `releases` is the index of the quarantine entry it is reprocessed from.
    fn judge(
        &mut self,
        event: EventType,
        body: &[u8],
        received_at: DateTime<Utc>,
        releases: Option<usize>,
    ) -> Transition {
        let payload = match event {
            // Status answers have their own shape; the rest of the model is the same.
            EventType::Reconciled => crate::StatusAnswer::parse(
                bytes::Bytes::copy_from_slice(body),
                &crate::ScanRef::new("s").unwrap(),
            )
            .unwrap()
            .payload()
            .clone(),
            _ => Payload::parse(body).unwrap(),
        };
        let fingerprint = Fingerprint::of(body);
        let seen_before = self.kept.iter().enumerate().any(|(i, (at, e, f))| {
            *at < received_at
                && Some(i) != releases
                && (f.body_sha256 == fingerprint.body_sha256
                    || (*e == event && f.content_sha256 == fingerprint.content_sha256))
        });
        let prior = self.case.as_ref().map(|case| Prior {
            case,
            decisive_at: self.decisive_at,
        });
        let t = apply(prior, event, &payload, seen_before, received_at);
        let kept = match &t {
            Transition::Applied {
                case,
                decisive_at,
                purges,
                ..
            } => {
                let mut case = case.clone();
                if *purges {
                    // The store marks the purge with its own clock; arrival stands in for it.
                    case.purged_at.get_or_insert(received_at);
                }
                self.case = Some(case);
                self.decisive_at = *decisive_at;
                true
            }
            Transition::Duplicate { .. } | Transition::Stale { .. } => true,
            // A reprocessed item quarantined again stays where it is.
            Transition::Quarantine(_) => releases.is_none(),
        };
        if kept {
            self.kept.push((received_at, event, fingerprint));
        }
        t
    }

    /// Sets a delivery aside in the quarantine as it arrives (as an older Verdict did with an
    /// event type it did not know), to be reprocessed later; returns its entry.
    fn park(&mut self, event: EventType, body: &[u8], received_at: DateTime<Utc>) -> usize {
        self.kept.push((received_at, event, Fingerprint::of(body)));
        self.kept.len() - 1
    }

    /// Reprocesses a parked delivery with its original arrival time.
    fn reprocess(&mut self, entry: usize, event: EventType, body: &[u8]) -> Transition {
        let received_at = self.kept[entry].0;
        self.judge(event, body, received_at, Some(entry))
    }

    fn step(&self, t: Transition) -> Step {
        let (outcome, delivery_final) = match t {
            Transition::Applied { delivery_final, .. } => (Outcome::Applied, delivery_final),
            Transition::Duplicate { delivery_final } => (Outcome::Duplicate, delivery_final),
            Transition::Stale { delivery_final } => (Outcome::Stale, delivery_final),
            Transition::Quarantine(reason) => panic!("quarantined: {reason}"),
        };
        Step {
            outcome,
            delivery_final,
            case: self.case().clone(),
        }
    }

    fn case(&self) -> &Case {
        self.case.as_ref().expect("a case")
    }
}

// ---- is_final ----

#[test]
fn manual_finished_is_final_even_when_the_body_says_not_final() {
    assert!(final_of(ManualFinished, &body(Some(false), "APPROVED")));
    assert!(final_of(ManualFinished, &body(None, "REVIEWING")));
    assert!(final_of(ManualFinished, &json!({"scanRef": "s"})));
}

#[test]
fn cancelled_and_expired_are_always_final() {
    for header in [
        "IDENTIFICATION_CANCELLED",
        "IDENTIFICATION_CANCELED",
        "IDENTIFICATION_EXPIRED",
    ] {
        let event = EventType::from_header(Some(header)).unwrap();
        for b in [
            body(Some(false), "ACTIVE"),
            body(None, "ACTIVE"),
            json!({"scanRef": "s"}),
        ] {
            assert!(final_of(event, &b), "{header} {b}");
        }
    }
}

#[test]
fn auto_finished_follows_the_final_flag_whatever_the_status() {
    assert!(!final_of(AutoFinished, &body(Some(false), "APPROVED")));
    assert!(!final_of(AutoFinished, &body(Some(false), "DENIED")));
    assert!(final_of(AutoFinished, &body(Some(true), "APPROVED")));
    assert!(final_of(AutoFinished, &body(Some(true), "REVIEWING")));
}

#[test]
fn legacy_payload_without_final_flag_is_final_for_decided_statuses() {
    for event in [Legacy, AutoFinished] {
        for overall in ["APPROVED", "DENIED", "SUSPECTED", "EXPIRED"] {
            assert!(final_of(event, &body(None, overall)), "{event} {overall}");
        }
    }
}

#[test]
fn legacy_payload_without_final_flag_is_not_final_while_undecided() {
    for event in [Legacy, AutoFinished] {
        for overall in [
            "REVIEWING",
            "ACTIVE",
            "DELETED",
            "ARCHIVED",
            "SOMETHING_NEW",
            "",
        ] {
            assert!(!final_of(event, &body(None, overall)), "{event} {overall}");
        }
        assert!(!final_of(event, &json!({"scanRef": "s", "status": null})));
    }
}

#[test]
fn null_final_flag_falls_back_to_the_legacy_status_rule() {
    let mut b = body(None, "DENIED");
    b["final"] = Value::Null;
    assert!(final_of(Legacy, &b));
    b["status"]["overall"] = json!("REVIEWING");
    assert!(!final_of(Legacy, &b));
}

#[test]
fn explicit_final_flag_beats_the_legacy_status_rule() {
    assert!(!final_of(Legacy, &body(Some(false), "APPROVED")));
    assert!(final_of(Legacy, &body(Some(true), "REVIEWING")));
}

#[test]
fn resubmitted_is_final_only_when_the_body_says_so() {
    assert!(final_of(Resubmitted, &body(Some(true), "APPROVED")));
    assert!(!final_of(Resubmitted, &body(Some(false), "APPROVED")));
    // Never inferred from the status: a resubmission announces another round.
    assert!(!final_of(Resubmitted, &body(None, "APPROVED")));
}

#[test]
fn real_fixtures_are_classified_as_documented() {
    let legacy = Payload::parse(LEGACY).unwrap();
    let legacy_event = EventType::from_header(None).unwrap();
    assert!(is_final(legacy_event, &legacy), "legacy APPROVED is final");
    assert_eq!(
        classify(legacy_event, &legacy),
        Ok(Kind::Final(Decision::Approved))
    );

    let newer = Payload::parse(GO_IDENFY).unwrap();
    assert!(!is_final(AutoFinished, &newer), "final: false");
    assert_eq!(classify(AutoFinished, &newer), Ok(Kind::Preliminary));
    assert!(is_final(ManualFinished, &newer));
    // The fixture says final: false; as MANUAL_FINISHED that is a contradiction.
    assert_eq!(
        classify(ManualFinished, &newer),
        Err(QuarantineReason::HeaderBodyMismatch(ManualFinished))
    );
}

// ---- classify: what a delivery is ----

#[test]
fn final_overall_status_maps_to_our_decision() {
    let table = [
        ("APPROVED", Decision::Approved),
        ("DENIED", Decision::Denied),
        ("SUSPECTED", Decision::Suspected),
        ("EXPIRED", Decision::Expired),
    ];
    for event in [AutoFinished, ManualFinished, Legacy, Resubmitted] {
        for (overall, expected) in table {
            assert_eq!(
                decision_of(event, &body(Some(true), overall)),
                expected,
                "{event} {overall}"
            );
        }
    }
}

#[test]
fn legacy_decided_statuses_map_without_a_final_flag() {
    for (overall, expected) in [
        ("APPROVED", Decision::Approved),
        ("DENIED", Decision::Denied),
        ("SUSPECTED", Decision::Suspected),
        ("EXPIRED", Decision::Expired),
    ] {
        assert_eq!(decision_of(Legacy, &body(None, overall)), expected);
    }
}

#[test]
fn cancelled_event_decides_cancelled_whatever_the_status() {
    for overall in ["APPROVED", "DENIED", "EXPIRED", "ACTIVE", "DELETED", ""] {
        for header in ["IDENTIFICATION_CANCELLED", "IDENTIFICATION_CANCELED"] {
            let event = EventType::from_header(Some(header)).unwrap();
            for b in [body(Some(false), overall), body(None, overall)] {
                assert_eq!(
                    kind_of(event, &b),
                    Ok(Kind::Final(Decision::Cancelled)),
                    "{header} {b}"
                );
            }
        }
    }
}

#[test]
fn expired_event_decides_expired_whatever_the_status() {
    for overall in [
        "APPROVED",
        "ACTIVE",
        "DENIED",
        "EXPIRED-DELETED",
        "REVIEWING",
        "",
    ] {
        assert_eq!(
            kind_of(Expired, &body(Some(false), overall)),
            Ok(Kind::Final(Decision::Expired)),
            "{overall}"
        );
    }
    assert_eq!(
        kind_of(Expired, &json!({"scanRef": "s"})),
        Ok(Kind::Final(Decision::Expired))
    );
}

#[test]
fn preliminary_result_is_pending_whatever_the_status() {
    for overall in [
        "APPROVED",
        "DENIED",
        "SUSPECTED",
        "REVIEWING",
        "EXPIRED",
        "",
    ] {
        assert_eq!(
            kind_of(AutoFinished, &body(Some(false), overall)),
            Ok(Kind::Preliminary),
            "{overall}"
        );
        assert_eq!(
            kind_of(Resubmitted, &body(Some(false), overall)),
            Ok(Kind::Reopening),
            "{overall}"
        );
        assert_eq!(
            decision_of(AutoFinished, &body(Some(false), overall)),
            Decision::Pending
        );
    }
}

#[test]
fn manual_finished_saying_not_final_is_a_header_body_mismatch() {
    for overall in ["APPROVED", "DENIED", "REVIEWING"] {
        assert_eq!(
            kind_of(ManualFinished, &body(Some(false), overall)),
            Err(QuarantineReason::HeaderBodyMismatch(ManualFinished)),
            "{overall}"
        );
    }
    // Without the flag (a legacy body) nothing contradicts the header.
    assert_eq!(
        kind_of(ManualFinished, &body(None, "DENIED")),
        Ok(Kind::Final(Decision::Denied))
    );
    // The same body under a header that makes no finality claim is a preliminary result.
    assert_eq!(
        kind_of(AutoFinished, &body(Some(false), "APPROVED")),
        Ok(Kind::Preliminary)
    );
}

#[test]
fn final_result_that_cannot_be_summarised_is_quarantined() {
    let mut bodies: Vec<Value> = ["REVIEWING", "ACTIVE", "SOMETHING_NEW", "approved", ""]
        .into_iter()
        .map(|overall| body(Some(true), overall))
        .collect();
    bodies.push(json!({"scanRef": "s", "final": true, "status": {"overall": null}}));
    bodies.push(json!({"scanRef": "s", "final": true, "status": null}));
    for event in [AutoFinished, ManualFinished, Legacy, Resubmitted] {
        for b in &bodies {
            assert_eq!(
                kind_of(event, b),
                Err(QuarantineReason::UnsummarisableFinal),
                "{event} {b}"
            );
            assert_eq!(
                first(event, b, at(0)),
                Transition::Quarantine(QuarantineReason::UnsummarisableFinal),
                "never a final case with a PENDING decision"
            );
        }
    }
    // MANUAL_FINISHED needs no flag to be final.
    assert_eq!(
        kind_of(ManualFinished, &body(None, "REVIEWING")),
        Err(QuarantineReason::UnsummarisableFinal)
    );
}

#[test]
fn lifecycle_statuses_are_notices_whatever_the_header_claims() {
    for overall in LIFECYCLE_STATUSES {
        for event in [AutoFinished, ManualFinished, Legacy, Resubmitted] {
            for flag in [Some(true), Some(false), None] {
                assert_eq!(
                    kind_of(event, &body(flag, overall)),
                    Ok(Kind::Lifecycle),
                    "{event} {overall} {flag:?}"
                );
            }
        }
    }
}

#[test]
fn a_decision_other_than_pending_always_comes_with_final() {
    let bodies = [
        body(Some(true), "APPROVED"),
        body(Some(false), "APPROVED"),
        body(None, "APPROVED"),
        body(Some(false), "EXPIRED"),
        body(None, "EXPIRED-DELETED"),
        body(Some(true), "DELETED"),
        body(None, "REVIEWING"),
        json!({"scanRef": "s"}),
    ];
    for event in EventType::ALL {
        for b in &bodies {
            if let Transition::Applied { case, .. } = first(event, b, at(0)) {
                assert!(
                    case.decision == Decision::Pending || case.is_final,
                    "{event} {b} gave {:?} without final",
                    case.decision
                );
            }
        }
    }
}

// ---- apply: first delivery ----

#[test]
fn first_delivery_applies_with_revision_one_unless_quarantined() {
    for event in EventType::ALL {
        for b in [body(Some(false), "REVIEWING"), body(Some(true), "DENIED")] {
            let t = first(event, &b, at(0));
            if event == ManualFinished && b["final"] == json!(false) {
                assert!(matches!(t, Transition::Quarantine(_)), "{event} {b}");
                continue;
            }
            let (case, _) = created(event, &b);
            assert_eq!(case.revision, 1);
            assert_eq!(case.last_event_type, event.as_str());
            assert_eq!((case.created_at, case.updated_at), (at(0), at(0)));
        }
    }
}

#[test]
fn first_delivery_seen_before_is_a_duplicate_even_without_a_case() {
    // The earlier copy waits in the quarantine: a replay under another header must not
    // create the case it could not create itself.
    let b = body(Some(false), "APPROVED");
    for event in EventType::ALL {
        assert_eq!(
            apply(None, event, &payload(&b), true, at(0)),
            Transition::Duplicate {
                delivery_final: final_of(event, &b)
            },
            "{event}"
        );
    }
}

#[test]
fn first_delivery_fills_the_case_from_the_body() {
    let b = json!({
        "scanRef": "scan-1",
        "clientId": "client-1",
        "externalRef": "ext-1",
        "final": true,
        "status": {
            "overall": "SUSPECTED",
            "autoDocument": "DOC_VALIDATED",
            "autoFace": "FACE_MATCH",
            "manualDocument": "DOC_INFO_MISMATCH",
            "manualFace": "FACE_UNCERTAIN",
            "fraudTags": ["DUPLICATE_FACE"],
            "mismatchTags": ["NAME", "SURNAME"],
            "suspicionReasons": ["FACE_SUSPECTED"]
        },
        "data": {"docFirstName": "ANNA", "docNumber": "X1"}
    });
    let t = first(ManualFinished, &b, at(5));
    assert_eq!(
        t,
        Transition::Applied {
            case: Case {
                scan_ref: "scan-1".into(),
                client_id: "client-1".into(),
                external_ref: Some("ext-1".into()),
                decision: Decision::Suspected,
                is_final: true,
                overall_status: Some("SUSPECTED".into()),
                last_event_type: "IDENTIFICATION_MANUAL_FINISHED".into(),
                revision: 1,
                auto_document: Some("DOC_VALIDATED".into()),
                auto_face: Some("FACE_MATCH".into()),
                manual_document: Some("DOC_INFO_MISMATCH".into()),
                manual_face: Some("FACE_UNCERTAIN".into()),
                fraud_tags: vec!["DUPLICATE_FACE".into()],
                mismatch_tags: vec!["NAME".into(), "SURNAME".into()],
                suspicion_reasons: vec!["FACE_SUSPECTED".into()],
                created_at: at(5),
                updated_at: at(5),
                finalized_at: Some(at(5)),
                purged_at: None,
                person: Some(Person {
                    first_name: Some("ANNA".into()),
                    document_number: Some("X1".into()),
                    ..Person::default()
                }),
            },
            decisive_at: Some(at(5)),
            delivery_final: true,
            purges: false,
        }
    );
}

#[test]
fn first_preliminary_delivery_opens_a_pending_case() {
    let t = first(AutoFinished, &body(Some(false), "APPROVED"), at(0));
    let Transition::Applied {
        case,
        decisive_at,
        delivery_final,
        purges: false,
    } = t
    else {
        panic!("{t:?}")
    };
    assert!(!delivery_final);
    assert!(!case.is_final);
    assert_eq!(case.decision, Decision::Pending);
    assert_eq!(case.finalized_at, None);
    assert_eq!(case.overall_status.as_deref(), Some("APPROVED"));
    assert_eq!(decisive_at, None, "nothing decided or reopened yet");
}

#[test]
fn body_without_person_data_leaves_the_person_unknown() {
    let (case, _) = created(Cancelled, &json!({"scanRef": "s", "data": null}));
    assert_eq!(case.person, None);
    assert_eq!(case.client_id, "", "no clientId anywhere");
}

#[test]
fn lifecycle_notice_for_an_unknown_case_invents_no_decision() {
    for overall in LIFECYCLE_STATUSES {
        for event in [Legacy, ManualFinished, AutoFinished] {
            let (case, _) = created(event, &body(Some(true), overall));
            assert_eq!(
                (case.decision, case.is_final, case.finalized_at),
                (Decision::Pending, false, None),
                "{event} {overall}"
            );
            assert_eq!(case.overall_status.as_deref(), Some(overall));
            assert_eq!(case.person, None, "a notice adds no personal data");
            assert_eq!(case.auto_document, None, "nor any result");
            assert_eq!((case.revision, case.client_id.as_str()), (1, "client-1"));
        }
    }
}
