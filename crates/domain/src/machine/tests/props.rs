//! Properties of the state machine over arbitrary arrival orders, forged headers, resends and
//! deliveries recorded late.

use std::collections::HashSet;

use proptest::prelude::*;
use proptest::sample::{Index, select, subsequence};

use super::*;

const DATA_FIELDS: [&str; 9] = [
    "docFirstName",
    "docLastName",
    "docDob",
    "docNationality",
    "docSex",
    "docType",
    "docNumber",
    "docExpiry",
    "docIssuingCountry",
];

const DECISIONS: [&str; 4] = ["APPROVED", "DENIED", "SUSPECTED", "EXPIRED"];

/// Any overall status, lifecycle statuses and unknown values included.
fn overall() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        select(vec![
            "APPROVED",
            "DENIED",
            "SUSPECTED",
            "REVIEWING",
            "EXPIRED",
            "ACTIVE",
            "EXPIRED-DELETED",
            "DELETED",
            "ARCHIVED",
        ])
        .prop_map(str::to_owned),
        "[A-Z_]{1,12}",
    ])
}

/// Statuses of a review round: results only, no lifecycle notices.
fn result_overall() -> impl Strategy<Value = Option<String>> {
    overall().prop_filter("a result, not a lifecycle notice", |o| {
        !o.as_deref()
            .is_some_and(|o| LIFECYCLE_STATUSES.contains(&o))
    })
}

fn tags() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[A-Z_]{1,10}", 0..3)
}

fn person_fields() -> impl Strategy<Value = Vec<Option<String>>> {
    prop::collection::vec(prop::option::of("\\PC{1,8}"), DATA_FIELDS.len())
}

/// The status and data of one body; `seq` keeps bodies of one round distinct on the wire.
fn body_with(
    seq: usize,
    is_final: Option<bool>,
    overall: impl Strategy<Value = Option<String>>,
) -> impl Strategy<Value = Value> {
    (
        overall,
        prop::collection::vec(prop::option::of("[A-Z_]{1,12}"), 4),
        (tags(), tags(), tags()),
        person_fields(),
    )
        .prop_map(move |(overall, docs, (fraud, mismatch, reasons), person)| {
            let mut data = serde_json::Map::new();
            for (name, value) in DATA_FIELDS.iter().zip(person) {
                data.insert((*name).to_owned(), json!(value));
            }
            let mut body = json!({
                "scanRef": "case-1",
                // Required by iDenfy and fixed per verification, unlike everything else here.
                "clientId": "client-1",
                "seq": seq,
                "status": {
                    "overall": overall,
                    "autoDocument": docs[0], "autoFace": docs[1],
                    "manualDocument": docs[2], "manualFace": docs[3],
                    "fraudTags": fraud, "mismatchTags": mismatch, "suspicionReasons": reasons,
                },
                "data": data,
                "fileUrls": {},
            });
            if let Some(is_final) = is_final {
                body["final"] = json!(is_final);
            }
            body
        })
}

/// One review round: distinct preliminary AUTO_FINISHED bodies and one MANUAL_FINISHED body
/// that decides and states the person, each delivered one to three times, in any order.
fn review_round() -> impl Strategy<Value = (Vec<(EventType, Vec<u8>)>, Value)> {
    let prelims = (1..=3usize).prop_flat_map(|n| {
        (0..n)
            .map(|seq| body_with(seq, Some(false), result_overall()))
            .collect::<Vec<_>>()
    });
    let decided = select(DECISIONS.to_vec()).prop_map(|d| Some(d.to_owned()));
    let manual =
        body_with(99, Some(true), decided).prop_filter("the final body names the person", |b| {
            b["data"]
                .as_object()
                .unwrap()
                .values()
                .any(|v| !v.is_null())
        });
    (
        prelims,
        manual,
        prop::collection::vec(1..=3usize, 4),
        any::<bool>(),
    )
        .prop_flat_map(|(prelims, manual, repeats, legacy_flag)| {
            let mut deliveries = Vec::new();
            for (i, body) in prelims.iter().enumerate() {
                for _ in 0..repeats[i] {
                    deliveries.push((AutoFinished, serde_json::to_vec(body).unwrap()));
                }
            }
            // MANUAL_FINISHED is final whatever its flag says; drop the flag half the time.
            let mut manual = manual;
            if legacy_flag {
                manual.as_object_mut().unwrap().remove("final");
            }
            for _ in 0..repeats[3] {
                deliveries.push((ManualFinished, serde_json::to_vec(&manual).unwrap()));
            }
            (Just(deliveries).prop_shuffle(), Just(manual))
        })
}

