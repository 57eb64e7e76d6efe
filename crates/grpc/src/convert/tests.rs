//! Round trips through the wire format. The reverse conversion exists only here: the service
//! never reads a `Case` from a client.

use chrono::TimeZone;
use proptest::prelude::*;

use super::*;

/// Reads a case back from the wire, treating "" as unknown like the forward conversion does.
fn case_from_proto(case: pb::Case) -> domain::Case {
    fn opt(s: String) -> Option<String> {
        (!s.is_empty()).then_some(s)
    }
    fn time(ts: Option<Timestamp>) -> Option<DateTime<Utc>> {
        ts.map(|ts| DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).unwrap()).unwrap())
    }
    let decision = pb::Decision::try_from(case.decision).unwrap();
    domain::Case {
        scan_ref: case.scan_ref,
        client_id: case.client_id,
        external_ref: opt(case.external_ref),
        decision: decision_from_proto(decision).expect("a case always has a decision"),
        is_final: case.r#final,
        overall_status: opt(case.overall_status),
        last_event_type: case.last_event_type,
        revision: case.revision,
        auto_document: opt(case.auto_document),
        auto_face: opt(case.auto_face),
        manual_document: opt(case.manual_document),
        manual_face: opt(case.manual_face),
        fraud_tags: case.fraud_tags,
        mismatch_tags: case.mismatch_tags,
        suspicion_reasons: case.suspicion_reasons,
        created_at: time(case.created_at).unwrap(),
        updated_at: time(case.updated_at).unwrap(),
        finalized_at: time(case.finalized_at),
        purged_at: time(case.purged_at),
        person: case.person.map(|p| domain::Person {
            first_name: opt(p.first_name),
            last_name: opt(p.last_name),
            date_of_birth: opt(p.date_of_birth),
            nationality: opt(p.nationality),
            sex: opt(p.sex),
            document_type: opt(p.document_type),
            document_number: opt(p.document_number),
            document_expiry: opt(p.document_expiry),
            issuing_country: opt(p.issuing_country),
        }),
    }
}

fn text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_ -]{1,12}"
}

fn maybe_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // Year 1970 to 2100, whole nanoseconds, no leap seconds (the wire has none).
    (0i64..4_102_444_800, 0u32..1_000_000_000)
        .prop_map(|(secs, nanos)| Utc.timestamp_opt(secs, nanos).unwrap())
}

fn decision() -> impl Strategy<Value = domain::Decision> {
    proptest::sample::select(domain::Decision::ALL.to_vec())
}

fn person() -> impl Strategy<Value = domain::Person> {
    (
        (
            maybe_text(),
            maybe_text(),
            maybe_text(),
            maybe_text(),
            maybe_text(),
        ),
        (maybe_text(), maybe_text(), maybe_text(), maybe_text()),
    )
        .prop_map(|((a, b, c, d, e), (f, g, h, i))| domain::Person {
            first_name: a,
            last_name: b,
            date_of_birth: c,
            nationality: d,
            sex: e,
            document_type: f,
            document_number: g,
            document_expiry: h,
            issuing_country: i,
        })
}

prop_compose! {
    fn case()(
        ids in (text(), text(), maybe_text()),
        decision in decision(),
        is_final in any::<bool>(),
        statuses in (maybe_text(), text(), 1u64..u64::MAX),
        checks in (maybe_text(), maybe_text(), maybe_text(), maybe_text()),
        tags in (
            proptest::collection::vec(text(), 0..3),
            proptest::collection::vec(text(), 0..3),
            proptest::collection::vec(text(), 0..3),
        ),
        times in (
            instant(),
            instant(),
            proptest::option::of(instant()),
            proptest::option::of(instant()),
        ),
        person in proptest::option::of(person()),
    ) -> domain::Case {
        domain::Case {
            scan_ref: ids.0,
            client_id: ids.1,
            external_ref: ids.2,
            decision,
            is_final,
            overall_status: statuses.0,
            last_event_type: statuses.1,
            revision: statuses.2,
            auto_document: checks.0,
            auto_face: checks.1,
            manual_document: checks.2,
            manual_face: checks.3,
            fraud_tags: tags.0,
            mismatch_tags: tags.1,
            suspicion_reasons: tags.2,
            created_at: times.0,
            updated_at: times.1,
            finalized_at: times.2,
            purged_at: times.3,
            person,
        }
    }
}

