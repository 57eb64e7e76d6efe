//! What a signed body can and cannot be made to mean: forged headers, resends, contradictions,
//! lifecycle notices and deliveries recorded long after they arrived.

use super::*;

/// Every header that is not `event`.
fn other_headers(event: EventType) -> impl Iterator<Item = EventType> {
    EventType::WEBHOOK.into_iter().filter(move |e| *e != event)
}

/// The same body with freshly signed file links, as the dashboard's "Resend" sends it.
fn resent(body: &Value, links: &str) -> Value {
    let mut body = body.clone();
    body["fileUrls"] = json!({"FRONT": format!("https://s3.example/front.png?Signature={links}")});
    body
}

#[test]
fn stored_bytes_replayed_under_any_other_header_are_duplicates() {
    // A preliminary APPROVED must not become a final approval, end the case or reopen it.
    let stored = [
        (AutoFinished, body(Some(false), "APPROVED")),
        (ManualFinished, body(Some(true), "APPROVED")),
        (Resubmitted, body(Some(false), "REVIEWING")),
        (
            Cancelled,
            json!({"scanRef": "s", "status": {"overall": "ACTIVE"}}),
        ),
    ];
    for (event, b) in stored {
        let mut store = Store::default();
        store.deliver_json(event, &b);
        let before = store.case().clone();
        for forged in other_headers(event) {
            let t = store.deliver_json(forged, &b);
            assert_eq!(
                t.outcome,
                Outcome::Duplicate,
                "{event} replayed as {forged}"
            );
            assert_eq!(t.case, before, "{event} replayed as {forged}");
        }
    }
}

#[test]
fn bytes_waiting_in_the_quarantine_are_duplicates_under_another_header() {
    // A MANUAL_FINISHED body saying final: false was quarantined; replayed as CANCELLED it
    // must not end the case, and as AUTO_FINISHED it must not create one.
    let mut store = Store::default();
    let contradicting = serde_json::to_vec(&body(Some(false), "APPROVED")).unwrap();
    let t = store.judge(ManualFinished, &contradicting, at(1), None);
    assert_eq!(
        t,
        Transition::Quarantine(QuarantineReason::HeaderBodyMismatch(ManualFinished))
    );
    for (second, forged) in [(2, Cancelled), (3, AutoFinished)] {
        let t = store.judge(forged, &contradicting, at(second), None);
        assert!(matches!(t, Transition::Duplicate { .. }), "{forged}: {t:?}");
        assert!(store.case.is_none(), "{forged} created a case");
    }
}

#[test]
fn resend_of_an_old_resubmission_with_new_file_links_does_not_reopen() {
    let mut store = Store::default();
    let resubmission = body(Some(false), "REVIEWING");
    store.deliver_json(ManualFinished, &body(Some(true), "DENIED"));
    store.deliver_json(Resubmitted, &resubmission);
    store.deliver_json(ManualFinished, &body(Some(true), "APPROVED"));
    let before = store.case().clone();

    let t = store.deliver_json(Resubmitted, &resent(&resubmission, "fresh"));
    assert_eq!(t.outcome, Outcome::Duplicate);
    assert_eq!(t.case, before);
    assert_eq!(
        (t.case.decision, t.case.is_final),
        (Decision::Approved, true)
    );
}

#[test]
fn resend_of_an_old_final_with_new_file_links_does_not_flip_the_newer_final() {
    let mut store = Store::default();
    let first_round = resent(&body(Some(true), "DENIED"), "round-1");
    store.deliver_json(ManualFinished, &first_round);
    store.deliver_json(Resubmitted, &body(Some(false), "REVIEWING"));
    store.deliver_json(ManualFinished, &body(Some(true), "APPROVED"));

    let t = store.deliver_json(ManualFinished, &resent(&first_round, "round-1-resent"));
    assert_eq!(t.outcome, Outcome::Duplicate);
    assert_eq!(t.case.decision, Decision::Approved);
}