/// What a round must end in, whatever the order: everything but revision and timestamps.
#[derive(Debug, PartialEq)]
struct EndState {
    decision: Decision,
    is_final: bool,
    overall_status: Option<String>,
    last_event_type: String,
    client_id: String,
    statuses: [Option<String>; 4],
    tags: [Vec<String>; 3],
    person: Option<Person>,
}

fn end_state(case: &Case) -> EndState {
    EndState {
        decision: case.decision,
        is_final: case.is_final,
        overall_status: case.overall_status.clone(),
        last_event_type: case.last_event_type.clone(),
        client_id: case.client_id.clone(),
        statuses: [
            case.auto_document.clone(),
            case.auto_face.clone(),
            case.manual_document.clone(),
            case.manual_face.clone(),
        ],
        tags: [
            case.fraud_tags.clone(),
            case.mismatch_tags.clone(),
            case.suspicion_reasons.clone(),
        ],
        person: case.person.clone(),
    }
}

/// One delivery of a pool: its header, which pool body, and which set of file links (the
/// dashboard's resend re-signs them: different bytes, same content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Pick {
    event: EventType,
    body: usize,
    links: usize,
}

/// A pool of a few bodies (any status, any finality) and deliveries picking from it under any
/// header, so replays under foreign headers, resends, duplicates, stale results, reopenings,
/// lifecycle notices and quarantines all occur.
fn any_deliveries() -> impl Strategy<Value = (Vec<Value>, Vec<Pick>)> {
    let pool =
        prop::collection::vec(prop::option::of(any::<bool>()), 1..5).prop_flat_map(|flags| {
            flags
                .into_iter()
                .enumerate()
                .map(|(seq, f)| body_with(seq, f, overall()))
                .collect::<Vec<_>>()
        });
    pool.prop_flat_map(|pool| {
        let n = pool.len();
        let picks = prop::collection::vec(
            (select(EventType::WEBHOOK.to_vec()), 0..n, 0..2usize),
            1..25,
        )
        .prop_map(|picks| {
            picks
                .into_iter()
                .map(|(event, body, links)| Pick { event, body, links })
                .collect()
        });
        (Just(pool), picks)
    })
}

fn bytes_of(pool: &[Value], pick: Pick) -> Vec<u8> {
    let mut body = pool[pick.body].clone();
    body["fileUrls"] =
        json!({"FACE": format!("https://s3.example/face.png?Signature={}", pick.links)});
    serde_json::to_vec(&body).unwrap()
}