proptest! {
    #[test]
    fn full_view_round_trips_every_field(case in case()) {
        let back = case_from_proto(case_to_proto(&case, pb::CaseView::Full));
        prop_assert_eq!(back, case);
    }

    #[test]
    fn basic_view_round_trips_everything_but_the_person(case in case()) {
        for view in [pb::CaseView::Basic, pb::CaseView::Unspecified] {
            let wire = case_to_proto(&case, view);
            prop_assert!(wire.person.is_none());
            let back = case_from_proto(wire);
            prop_assert_eq!(back, domain::Case { person: None, ..case.clone() });
        }
    }

    #[test]
    fn timestamps_round_trip(at in instant()) {
        let ts = timestamp(at);
        prop_assert_eq!(DateTime::from_timestamp(ts.seconds, ts.nanos as u32), Some(at));
    }
}

#[test]
fn every_decision_round_trips() {
    for d in domain::Decision::ALL {
        assert_eq!(decision_from_proto(decision_to_proto(d)), Some(d));
        // The wire name is the domain spelling with the enum prefix, as buf's STANDARD lint wants.
        assert_eq!(
            decision_to_proto(d).as_str_name(),
            format!("DECISION_{}", d.as_str())
        );
    }
}

#[test]
fn unspecified_decision_means_any() {
    assert_eq!(decision_from_proto(pb::Decision::Unspecified), None);
}

#[test]
fn absent_optional_strings_become_empty() {
    let case = domain::Case {
        scan_ref: "scan-1".into(),
        client_id: "client-1".into(),
        external_ref: None,
        decision: domain::Decision::Pending,
        is_final: false,
        overall_status: None,
        last_event_type: "IDENTIFICATION".into(),
        revision: 1,
        auto_document: None,
        auto_face: None,
        manual_document: None,
        manual_face: None,
        fraud_tags: vec![],
        mismatch_tags: vec![],
        suspicion_reasons: vec![],
        created_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        updated_at: Utc.timestamp_opt(1_700_000_001, 0).unwrap(),
        finalized_at: None,
        purged_at: None,
        person: Some(domain::Person::default()),
    };
    let wire = case_to_proto(&case, pb::CaseView::Full);
    assert_eq!(wire.external_ref, "");
    assert_eq!(wire.overall_status, "");
    assert_eq!(wire.finalized_at, None);
    assert_eq!(wire.person, Some(pb::Person::default()));
    assert_eq!(wire.decision, pb::Decision::Pending as i32);
}

#[test]
fn case_event_keeps_outcome_spelling_and_time() {
    let at = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
    for outcome in [
        domain::Outcome::Applied,
        domain::Outcome::Duplicate,
        domain::Outcome::Stale,
    ] {
        let wire = case_event_to_proto(domain::CaseEvent {
            event_type: "IDENTIFICATION_MANUAL_FINISHED".into(),
            is_final: true,
            outcome,
            revision: 3,
            overall_status: Some("APPROVED".into()),
            received_at: at,
        });
        assert_eq!(domain::Outcome::parse(&wire.outcome), Some(outcome));
        assert!(wire.r#final);
        assert_eq!(wire.revision, 3);
        assert_eq!(wire.overall_status, "APPROVED");
        assert_eq!(
            wire.received_at,
            Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_456_789
            })
        );
    }
}

#[test]
fn leap_second_timestamps_are_normalized() {
    let leap = Utc
        .timestamp_opt(1_483_228_799, 1_500_000_000)
        .single()
        .unwrap();
    let ts = timestamp(leap);
    assert!((0..1_000_000_000).contains(&ts.nanos), "{ts:?}");
}

/// A case built from each fixture's payload as the state machine builds it, with its person,
/// under the first event type its body agrees with.
fn fixture_cases() -> Vec<domain::Case> {
    use domain::EventType::{AutoFinished, Legacy, ManualFinished};
    let fixtures: [&[u8]; 2] = [
        include_bytes!("../../../domain/tests/fixtures/go-idenfy-webhook.json"),
        include_bytes!("../../../domain/tests/fixtures/idenfy-legacy-example.json"),
    ];
    let at = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
    fixtures
        .into_iter()
        .map(|body| {
            let payload = domain::Payload::parse(body).unwrap();
            [AutoFinished, ManualFinished, Legacy]
                .into_iter()
                .find_map(
                    |event| match domain::apply(None, event, &payload, false, at) {
                        domain::Transition::Applied { case, .. } => Some(case),
                        _ => None,
                    },
                )
                .expect("the fixture applies under some event type")
        })
        .collect()
}

#[test]
fn a_case_with_its_person_fits_the_encode_buffer_with_its_frame_header() {
    use prost::Message as _;
    for case in fixture_cases() {
        assert!(case.person.is_some(), "the fixture has a person");
        let response = pb::WatchCaseResponse {
            event: Some(pb::watch_case_response::Event::Case(case_to_proto(
                &case,
                pb::CaseView::Full,
            ))),
        };
        let framed = response.encoded_len() + 5;
        assert!(
            framed <= verdict_proto::codec::ENCODE_BUFFER,
            "{framed} bytes do not fit"
        );
    }
}