#[test]
fn same_content_under_another_header_with_new_links_is_judged_on_its_own() {
    // Rule 1b needs the same event type: new bytes under another header are a new delivery,
    // and what they may do is decided by the body (here: a preliminary result stays one).
    let mut store = Store::default();
    let prelim = body(Some(false), "APPROVED");
    store.deliver_json(AutoFinished, &prelim);
    let t = store.deliver_json(Legacy, &resent(&prelim, "other"));
    assert_eq!(t.outcome, Outcome::Applied);
    assert_eq!(
        (t.case.decision, t.case.is_final),
        (Decision::Pending, false)
    );
}

#[test]
fn contradicting_or_unsummarisable_deliveries_leave_the_case_alone() {
    let mut store = Store::default();
    store.deliver_json(AutoFinished, &body(Some(false), "APPROVED"));
    let before = store.case().clone();
    let contradicting = body(Some(false), "DENIED");
    let unsummarisable = body(Some(true), "REVIEWING");
    for (second, event, b, reason) in [
        (
            10,
            ManualFinished,
            &contradicting,
            QuarantineReason::HeaderBodyMismatch(ManualFinished),
        ),
        (
            11,
            AutoFinished,
            &unsummarisable,
            QuarantineReason::UnsummarisableFinal,
        ),
    ] {
        let t = store.judge(event, &serde_json::to_vec(b).unwrap(), at(second), None);
        assert_eq!(t, Transition::Quarantine(reason));
        assert_eq!(store.case(), &before);
    }
}

#[test]
fn lifecycle_notice_after_a_decision_keeps_it_and_forgets_the_person() {
    for overall in LIFECYCLE_STATUSES {
        let mut store = Store::default();
        let mut approved = body(Some(true), "APPROVED");
        approved["status"]["fraudTags"] = json!(["PHOTOCOPY"]);
        store.deliver_json(ManualFinished, &approved);
        let before = store.case().clone();
        assert!(before.person.is_some());

        // A deletion notice says little else: no data, no statuses.
        let notice = json!({"scanRef": "s", "final": true, "status": {"overall": overall}});
        let t = store.judge(Legacy, &serde_json::to_vec(&notice).unwrap(), at(2), None);
        let Transition::Applied {
            case, purges: true, ..
        } = t
        else {
            panic!("{overall}: {t:?}");
        };
        assert_eq!(
            case,
            Case {
                overall_status: Some(overall.to_owned()),
                last_event_type: "IDENTIFICATION".to_owned(),
                revision: 2,
                updated_at: at(2),
                person: None,
                ..before
            },
            "{overall}: the overall status, event type, revision and time change, the person goes"
        );
    }
}

#[test]
fn superseded_lifecycle_notice_still_purges_once() {
    let (mut store, parked) = with_delayed(
        &[
            (ManualFinished, body(Some(true), "APPROVED")),
            (Legacy, body(Some(true), "DELETED")),
            (AutoFinished, body(Some(false), "REVIEWING")),
            (ManualFinished, body(Some(true), "DENIED")),
        ],
        &[1],
    );
    let before = store.case().clone();
    assert!(before.person.is_some());
    let (entry, event, bytes) = &parked[0];
    let t = store.reprocess(*entry, *event, bytes);
    let Transition::Applied {
        case,
        decisive_at,
        purges: true,
        ..
    } = t
    else {
        panic!("{t:?}");
    };
    assert_eq!(
        case,
        Case {
            last_event_type: "IDENTIFICATION".to_owned(),
            revision: before.revision + 1,
            person: None,
            ..before.clone()
        },
        "the erasure applies; the newer decision and status stay"
    );
    assert_eq!(decisive_at, Some(at(4)), "a notice never decides");

    // Purged now: a second superseded notice has nothing to ask for.
    let again = serde_json::to_vec(&body(Some(true), "ARCHIVED")).unwrap();
    let t = store.judge(Legacy, &again, at(1), None);
    assert!(matches!(t, Transition::Stale { .. }), "{t:?}");
}

