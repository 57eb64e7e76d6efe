//! iDenfy's answers to reconciliation lookups (event type RECONCILED): what their status says,
//! through the same rules as a webhook.

use super::*;

/// A status answer about case "s", as `POST /api/v2/status` returns it.
fn answer(status: &str) -> Value {
    json!({
        "status": status,
        "autoDocument": "DOC_VALIDATED",
        "autoFace": "FACE_MATCH",
        "manualDocument": "DOC_VALIDATED",
        "manualFace": "FACE_MATCH",
        "fraudTags": [],
        "mismatchTags": [],
        "scanRef": "s",
        "clientId": "client-1"
    })
}

/// A store holding a case that a preliminary webhook left open.
fn pending() -> Store {
    let mut store = Store::default();
    store.deliver_json(AutoFinished, &body(Some(false), "REVIEWING"));
    store
}

#[test]
fn a_final_status_is_a_final_result_with_its_decision() {
    let table = [
        ("APPROVED", Decision::Approved),
        ("DENIED", Decision::Denied),
        ("SUSPECTED", Decision::Suspected),
        ("EXPIRED", Decision::Expired),
    ];
    for (status, decision) in table {
        let mut store = pending();
        let t = store.deliver_json(EventType::Reconciled, &answer(status));
        assert_eq!(t.outcome, Outcome::Applied, "{status}");
        assert!(t.delivery_final, "{status}");
        assert_eq!(
            (t.case.decision, t.case.is_final, t.case.revision),
            (decision, true, 2),
            "{status}"
        );
        assert_eq!(t.case.last_event_type, "RECONCILED");
        assert_eq!(t.case.overall_status.as_deref(), Some(status));
        assert_eq!(t.case.manual_document.as_deref(), Some("DOC_VALIDATED"));
        assert_eq!(t.case.finalized_at, Some(t.case.updated_at));
    }
}

#[test]
fn an_answer_names_no_person_so_the_case_keeps_the_one_it_had() {
    let mut store = pending();
    let person = store.case().person.clone();
    assert!(person.is_some());
    let t = store.deliver_json(EventType::Reconciled, &answer("APPROVED"));
    assert_eq!(t.case.person, person);
}

#[test]
fn a_status_still_open_changes_nothing_and_bumps_no_revision() {
    for status in ["REVIEWING", "ACTIVE", "SOMETHING_NEW", ""] {
        let mut store = pending();
        let before = store.case().clone();
        let t = store.deliver_json(EventType::Reconciled, &answer(status));
        assert_eq!(t.outcome, Outcome::Stale, "{status:?}");
        assert!(!t.delivery_final);
        assert_eq!(t.case, before, "{status:?}: not even updated_at moves");
    }
}

#[test]
fn an_answer_without_a_status_changes_nothing() {
    let mut store = pending();
    let before = store.case().clone();
    let t = store.deliver_json(EventType::Reconciled, &json!({"scanRef": "s"}));
    assert_eq!(t.outcome, Outcome::Stale);
    assert_eq!(t.case, before);
}

#[test]
fn the_same_answer_twice_is_a_duplicate() {
    let mut store = pending();
    store.deliver_json(EventType::Reconciled, &answer("REVIEWING"));
    let t = store.deliver_json(EventType::Reconciled, &answer("REVIEWING"));
    assert_eq!(t.outcome, Outcome::Duplicate);
    store.deliver_json(EventType::Reconciled, &answer("APPROVED"));
    let t = store.deliver_json(EventType::Reconciled, &answer("APPROVED"));
    assert_eq!(t.outcome, Outcome::Duplicate);
    assert_eq!(t.case.revision, 2);
}

#[test]
fn a_lifecycle_status_keeps_the_decision() {
    for status in LIFECYCLE_STATUSES {
        let mut store = Store::default();
        store.deliver_json(ManualFinished, &body(Some(true), "APPROVED"));
        let t = store.deliver_json(EventType::Reconciled, &answer(status));
        assert_eq!(t.outcome, Outcome::Applied, "{status}");
        assert_eq!(
            (t.case.decision, t.case.is_final),
            (Decision::Approved, true),
            "{status}"
        );
        assert_eq!(t.case.overall_status.as_deref(), Some(status));
    }
}

#[test]
fn an_answer_about_a_case_never_seen_creates_it_as_its_status_says() {
    let t = Store::default().deliver_json(EventType::Reconciled, &answer("REVIEWING"));
    assert_eq!(t.outcome, Outcome::Applied);
    assert_eq!(
        (t.case.decision, t.case.is_final, t.delivery_final),
        (Decision::Pending, false, false)
    );
    assert_eq!(
        (t.case.client_id.as_str(), t.case.revision),
        ("client-1", 1)
    );
    let t = Store::default().deliver_json(EventType::Reconciled, &answer("DENIED"));
    assert_eq!((t.case.decision, t.case.is_final), (Decision::Denied, true));
}

#[test]
fn a_webhook_after_a_reconciled_final_still_follows_the_rules() {
    // The reconciler caught a decision the webhook of which was lost; the webhook, resent
    // later, is a final result like any other (the latest final wins), and a late preliminary
    // result stays stale.
    let mut store = pending();
    store.deliver_json(EventType::Reconciled, &answer("APPROVED"));
    let late = store.deliver_json(AutoFinished, &body(Some(false), "APPROVED"));
    assert_eq!(late.outcome, Outcome::Stale);
    let manual = store.deliver_json(ManualFinished, &body(Some(true), "DENIED"));
    assert_eq!(manual.outcome, Outcome::Applied);
    assert_eq!(manual.case.decision, Decision::Denied);
}

#[test]
fn an_answer_is_never_quarantined() {
    for status in ["APPROVED", "REVIEWING", "DELETED", "", "EXPIRED-DELETED"] {
        assert!(
            kind_of(
                EventType::Reconciled,
                &json!({"scanRef": "s", "status": {"overall": status}})
            )
            .is_ok()
        );
        let payload = crate::StatusAnswer::parse(
            bytes::Bytes::from(serde_json::to_vec(&answer(status)).unwrap()),
            &crate::ScanRef::new("s").unwrap(),
        )
        .unwrap();
        assert!(
            classify(EventType::Reconciled, payload.payload()).is_ok(),
            "{status}"
        );
    }
}
