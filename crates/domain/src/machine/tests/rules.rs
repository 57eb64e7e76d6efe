//! The rules in arrival order: duplicates, stale results, the latest final, reopenings.

use super::*;

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
    let t = store.deliver_json(AutoFinished, &body(Some(false), "SUSPECTED"));
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
    let t = store.deliver_json(Resubmitted, &body(Some(false), "ACTIVE"));
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
        &json!({"scanRef": "s", "clientId": "client-2", "externalRef": "ext-2",
            "status": {"overall": "APPROVED"}}),
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
    for (event, overall) in [(Cancelled, "ACTIVE"), (Expired, "EXPIRED")] {
        let sparse = json!({"scanRef": "s", "data": null, "status": {"overall": overall}});
        let t = store.deliver_json(event, &sparse);
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

#[test]
fn missing_header_is_a_legacy_delivery_and_applies_as_such() {
    let event = EventType::from_header(None).unwrap();
    let t = apply(None, event, &Payload::parse(LEGACY).unwrap(), false, at(0));
    let Transition::Applied { case, .. } = t else {
        panic!("{t:?}")
    };
    assert_eq!(case.last_event_type, "IDENTIFICATION");
    assert!(case.is_final);
    assert_eq!(case.decision, Decision::Approved);
    assert_eq!(case.scan_ref, "scan-ref");
    assert_eq!(case.client_id, "123");
}