#[test]
fn a_purged_case_never_holds_a_person_again() {
    let mut store = Store::default();
    store.deliver_json(AutoFinished, &body(Some(false), "REVIEWING"));
    store.deliver_json(Legacy, &body(Some(true), "DELETED"));
    assert!(store.case().is_purged());
    for (event, b) in [
        (Resubmitted, body(Some(false), "ACTIVE")),
        (ManualFinished, body(Some(true), "APPROVED")),
    ] {
        let t = store.deliver_json(event, &b);
        assert_eq!(t.outcome, Outcome::Applied);
        assert_eq!(t.case.person, None, "{event}");
        assert!(t.case.is_purged(), "{event}: purged stays purged");
    }
    assert_eq!(store.case().decision, Decision::Approved);
}

#[test]
fn lifecycle_notice_keeps_an_open_case_open_and_a_reopening_still_works() {
    let mut store = Store::default();
    store.deliver_json(AutoFinished, &body(Some(false), "REVIEWING"));
    let t = store.deliver_json(ManualFinished, &body(Some(true), "ARCHIVED"));
    assert_eq!(
        (t.case.decision, t.case.is_final),
        (Decision::Pending, false)
    );
    let t = store.deliver_json(ManualFinished, &body(Some(true), "DENIED"));
    assert_eq!((t.case.decision, t.case.is_final), (Decision::Denied, true));
}

// ---- deliveries recorded late, with their original arrival time ----

/// A store holding `deliveries` recorded at seconds 1, 2, ... except those at `delayed`
/// positions, which were parked in the quarantine when they arrived.
fn with_delayed(
    deliveries: &[(EventType, Value)],
    delayed: &[usize],
) -> (Store, Vec<(usize, EventType, Vec<u8>)>) {
    let mut store = Store::default();
    let mut parked = Vec::new();
    for (i, (event, b)) in deliveries.iter().enumerate() {
        let bytes = serde_json::to_vec(b).unwrap();
        let arrival = at(i as i64 + 1);
        if delayed.contains(&i) {
            parked.push((store.park(*event, &bytes, arrival), *event, bytes));
        } else {
            store.judge(*event, &bytes, arrival, None);
        }
    }
    (store, parked)
}

#[test]
fn delayed_final_never_overrides_a_final_that_arrived_after_it() {
    let (mut store, parked) = with_delayed(
        &[
            (ManualFinished, body(Some(true), "APPROVED")),
            (ManualFinished, body(Some(true), "DENIED")),
        ],
        &[0],
    );
    let before = store.case().clone();
    let (entry, event, bytes) = &parked[0];
    let t = store.reprocess(*entry, *event, bytes);
    assert_eq!(
        t,
        Transition::Stale {
            delivery_final: true
        }
    );
    assert_eq!(store.case(), &before);
    assert_eq!(store.case().decision, Decision::Denied);
}

#[test]
fn delayed_resubmission_older_than_the_final_does_not_reopen() {
    let (mut store, parked) = with_delayed(
        &[
            (ManualFinished, body(Some(true), "DENIED")),
            (Resubmitted, body(Some(false), "REVIEWING")),
            (ManualFinished, body(Some(true), "APPROVED")),
        ],
        &[1],
    );
    let (entry, event, bytes) = &parked[0];
    assert!(matches!(
        store.reprocess(*entry, *event, bytes),
        Transition::Stale { .. }
    ));
    assert_eq!(
        (store.case().decision, store.case().is_final),
        (Decision::Approved, true)
    );
}

#[test]
fn delayed_final_older_than_a_reopening_does_not_close_the_case_again() {
    let (mut store, parked) = with_delayed(
        &[
            (ManualFinished, body(Some(true), "DENIED")),
            (Resubmitted, body(Some(false), "REVIEWING")),
        ],
        &[0],
    );
    let (entry, event, bytes) = &parked[0];
    assert!(matches!(
        store.reprocess(*entry, *event, bytes),
        Transition::Stale { .. }
    ));
    assert!(!store.case().is_final);
}