proptest! {
    #[test]
    fn any_interleaving_of_a_review_round_ends_in_the_same_state(
        (deliveries, manual) in review_round()
    ) {
        let mut store = Store::default();
        let mut finals = 0;
        for (event, body) in &deliveries {
            let t = store.deliver(*event, body);
            if t.outcome == Outcome::Applied && t.delivery_final {
                finals += 1;
            }
        }
        prop_assert_eq!(finals, 1, "the final delivery applies exactly once");

        // The same round delivered in the natural order, each body once.
        let mut reference = Store::default();
        let mut natural: Vec<_> = deliveries.clone();
        natural.sort_by_key(|(event, _)| *event == ManualFinished);
        natural.dedup();
        for (event, body) in &natural {
            reference.deliver(*event, body);
        }
        prop_assert_eq!(end_state(store.case()), end_state(reference.case()));

        // And both equal what the final body says, read independently.
        let case = store.case();
        let final_payload = payload(&manual);
        prop_assert!(case.is_final);
        prop_assert_eq!(Ok(Kind::Final(case.decision)), classify(ManualFinished, &final_payload));
        prop_assert_eq!(&case.overall_status, &final_payload.status.overall);
        prop_assert_eq!(&case.fraud_tags, &final_payload.status.fraud_tags);
        prop_assert_eq!(case.person.as_ref(), Some(&final_payload.person()));
        prop_assert_eq!(&case.last_event_type, ManualFinished.as_str());
    }

    #[test]
    fn stored_bytes_are_duplicates_under_any_header_and_only_applied_ones_count(
        (pool, picks) in any_deliveries()
    ) {
        let mut store = Store::default();
        let mut applied = 0u64;
        let mut delivered_bytes = HashSet::new();
        let mut recorded_content = HashSet::new();
        for pick in picks {
            let bytes = bytes_of(&pool, pick);
            let before = store.case.clone();
            store.clock += 1;
            let t = store.judge(pick.event, &bytes, at(store.clock), None);

            // Rule 1a: bytes delivered before are a duplicate whatever the header now says;
            // rule 1b: so is a resend (other links) of what came before under the same header.
            // Nothing else is.
            let resend = recorded_content.contains(&(pick.event, pick.body));
            let expected = delivered_bytes.contains(&bytes) || resend;
            prop_assert_eq!(matches!(t, Transition::Duplicate { .. }), expected, "{:?}: {:?}", pick, t);
            delivered_bytes.insert(bytes);
            recorded_content.insert((pick.event, pick.body));

            match &t {
                Transition::Applied { case, .. } => {
                    applied += 1;
                    prop_assert_eq!(case.revision, applied, "1 + applied deliveries after the first");
                    if let Some(before) = &before {
                        prop_assert!(case.revision > before.revision);
                        prop_assert_eq!(case.created_at, before.created_at);
                    }
                }
                Transition::Duplicate { .. } | Transition::Stale { .. } | Transition::Quarantine(_) => {
                    prop_assert_eq!(&store.case, &before, "only an applied delivery changes the case");
                }
            }
        }
    }

    #[test]
    fn every_delivery_follows_the_arrival_order_rules((pool, picks) in any_deliveries()) {
        let mut store = Store::default();
        for pick in picks {
            let bytes = bytes_of(&pool, pick);
            let p = Payload::parse(&bytes).unwrap();
            let before = store.case.clone();
            store.clock += 1;
            let t = store.judge(pick.event, &bytes, at(store.clock), None);
            let kind = classify(pick.event, &p);

            match (&t, kind) {
                (Transition::Quarantine(reason), kind) => {
                    prop_assert_eq!(Err(reason.clone()), kind);
                }
                (Transition::Duplicate { .. }, _) => {}
                // Arriving in order, only a preliminary result meeting a final case is stale.
                (Transition::Stale { .. }, Ok(kind)) => {
                    prop_assert_eq!(kind, Kind::Preliminary);
                    prop_assert!(before.as_ref().is_some_and(|c| c.is_final));
                }
                (Transition::Applied { case, .. }, Ok(kind)) => {
                    prop_assert_eq!(&case.last_event_type, pick.event.as_str());
                    match kind {
                        Kind::Final(decision) => {
                            prop_assert!(case.is_final);
                            prop_assert_eq!(case.decision, decision);
                        }
                        // Only webhooks are picked here; an answer that changes nothing
                        // applies only to a case never seen, as a preliminary result would.
                        Kind::Reopening | Kind::Preliminary | Kind::Unchanged => {
                            prop_assert!(!case.is_final);
                            prop_assert_eq!(case.decision, Decision::Pending);
                        }
                        // A lifecycle notice never decides, reopens or closes.
                        Kind::Lifecycle => {
                            let (decision, is_final) = before
                                .as_ref()
                                .map_or((Decision::Pending, false), |c| (c.decision, c.is_final));
                            prop_assert_eq!((case.decision, case.is_final), (decision, is_final));
                        }
                    }
                }
                (t, Err(reason)) => prop_assert!(false, "{:?} despite {}", t, reason),
            }
            // Case invariants hold after every delivery.
            if let Some(case) = &store.case {
                prop_assert_eq!(case.finalized_at.is_some(), case.is_final);
                prop_assert!(case.decision == Decision::Pending || case.is_final);
                prop_assert!(case.updated_at >= case.created_at);
                prop_assert_eq!(&case.scan_ref, "case-1");
            }
        }
    }

    /// DESIGN.md section 9: a delivery reprocessed from the quarantine is judged as of its
    /// original arrival. Recording the deliveries of a case in arrival order, and recording
    /// some of them late (parked in the quarantine when they arrived, reprocessed in any order
    /// afterwards), end in the same decision and finality; a late delivery never overrides a
    /// final result or a resubmission that arrived after it; `updated_at` never goes backwards.
    #[test]
    fn delayed_deliveries_end_in_the_decision_of_arrival_order(
        (pool, picks) in any_deliveries(),
        delayed in subsequence((0..25usize).collect::<Vec<_>>(), 0..25),
        order in prop::collection::vec(any::<Index>(), 25),
    ) {
        let deliveries: Vec<(DateTime<Utc>, Pick, Vec<u8>)> = picks
            .iter()
            .enumerate()
            .map(|(i, pick)| (at(i as i64 + 1), *pick, bytes_of(&pool, *pick)))
            .collect();

        let mut in_order = Store::default();
        for (arrival, pick, bytes) in &deliveries {
            in_order.judge(pick.event, bytes, *arrival, None);
        }

        let mut late = Store::default();
        let mut updated_at = None;
        let mut parked = Vec::new();
        let mut watch = |store: &Store| -> Result<(), TestCaseError> {
            if let Some(case) = &store.case {
                prop_assert!(Some(case.updated_at) >= updated_at, "updated_at went backwards");
                updated_at = Some(case.updated_at);
            }
            Ok(())
        };
        for (i, (arrival, pick, bytes)) in deliveries.iter().enumerate() {
            if delayed.contains(&i) {
                parked.push((late.park(pick.event, bytes, *arrival), i));
            } else {
                late.judge(pick.event, bytes, *arrival, None);
            }
            watch(&late)?;
        }
        // Reprocess the parked deliveries in an arbitrary order.
        while !parked.is_empty() {
            let (entry, i) = parked.remove(order[parked.len() - 1].index(parked.len()));
            let (arrival, pick, bytes) = &deliveries[i];
            let before = late.case.clone();
            let superseded = late.decisive_at.is_some_and(|d| d > *arrival);
            let t = late.reprocess(entry, pick.event, bytes);
            if superseded {
                // Something decisive that arrived later is already in: nothing changes, except
                // that a lifecycle notice still erases the person of a case not purged yet.
                match &t {
                    Transition::Applied { case, purges: true, .. } => {
                        let before = before.as_ref().expect("superseded by something");
                        prop_assert!(!before.is_purged(), "{:?}", t);
                        prop_assert_eq!(
                            (case.decision, case.is_final, &case.overall_status, case.updated_at),
                            (before.decision, before.is_final, &before.overall_status, before.updated_at)
                        );
                        prop_assert_eq!(&case.person, &None);
                    }
                    t => {
                        prop_assert!(!matches!(t, Transition::Applied { .. }), "{:?}", t);
                        prop_assert_eq!(&late.case, &before);
                    }
                }
            }
            watch(&late)?;
        }
        let end = |store: &Store| store.case.as_ref().map(|c| (c.decision, c.is_final));
        prop_assert_eq!(end(&late), end(&in_order));
        prop_assert_eq!(late.decisive_at, in_order.decisive_at);
    }
}
