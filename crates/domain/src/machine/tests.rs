use std::collections::HashSet;

use chrono::TimeZone;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::*;
use crate::Person;

mod props;

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

/// Decision of a delivery as `apply` would compute it.
fn decision_of(event: EventType, body: &Value) -> Decision {
    let p = payload(body);
    decision(event, &p, is_final(event, &p))
}

/// A minimal store: remembers (event type, body hash) of every delivery, like the real one.
#[derive(Debug, Default)]
struct Store {
    case: Option<Case>,
    seen: HashSet<(EventType, Vec<u8>)>,
    clock: i64,
}

impl Store {
    fn deliver(&mut self, event: EventType, body: &[u8]) -> Transition {
        let payload = Payload::parse(body).unwrap();
        let already_stored = !self.seen.insert((event, Sha256::digest(body).to_vec()));
        self.clock += 1;
        let t = apply(
            self.case.as_ref(),
            event,
            &payload,
            already_stored,
            at(self.clock),
        );
        self.case = Some(t.case.clone());
        t
    }

    fn deliver_json(&mut self, event: EventType, body: &Value) -> Transition {
        self.deliver(event, &serde_json::to_vec(body).unwrap())
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
    assert_eq!(decision(legacy_event, &legacy, true), Decision::Approved);

    let newer = Payload::parse(GO_IDENFY).unwrap();
    assert!(!is_final(AutoFinished, &newer), "final: false");
    assert_eq!(decision(AutoFinished, &newer, false), Decision::Pending);
    assert!(is_final(ManualFinished, &newer));
    assert_eq!(decision(ManualFinished, &newer, true), Decision::Approved);
}

// ---- decision ----

#[test]
fn final_overall_status_maps_to_our_decision() {
    let table = [
        ("APPROVED", Decision::Approved),
        ("DENIED", Decision::Denied),
        ("SUSPECTED", Decision::Suspected),
        ("EXPIRED", Decision::Expired),
        ("EXPIRED-DELETED", Decision::Expired),
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
    for overall in ["APPROVED", "DENIED", "EXPIRED", "ACTIVE", ""] {
        for header in ["IDENTIFICATION_CANCELLED", "IDENTIFICATION_CANCELED"] {
            let event = EventType::from_header(Some(header)).unwrap();
            assert_eq!(
                decision_of(event, &body(Some(false), overall)),
                Decision::Cancelled,
                "{header} {overall}"
            );
        }
    }
}

#[test]
fn expired_event_decides_expired_whatever_the_status() {
    for overall in ["APPROVED", "ACTIVE", "DENIED", ""] {
        assert_eq!(
            decision_of(Expired, &body(Some(false), overall)),
            Decision::Expired,
            "{overall}"
        );
    }
    assert_eq!(
        decision_of(Expired, &json!({"scanRef": "s"})),
        Decision::Expired
    );
}

#[test]
fn preliminary_result_is_pending_whatever_the_status() {
    for overall in ["APPROVED", "DENIED", "SUSPECTED", "REVIEWING", "EXPIRED"] {
        assert_eq!(
            decision_of(AutoFinished, &body(Some(false), overall)),
            Decision::Pending,
            "{overall}"
        );
        assert_eq!(
            decision_of(Resubmitted, &body(Some(false), overall)),
            Decision::Pending,
            "{overall}"
        );
    }
}

#[test]
fn final_result_with_a_status_we_cannot_summarise_is_pending_but_final() {
    for overall in ["REVIEWING", "DELETED", "SOMETHING_NEW", "approved"] {
        let b = body(Some(true), overall);
        let t = apply(None, ManualFinished, &payload(&b), false, at(0));
        assert!(t.case.is_final);
        assert_eq!(t.case.decision, Decision::Pending, "{overall}");
        assert_eq!(t.case.overall_status.as_deref(), Some(overall));
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
        body(None, "REVIEWING"),
        json!({"scanRef": "s"}),
    ];
    for event in EventType::ALL {
        for b in &bodies {
            let t = apply(None, event, &payload(b), false, at(0));
            assert!(
                t.case.decision == Decision::Pending || t.case.is_final,
                "{event} {b} gave {:?} without final",
                t.case.decision
            );
        }
    }
}

// ---- apply: first delivery ----

#[test]
fn first_delivery_is_always_applied_with_revision_one() {
    for event in EventType::ALL {
        for b in [body(Some(false), "REVIEWING"), body(Some(true), "DENIED")] {
            for already_stored in [false, true] {
                let t = apply(None, event, &payload(&b), already_stored, at(0));
                assert_eq!(t.outcome, Outcome::Applied, "{event} {b}");
                assert_eq!(t.case.revision, 1);
                assert_eq!(t.case.last_event_type, event.as_str());
            }
        }
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
    let t = apply(None, ManualFinished, &payload(&b), false, at(5));
    assert!(t.delivery_final);
    assert_eq!(
        t.case,
        Case {
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
            person: Some(Person {
                first_name: Some("ANNA".into()),
                document_number: Some("X1".into()),
                ..Person::default()
            }),
        }
    );
}

#[test]
fn first_preliminary_delivery_opens_a_pending_case() {
    let t = apply(
        None,
        AutoFinished,
        &payload(&body(Some(false), "APPROVED")),
        false,
        at(0),
    );
    assert!(!t.delivery_final);
    assert!(!t.case.is_final);
    assert_eq!(t.case.decision, Decision::Pending);
    assert_eq!(t.case.finalized_at, None);
    assert_eq!(t.case.overall_status.as_deref(), Some("APPROVED"));
}

#[test]
fn body_without_person_data_leaves_the_person_unknown() {
    let t = apply(
        None,
        Cancelled,
        &payload(&json!({"scanRef": "s", "data": null})),
        false,
        at(0),
    );
    assert_eq!(t.case.person, None);
    assert_eq!(t.case.client_id, "", "no clientId anywhere");
}

// ---- apply: the rules in arrival order ----

#[test]
fn duplicate_never_changes_the_case_or_its_revision() {
    let mut store = Store::default();
    let prelim = body(Some(false), "REVIEWING");
    let manual = body(Some(true), "APPROVED");
    store.deliver_json(AutoFinished, &prelim);

    let before = store.case().clone();
    let t = store.deliver_json(AutoFinished, &prelim);
    assert_eq!(t.outcome, Outcome::Duplicate);
    assert_eq!(t.case, before, "not even updated_at moves");

    store.deliver_json(ManualFinished, &manual);
    let before = store.case().clone();
    for event in [ManualFinished, AutoFinished] {
        let b = if event == ManualFinished {
            &manual
        } else {
            &prelim
        };
        let t = store.deliver_json(event, b);
        assert_eq!(t.outcome, Outcome::Duplicate, "{event}");
        assert_eq!(t.case, before);
    }
    assert_eq!(store.case().revision, 2);
}

#[test]
fn duplicate_resubmission_does_not_reopen_again() {
    let mut store = Store::default();
    let resubmitted = body(Some(false), "REVIEWING");
    store.deliver_json(ManualFinished, &body(Some(true), "DENIED"));
    store.deliver_json(Resubmitted, &resubmitted);
    store.deliver_json(ManualFinished, &body(Some(true), "APPROVED"));
    let t = store.deliver_json(Resubmitted, &resubmitted);
    assert_eq!(t.outcome, Outcome::Duplicate);
    assert!(t.case.is_final);
    assert_eq!(t.case.decision, Decision::Approved);
    assert_eq!(t.case.revision, 3);
}

#[test]
fn same_body_under_another_event_type_is_not_a_duplicate() {
    let mut store = Store::default();
    let b = body(Some(false), "REVIEWING");
    store.deliver_json(AutoFinished, &b);
    let t = store.deliver_json(ManualFinished, &b);
    assert_eq!(t.outcome, Outcome::Applied);
    assert_eq!(t.case.revision, 2);
    assert!(t.case.is_final);
}

#[test]
fn late_preliminary_result_does_not_override_final() {
    let mut store = Store::default();
    store.deliver_json(ManualFinished, &body(Some(true), "DENIED"));
    let before = store.case().clone();

    let t = store.deliver_json(AutoFinished, &body(Some(false), "APPROVED"));
    assert_eq!(t.outcome, Outcome::Stale);
    assert!(!t.delivery_final);
    assert_eq!(t.case, before);
    assert_eq!(t.case.revision, 1);
    assert_eq!(t.case.decision, Decision::Denied);
}

#[test]
fn late_legacy_undecided_result_is_stale_after_final() {
    let mut store = Store::default();
    store.deliver_json(AutoFinished, &body(Some(true), "APPROVED"));
    let before = store.case().clone();
    let t = store.deliver_json(Legacy, &body(None, "REVIEWING"));
    assert_eq!(t.outcome, Outcome::Stale);
    assert_eq!(t.case, before);
}

#[test]
fn preliminary_results_apply_while_the_case_is_open() {
    let mut store = Store::default();
    store.deliver_json(AutoFinished, &body(Some(false), "REVIEWING"));
    let t = store.deliver_json(AutoFinished, &body(Some(false), "SUSPECTED"));
    assert_eq!(t.outcome, Outcome::Applied);
    assert_eq!(t.case.revision, 2);
    assert_eq!(t.case.overall_status.as_deref(), Some("SUSPECTED"));
    assert_eq!(t.case.decision, Decision::Pending);
    assert_eq!(t.case.updated_at, at(2));
    assert_eq!(t.case.created_at, at(1));
}

#[test]
fn latest_final_wins() {
    let mut store = Store::default();
    store.deliver_json(AutoFinished, &body(Some(true), "APPROVED"));
    let t = store.deliver_json(ManualFinished, &body(Some(true), "DENIED"));
    assert_eq!(t.outcome, Outcome::Applied);
    assert_eq!(t.case.decision, Decision::Denied);
    assert_eq!(t.case.revision, 2);

    // A final result arriving after another final one still applies, whatever its type.
    let t = store.deliver_json(AutoFinished, &body(Some(true), "SUSPECTED"));
    assert_eq!(t.outcome, Outcome::Applied);
    assert_eq!(t.case.decision, Decision::Suspected);
    assert_eq!(t.case.last_event_type, "IDENTIFICATION_AUTO_FINISHED");

    let t = store.deliver_json(Cancelled, &json!({"scanRef": "s"}));
    assert_eq!(t.case.decision, Decision::Cancelled);
    assert_eq!(t.case.revision, 4);
    assert!(t.case.is_final);
}

#[test]
fn final_after_final_keeps_the_time_the_case_became_final() {
    let mut store = Store::default();
    store.deliver_json(AutoFinished, &body(Some(true), "APPROVED"));
    let t = store.deliver_json(ManualFinished, &body(Some(true), "DENIED"));
    assert_eq!(t.case.finalized_at, Some(at(1)));
    assert_eq!(t.case.updated_at, at(2));
}

#[test]
fn final_after_preliminary_sets_finalized_at() {
    let mut store = Store::default();
    store.deliver_json(AutoFinished, &body(Some(false), "REVIEWING"));
    assert_eq!(store.case().finalized_at, None);
    let t = store.deliver_json(ManualFinished, &body(Some(true), "APPROVED"));
    assert_eq!(t.case.finalized_at, Some(at(2)));
    assert_eq!(t.case.decision, Decision::Approved);
}

#[test]
fn resubmitted_after_final_reopens_the_case() {
    let mut store = Store::default();
    store.deliver_json(ManualFinished, &body(Some(true), "DENIED"));
    let t = store.deliver_json(Resubmitted, &body(Some(false), "DENIED"));
    assert_eq!(t.outcome, Outcome::Applied);
    assert!(!t.delivery_final);
    assert!(!t.case.is_final);
    assert_eq!(t.case.decision, Decision::Pending);
    assert_eq!(t.case.finalized_at, None);
    assert_eq!(t.case.revision, 2);
    assert_eq!(t.case.last_event_type, "IDENTIFICATION_RESUBMITTED");
    assert_eq!(t.case.created_at, at(1));
}

#[test]
fn reopened_case_takes_preliminary_results_and_a_new_final_decision() {
    let mut store = Store::default();
    store.deliver_json(ManualFinished, &body(Some(true), "DENIED"));
    store.deliver_json(Resubmitted, &body(Some(false), "REVIEWING"));
    let t = store.deliver_json(AutoFinished, &body(Some(false), "REVIEWING"));
    assert_eq!(t.outcome, Outcome::Applied, "open again, so not stale");
    let t = store.deliver_json(ManualFinished, &body(Some(true), "APPROVED"));
    assert_eq!(t.case.decision, Decision::Approved);
    assert_eq!(t.case.finalized_at, Some(at(4)), "the new round's time");
    assert_eq!(t.case.revision, 4);
}

#[test]
fn resubmission_marked_final_decides_at_once() {
    let mut store = Store::default();
    store.deliver_json(ManualFinished, &body(Some(true), "DENIED"));
    let t = store.deliver_json(Resubmitted, &body(Some(true), "APPROVED"));
    assert_eq!(t.outcome, Outcome::Applied);
    assert!(t.case.is_final);
    assert_eq!(t.case.decision, Decision::Approved);
}

#[test]
fn resubmission_carrying_an_expired_status_still_reopens_as_pending() {
    let mut store = Store::default();
    store.deliver_json(Legacy, &body(None, "EXPIRED"));
    assert_eq!(store.case().decision, Decision::Expired);
    let t = store.deliver_json(Resubmitted, &body(Some(false), "EXPIRED"));
    assert!(!t.case.is_final);
    assert_eq!(t.case.decision, Decision::Pending);
}

#[test]
fn resubmitted_applies_while_the_case_is_open() {
    let mut store = Store::default();
    store.deliver_json(AutoFinished, &body(Some(false), "REVIEWING"));
    let t = store.deliver_json(Resubmitted, &body(Some(false), "REVIEWING"));
    assert_eq!(t.outcome, Outcome::Applied);
    assert_eq!(t.case.revision, 2);
}

#[test]
fn stale_and_duplicate_deliveries_report_their_own_finality() {
    let mut store = Store::default();
    let manual = body(Some(true), "APPROVED");
    store.deliver_json(ManualFinished, &manual);
    assert!(store.deliver_json(ManualFinished, &manual).delivery_final);
    assert!(
        !store
            .deliver_json(AutoFinished, &body(Some(false), "REVIEWING"))
            .delivery_final
    );
}

#[test]
fn client_and_external_refs_are_kept_when_a_later_body_lacks_them() {
    let mut store = Store::default();
    let mut first = body(Some(false), "REVIEWING");
    first["externalRef"] = json!("ext-1");
    store.deliver_json(AutoFinished, &first);
    let t = store.deliver_json(Cancelled, &json!({"scanRef": "s"}));
    assert_eq!(t.case.client_id, "client-1");
    assert_eq!(t.case.external_ref.as_deref(), Some("ext-1"));

    let t = store.deliver_json(
        ManualFinished,
        &json!({"scanRef": "s", "clientId": "client-2", "externalRef": "ext-2"}),
    );
    assert_eq!(t.case.client_id, "client-2");
    assert_eq!(t.case.external_ref.as_deref(), Some("ext-2"));
}

#[test]
fn sparse_final_body_keeps_the_person_we_knew() {
    let mut store = Store::default();
    store.deliver_json(AutoFinished, &body(Some(false), "REVIEWING"));
    let known = store.case().person.clone();
    assert!(known.is_some());
    for event in [Cancelled, Expired] {
        let t = store.deliver_json(event, &json!({"scanRef": "s", "data": null}));
        assert_eq!(t.outcome, Outcome::Applied);
        assert_eq!(t.case.person, known, "{event}");
    }
}

#[test]
fn body_that_names_the_person_replaces_it_whole() {
    // The reviewer blanked the last name the automatic check had misread.
    let mut store = Store::default();
    store.deliver_json(AutoFinished, &body(Some(false), "REVIEWING"));
    let mut manual = body(Some(true), "APPROVED");
    manual["data"] = json!({"docFirstName": "ANNA", "docLastName": null});
    let t = store.deliver_json(ManualFinished, &manual);
    assert_eq!(
        t.case.person,
        Some(Person {
            first_name: Some("ANNA".into()),
            ..Person::default()
        })
    );
}

#[test]
fn applied_delivery_takes_the_status_fields_of_its_body() {
    let mut store = Store::default();
    let mut prelim = body(Some(false), "REVIEWING");
    prelim["status"]["fraudTags"] = json!(["DUPLICATE_FACE"]);
    store.deliver_json(AutoFinished, &prelim);
    let t = store.deliver_json(
        ManualFinished,
        &json!({"scanRef": "s", "status": {"overall": "APPROVED", "manualFace": "FACE_MATCH"}}),
    );
    assert_eq!(t.case.overall_status.as_deref(), Some("APPROVED"));
    assert_eq!(t.case.manual_face.as_deref(), Some("FACE_MATCH"));
    assert_eq!(t.case.auto_document, None);
    assert!(t.case.fraud_tags.is_empty());
}

#[test]
fn missing_header_is_a_legacy_delivery_and_applies_as_such() {
    let event = EventType::from_header(None).unwrap();
    let t = apply(None, event, &Payload::parse(LEGACY).unwrap(), false, at(0));
    assert_eq!(t.case.last_event_type, "IDENTIFICATION");
    assert!(t.case.is_final);
    assert_eq!(t.case.decision, Decision::Approved);
    assert_eq!(t.case.scan_ref, "scan-ref");
    assert_eq!(t.case.client_id, "123");
}

#[test]
fn real_round_of_preliminary_then_manual_result() {
    let mut manual: Value = serde_json::from_slice(GO_IDENFY).unwrap();
    manual["final"] = json!(true);
    let mut store = Store::default();
    let t = store.deliver(AutoFinished, GO_IDENFY);
    assert_eq!(
        (t.outcome, t.case.decision),
        (Outcome::Applied, Decision::Pending)
    );
    let t = store.deliver_json(ManualFinished, &manual);
    assert_eq!(t.case.decision, Decision::Approved);
    assert_eq!(t.case.revision, 2);
    let t = store.deliver(AutoFinished, GO_IDENFY);
    assert_eq!(t.outcome, Outcome::Duplicate);
    let mut late = manual.clone();
    late["final"] = json!(false);
    late["status"]["overall"] = json!("REVIEWING");
    let t = store.deliver_json(AutoFinished, &late);
    assert_eq!(t.outcome, Outcome::Stale);
    assert_eq!(t.case.revision, 2);
}