#[test]
fn delayed_final_decides_over_later_preliminary_results_without_moving_time_back() {
    let (mut store, parked) = with_delayed(
        &[
            (AutoFinished, body(Some(false), "REVIEWING")),
            (ManualFinished, body(Some(true), "APPROVED")),
            (AutoFinished, body(Some(false), "SUSPECTED")),
        ],
        &[1],
    );
    assert_eq!(store.case().updated_at, at(3));
    let (entry, event, bytes) = &parked[0];
    let t = store.reprocess(*entry, *event, bytes);
    let Transition::Applied {
        case, decisive_at, ..
    } = t
    else {
        panic!("{t:?}")
    };
    assert_eq!((case.decision, case.is_final), (Decision::Approved, true));
    assert_eq!(case.finalized_at, Some(at(2)), "final as of its arrival");
    assert_eq!(case.updated_at, at(3), "updated_at never goes backwards");
    assert_eq!(decisive_at, Some(at(2)));
    assert_eq!(case.revision, 3);
}

#[test]
fn delayed_preliminary_result_older_than_the_latest_change_is_stale() {
    let (mut store, parked) = with_delayed(
        &[
            (AutoFinished, body(Some(false), "REVIEWING")),
            (AutoFinished, body(Some(false), "SUSPECTED")),
        ],
        &[0],
    );
    let (entry, event, bytes) = &parked[0];
    assert!(matches!(
        store.reprocess(*entry, *event, bytes),
        Transition::Stale { .. }
    ));
    assert_eq!(store.case().overall_status.as_deref(), Some("SUSPECTED"));
}

#[test]
fn delayed_delivery_older_than_the_case_moves_created_at_back() {
    let (mut store, parked) = with_delayed(
        &[
            (ManualFinished, body(Some(true), "APPROVED")),
            (AutoFinished, body(Some(false), "REVIEWING")),
        ],
        &[0],
    );
    assert_eq!(store.case().created_at, at(2));
    let (entry, event, bytes) = &parked[0];
    let t = store.reprocess(*entry, *event, bytes);
    assert!(matches!(t, Transition::Applied { .. }), "{t:?}");
    let case = store.case();
    assert_eq!((case.created_at, case.updated_at), (at(1), at(2)));
    assert_eq!((case.decision, case.is_final), (Decision::Approved, true));
}

#[test]
fn resend_of_a_parked_final_is_a_duplicate_and_cannot_flip_a_newer_final() {
    // The round-1 final waits in the quarantine; the newer final applies; then the dashboard
    // resends round 1 with fresh links. Rule 1b must see the parked original.
    let round_1 = resent(&body(Some(true), "DENIED"), "original");
    let (store, _) = with_delayed(
        &[
            (ManualFinished, round_1.clone()),
            (ManualFinished, body(Some(true), "APPROVED")),
            (ManualFinished, resent(&round_1, "fresh")),
        ],
        &[0],
    );
    assert_eq!(store.case().decision, Decision::Approved);
    assert_eq!(store.case().revision, 1, "the resend was a duplicate");
}

#[test]
fn reprocessed_original_is_not_a_duplicate_of_a_copy_that_arrived_after_it() {
    let decided = body(Some(true), "APPROVED");
    let (mut store, parked) = with_delayed(
        &[
            (AutoFinished, body(Some(false), "REVIEWING")),
            (ManualFinished, decided.clone()),
            // A copy of the parked final under a forged header: a duplicate of it.
            (Cancelled, decided),
        ],
        &[1],
    );
    assert_eq!(
        store.case().decision,
        Decision::Pending,
        "the copy changed nothing"
    );
    let (entry, event, bytes) = &parked[0];
    let t = store.reprocess(*entry, *event, bytes);
    assert!(matches!(t, Transition::Applied { .. }), "{t:?}");
    assert_eq!(store.case().decision, Decision::Approved);
}
