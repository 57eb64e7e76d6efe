//! Properties of the state machine over arbitrary arrival orders.

use proptest::prelude::*;
use proptest::sample::select;

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
        ])
        .prop_map(str::to_owned),
        "[A-Z_]{1,12}",
    ])
}

fn tags() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[A-Z_]{1,10}", 0..3)
}

fn person_fields() -> impl Strategy<Value = Vec<Option<String>>> {
    prop::collection::vec(prop::option::of("\\PC{1,8}"), DATA_FIELDS.len())
}

/// The status and data of one body; `seq` keeps bodies of one round distinct on the wire.
fn body_with(seq: usize, is_final: Option<bool>) -> impl Strategy<Value = Value> {
    (
        overall(),
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
            });
            if let Some(is_final) = is_final {
                body["final"] = json!(is_final);
            }
            body
        })
}

/// One review round: distinct preliminary AUTO_FINISHED bodies and one MANUAL_FINISHED body
/// that states the person, each delivered one to three times, in any order.
fn review_round() -> impl Strategy<Value = (Vec<(EventType, Vec<u8>)>, Value)> {
    let prelims = (1..=3usize).prop_flat_map(|n| {
        (0..n)
            .map(|seq| body_with(seq, Some(false)))
            .collect::<Vec<_>>()
    });
    let manual = body_with(99, Some(true)).prop_filter("the final body names the person", |b| {
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

/// Any event, any of a few bodies, so that duplicates, stale results and reopenings all occur.
fn any_deliveries() -> impl Strategy<Value = Vec<(EventType, Vec<u8>)>> {
    let finality = prop::option::of(any::<bool>());
    let pool = prop::collection::vec(
        (0..1000usize, finality).prop_flat_map(|(seq, f)| body_with(seq, f)),
        1..5,
    );
    pool.prop_flat_map(|pool| {
        let pool: Vec<Vec<u8>> = pool
            .iter()
            .map(|b| serde_json::to_vec(b).unwrap())
            .collect();
        prop::collection::vec((select(EventType::ALL.to_vec()), select(pool)), 1..25)
    })
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
        prop_assert_eq!(case.decision, decision(ManualFinished, &final_payload, true));
        prop_assert_eq!(&case.overall_status, &final_payload.status.overall);
        prop_assert_eq!(&case.fraud_tags, &final_payload.status.fraud_tags);
        prop_assert_eq!(case.person.as_ref(), Some(&final_payload.person()));
        prop_assert_eq!(&case.last_event_type, ManualFinished.as_str());
    }

    #[test]
    fn revision_counts_applied_deliveries_and_never_decreases(deliveries in any_deliveries()) {
        let mut store = Store::default();
        let mut applied = 0u64;
        let mut seen = HashSet::new();
        for (event, body) in &deliveries {
            let before = store.case.clone();
            let duplicate = !seen.insert((*event, body.clone()));
            let t = store.deliver(*event, body);

            match &before {
                None => prop_assert_eq!(t.outcome, Outcome::Applied),
                Some(_) if duplicate => prop_assert_eq!(t.outcome, Outcome::Duplicate),
                Some(_) => prop_assert_ne!(t.outcome, Outcome::Duplicate),
            }
            if t.outcome == Outcome::Applied {
                applied += 1;
            } else {
                prop_assert_eq!(Some(&t.case), before.as_ref(), "only an applied delivery changes the case");
            }
            prop_assert_eq!(t.case.revision, applied, "1 + applied deliveries after the first");
            if let Some(before) = &before {
                prop_assert!(t.case.revision >= before.revision);
                prop_assert_eq!(t.case.created_at, before.created_at);
            }
        }
    }

    #[test]
    fn every_delivery_follows_the_arrival_order_rules(deliveries in any_deliveries()) {
        let mut store = Store::default();
        for (event, body) in &deliveries {
            let before = store.case.clone();
            let t = store.deliver(*event, body);
            let case = &t.case;

            // A stale delivery is a non-final, non-resubmission result that met a final case.
            if t.outcome == Outcome::Stale {
                prop_assert!(!t.delivery_final);
                prop_assert_ne!(*event, Resubmitted);
                prop_assert!(before.as_ref().is_some_and(|c| c.is_final));
            }
            // A final delivery that is new always applies, and RESUBMITTED too.
            if t.outcome != Outcome::Duplicate && (t.delivery_final || *event == Resubmitted) {
                prop_assert_eq!(t.outcome, Outcome::Applied);
            }
            if t.outcome == Outcome::Applied {
                prop_assert_eq!(case.is_final, t.delivery_final);
                prop_assert_eq!(&case.last_event_type, event.as_str());
            }
            // Case invariants hold after every delivery.
            prop_assert_eq!(case.finalized_at.is_some(), case.is_final);
            prop_assert!(case.decision == Decision::Pending || case.is_final);
            prop_assert!(case.updated_at >= case.created_at);
            prop_assert_eq!(&case.scan_ref, "case-1");
        }
    }
}
