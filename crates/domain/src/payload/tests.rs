use serde_json::json;

use super::*;
use crate::scan_ref::ScanRefError;

const GO_IDENFY: &[u8] = include_bytes!("../../tests/fixtures/go-idenfy-webhook.json");
const LEGACY: &[u8] = include_bytes!("../../tests/fixtures/idenfy-legacy-example.json");

fn parse_json(value: serde_json::Value) -> Result<Payload, PayloadError> {
    Payload::parse(&serde_json::to_vec(&value).unwrap())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn newer_fixture_parses_as_it_is() {
    let p = Payload::parse(GO_IDENFY).expect("the go-idenfy fixture must be accepted");
    assert_eq!(p.scan_ref.as_str(), "scan-ref");
    assert_eq!(p.client_id.as_deref(), Some("123"));
    assert_eq!(p.external_ref.as_deref(), Some("external-ref"));
    assert_eq!(p.is_final, Some(false));
    assert_eq!(
        p.status,
        Status {
            overall: Some("APPROVED".into()),
            auto_document: Some("DOC_VALIDATED".into()),
            auto_face: Some("FACE_MATCH".into()),
            manual_document: Some("DOC_VALIDATED".into()),
            manual_face: Some("FACE_MATCH".into()),
            fraud_tags: vec![],
            mismatch_tags: vec![],
            suspicion_reasons: vec![],
        }
    );
    assert_eq!(
        p.person(),
        Person {
            first_name: Some("FIRST-NAME-EXAMPLE".into()),
            last_name: Some("LAST-NAME-EXAMPLE".into()),
            // Placeholders that are not dates are kept verbatim, never rejected.
            date_of_birth: Some("YYYY-MM-DD".into()),
            nationality: Some("LT".into()),
            sex: Some("UNDEFINED".into()),
            document_type: Some("ID_CARD".into()),
            document_number: Some("XXXXXXXXX".into()),
            document_expiry: Some("YYYY-MM-DD".into()),
            issuing_country: Some("LT".into()),
        }
    );
}

#[test]
fn legacy_fixture_parses_as_it_is() {
    let p = Payload::parse(LEGACY).expect("the legacy fixture must be accepted");
    assert_eq!(p.scan_ref.as_str(), "scan-ref");
    assert_eq!(p.client_id.as_deref(), Some("123"));
    assert_eq!(p.external_ref, None);
    assert_eq!(p.is_final, None, "legacy bodies carry no final flag");
    assert_eq!(p.status.overall.as_deref(), Some("APPROVED"));
    assert_eq!(p.status.auto_document.as_deref(), Some("DOC_VALIDATED"));
    assert_eq!(p.status.auto_face.as_deref(), Some("FACE_MATCH"));
    assert_eq!(p.status.manual_document, None);
    assert_eq!(p.status.manual_face, None);
    assert_eq!(p.person().first_name.as_deref(), Some("FIRST-NAME-EXAMPLE"));
    assert_eq!(p.person().issuing_country.as_deref(), Some("LT"));
}

#[test]
fn fixtures_have_their_scan_ref_replaced_at_run_time() {
    let mut value: serde_json::Value = serde_json::from_slice(LEGACY).unwrap();
    value["scanRef"] = json!("fresh-case");
    assert_eq!(parse_json(value).unwrap().scan_ref.as_str(), "fresh-case");
}

#[test]
fn null_data_and_null_status_count_as_empty() {
    let p = parse_json(json!({"scanRef": "s", "data": null, "status": null})).unwrap();
    assert_eq!(p.status, Status::default());
    assert_eq!(p.data, Data::default());
    assert!(p.person().is_empty());
}

#[test]
fn missing_data_and_status_count_as_empty() {
    let p = parse_json(json!({"scanRef": "s"})).unwrap();
    assert_eq!(p.status, Status::default());
    assert_eq!(p.data, Data::default());
    assert_eq!(p.is_final, None);
    assert_eq!(p.client_id, None);
}

#[test]
fn every_status_and_data_field_may_be_null() {
    let p = parse_json(json!({
        "scanRef": "s",
        "clientId": null,
        "externalRef": null,
        "final": null,
        "status": {
            "overall": null, "autoDocument": null, "autoFace": null, "manualDocument": null,
            "manualFace": null, "fraudTags": null, "mismatchTags": null,
            "suspicionReasons": null, "additionalSteps": null
        },
        "data": {
            "docFirstName": null, "docLastName": null, "docDob": null, "docNationality": null,
            "docSex": null, "docType": null, "docNumber": null, "docExpiry": null,
            "docIssuingCountry": null, "docPersonalCode": null, "additionalData": null
        }
    }))
    .unwrap();
    assert_eq!(p.client_id, None);
    assert_eq!(p.external_ref, None);
    assert_eq!(p.is_final, None);
    assert_eq!(p.status, Status::default());
    assert_eq!(p.data, Data::default());
}

#[test]
fn wrongly_typed_nested_objects_count_as_empty() {
    for odd in [json!("x"), json!(1), json!([1, 2]), json!(true)] {
        let p = parse_json(json!({"scanRef": "s", "status": odd, "data": odd})).unwrap();
        assert_eq!(p.status, Status::default(), "{odd}");
        assert_eq!(p.data, Data::default(), "{odd}");
    }
}

#[test]
fn unknown_enum_values_are_kept_verbatim() {
    let p = parse_json(json!({
        "scanRef": "s",
        "status": {
            "overall": "SOMETHING_NEW",
            "autoDocument": "DOC_FROM_THE_FUTURE",
            "autoFace": "FACE_HOLOGRAM",
            "manualDocument": "doc_lowercase",
            "manualFace": "FACE-WITH-DASH",
            "fraudTags": ["BRAND_NEW_TAG", "FACE_IN_BLACKLIST"],
            "mismatchTags": ["NEW_MISMATCH"],
            "suspicionReasons": ["NEW_REASON"]
        },
        "data": {"docType": "HOLOGRAPHIC_ID", "docSex": "X"}
    }))
    .unwrap();
    assert_eq!(p.status.overall.as_deref(), Some("SOMETHING_NEW"));
    assert_eq!(
        p.status.auto_document.as_deref(),
        Some("DOC_FROM_THE_FUTURE")
    );
    assert_eq!(p.status.auto_face.as_deref(), Some("FACE_HOLOGRAM"));
    assert_eq!(p.status.manual_document.as_deref(), Some("doc_lowercase"));
    assert_eq!(p.status.manual_face.as_deref(), Some("FACE-WITH-DASH"));
    assert_eq!(
        p.status.fraud_tags,
        strings(&["BRAND_NEW_TAG", "FACE_IN_BLACKLIST"])
    );
    assert_eq!(p.status.mismatch_tags, strings(&["NEW_MISMATCH"]));
    assert_eq!(p.status.suspicion_reasons, strings(&["NEW_REASON"]));
    assert_eq!(p.person().document_type.as_deref(), Some("HOLOGRAPHIC_ID"));
    assert_eq!(p.person().sex.as_deref(), Some("X"));
}

#[test]
fn tag_lists_keep_strings_and_drop_other_items() {
    let p = parse_json(json!({
        "scanRef": "s",
        "status": {"fraudTags": ["A", null, 3, {"x": 1}, "B"], "mismatchTags": "NAME"}
    }))
    .unwrap();
    assert_eq!(p.status.fraud_tags, strings(&["A", "B"]));
    assert!(
        p.status.mismatch_tags.is_empty(),
        "a lone string is not a list"
    );
}

#[test]
fn unicode_names_survive_raw_and_escaped() {
    // Raw UTF-8, `\u` escapes (iDenfy's "UTF-16 encoded symbols") and a surrogate pair.
    let body = r#"{
        "scanRef": "s",
        "data": {
            "docFirstName": "\u0160ILUVA",
            "docLastName": "\u017dem\u0117 \ud83d\ude00",
            "docNationality": "\u0414\u0416",
            "docIssuingCountry": "日本",
            "docNumber": "Ω-42"
        }
    }"#;
    let person = Payload::parse(body.as_bytes()).unwrap().person();
    assert_eq!(person.first_name.as_deref(), Some("ŠILUVA"));
    assert_eq!(person.last_name.as_deref(), Some("Žemė 😀"));
    assert_eq!(person.nationality.as_deref(), Some("ДЖ"));
    assert_eq!(person.issuing_country.as_deref(), Some("日本"));
    assert_eq!(person.document_number.as_deref(), Some("Ω-42"));
}

#[test]
fn unicode_scan_ref_is_kept_verbatim() {
    let p = Payload::parse(br#"{"scanRef": "r\u00e9f-\ud83d\ude00"}"#).unwrap();
    assert_eq!(p.scan_ref.as_str(), "réf-😀");
}

#[test]
fn numbers_and_booleans_where_strings_are_expected_are_rendered() {
    let p = parse_json(json!({
        "scanRef": 12345,
        "clientId": 123,
        "externalRef": 1.5,
        "status": {"overall": true, "autoFace": -7},
        "data": {"docNumber": 987654321, "docFirstName": false}
    }))
    .unwrap();
    assert_eq!(p.scan_ref.as_str(), "12345");
    assert_eq!(p.client_id.as_deref(), Some("123"));
    assert_eq!(p.external_ref.as_deref(), Some("1.5"));
    assert_eq!(p.status.overall.as_deref(), Some("true"));
    assert_eq!(p.status.auto_face.as_deref(), Some("-7"));
    assert_eq!(p.person().document_number.as_deref(), Some("987654321"));
    assert_eq!(p.person().first_name.as_deref(), Some("false"));
}

#[test]
fn objects_and_arrays_where_strings_are_expected_count_as_absent() {
    let p = parse_json(json!({
        "scanRef": "s",
        "clientId": {"id": 1},
        "status": {"overall": ["APPROVED"]},
        "data": {"docFirstName": {"value": "A"}}
    }))
    .unwrap();
    assert_eq!(p.client_id, None);
    assert_eq!(p.status.overall, None);
    assert_eq!(p.person().first_name, None);
}

#[test]
fn empty_strings_count_as_absent() {
    let p = parse_json(json!({
        "scanRef": "s", "clientId": "", "status": {"overall": ""}, "data": {"docFirstName": ""}
    }))
    .unwrap();
    assert_eq!(p.client_id, None);
    assert_eq!(p.status.overall, None);
    assert!(p.person().is_empty());
}

#[test]
fn final_flag_is_read_leniently() {
    let cases = [
        (json!(true), Some(true)),
        (json!(false), Some(false)),
        (json!("true"), Some(true)),
        (json!("FALSE"), Some(false)),
        (json!(null), None),
        (json!(1), None),
        (json!("yes"), None),
        (json!({}), None),
    ];
    for (raw, expected) in cases {
        let p = parse_json(json!({"scanRef": "s", "final": raw})).unwrap();
        assert_eq!(p.is_final, expected, "final: {raw}");
    }
}

#[test]
fn unknown_top_level_fields_are_ignored() {
    let p = parse_json(json!({
        "scanRef": "s",
        "amlCheck": {"anything": [1, 2, 3]},
        "questionnaireAnswers": null,
        "somethingNew": {"deep": {"deeper": true}}
    }))
    .unwrap();
    assert_eq!(p.scan_ref.as_str(), "s");
}

#[test]
fn missing_scan_ref_is_rejected() {
    assert_eq!(
        parse_json(json!({"clientId": "c", "final": true})).unwrap_err(),
        PayloadError::MissingScanRef
    );
}

#[test]
fn null_or_non_text_scan_ref_is_missing() {
    for raw in [json!(null), json!({}), json!([])] {
        assert_eq!(
            parse_json(json!({"scanRef": raw})).unwrap_err(),
            PayloadError::MissingScanRef,
            "scanRef: {raw}"
        );
    }
}

#[test]
fn empty_long_or_control_character_scan_ref_is_invalid() {
    let cases = [
        (json!(""), ScanRefError::Empty),
        (json!("   "), ScanRefError::Empty),
        (json!("x".repeat(37)), ScanRefError::TooLong),
        (json!("abc\u{0}def"), ScanRefError::ControlCharacter),
        (json!("line\nbreak"), ScanRefError::ControlCharacter),
    ];
    for (raw, expected) in cases {
        let err = parse_json(json!({"scanRef": raw})).unwrap_err();
        assert_eq!(
            err,
            PayloadError::InvalidScanRef(expected),
            "scanRef: {raw}"
        );
    }
    // The wire form of a NUL is the JSON escape.
    assert_eq!(
        Payload::parse(br#"{"scanRef": "a\u0000b"}"#).unwrap_err(),
        PayloadError::InvalidScanRef(ScanRefError::ControlCharacter)
    );
}

#[test]
fn nul_characters_are_dropped_from_every_kept_text() {
    let body = br#"{
        "scanRef": "s",
        "clientId": "client\u0000-1",
        "externalRef": "\u0000",
        "status": {
            "overall": "APPR\u0000OVED",
            "autoDocument": "DOC\u0000",
            "fraudTags": ["TAG\u0000A", "\u0000"]
        },
        "data": {"docFirstName": "JO\u0000NAS", "docNumber": "\u0000LT1\u0000"}
    }"#;
    let p = Payload::parse(body).unwrap();
    assert_eq!(p.client_id.as_deref(), Some("client-1"));
    assert_eq!(p.external_ref, None, "nothing left is absent");
    assert_eq!(p.status.overall.as_deref(), Some("APPROVED"));
    assert_eq!(p.status.auto_document.as_deref(), Some("DOC"));
    assert_eq!(p.status.fraud_tags, strings(&["TAGA", ""]));
    assert_eq!(p.person().first_name.as_deref(), Some("JONAS"));
    assert_eq!(p.person().document_number.as_deref(), Some("LT1"));
}

#[test]
fn non_json_is_rejected_as_not_json() {
    let bodies: [&[u8]; 6] = [
        b"",
        b"not json",
        b"{\"scanRef\": \"s\"",
        b"scanRef=s&final=true",
        b"\xff\xfe{}",
        b"<xml/>",
    ];
    for body in bodies {
        assert!(
            matches!(Payload::parse(body), Err(PayloadError::NotJson(_))),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn json_that_is_not_an_object_is_rejected_as_not_json() {
    // A top-level array must not be read positionally into the fields.
    let bodies: [&[u8]; 5] = [b"[\"s\"]", b"[]", b"\"s\"", b"42", b"null"];
    for body in bodies {
        assert!(
            matches!(Payload::parse(body), Err(PayloadError::NotJson(_))),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn trailing_garbage_after_the_object_is_rejected() {
    assert!(matches!(
        Payload::parse(b"{\"scanRef\": \"s\"} trailing"),
        Err(PayloadError::NotJson(_))
    ));
}

#[test]
fn lone_surrogate_in_a_field_we_do_not_read_does_not_fail_the_delivery() {
    // iDenfy warns that original-language fields may carry UTF-16 escapes; a lone surrogate is
    // valid JSON grammar, and must not cost us the decision in the same body.
    let body = br#"{
        "scanRef": "s",
        "final": true,
        "fullName": "\ud800",
        "status": {"overall": "APPROVED", "somethingNew": "\udc00x"},
        "data": {"docFirstName": "ANNA", "orgBirthPlace": "\ud83d", "orgAddress": "\ude00"}
    }"#;
    let p = Payload::parse(body).expect("unread fields are not decoded");
    assert_eq!(p.is_final, Some(true));
    assert_eq!(p.status.overall.as_deref(), Some("APPROVED"));
    assert_eq!(p.person().first_name.as_deref(), Some("ANNA"));
}

#[test]
fn duplicate_scan_ref_is_rejected_rather_than_guessed() {
    assert!(matches!(
        Payload::parse(br#"{"scanRef": "a", "scanRef": "b"}"#),
        Err(PayloadError::NotJson(_))
    ));
}

#[test]
fn error_messages_never_quote_the_body() {
    for body in [
        &br#""Jane Doe 1990-01-01""#[..],
        br#"1990010112345"#,
        br#"{"scanRef": "abc", "data": 1} "Jane Doe""#,
        br#"{"scanRef": "Jane Doe"#,
        br#"{"Jane Doe": }"#,
        br#"{"scanRef": "Jane Doe 1990-01-01 with a far too long key"}"#,
        br#"{"scanRef": "Jane\u0000Doe"}"#,
        br#"{"scanRef": {"name": "Jane Doe"}}"#,
        br#"["Jane Doe", 1990]"#,
    ] {
        let err = Payload::parse(body).unwrap_err();
        // What `verdict quarantine` prints and what a log's error chain shows.
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains("Jane"), "{shown}");
            assert!(!shown.contains("1990"), "{shown}");
        }
    }
}

#[test]
fn syntax_errors_name_the_position() {
    let message = Payload::parse(b"{not json").unwrap_err().to_string();
    assert!(
        message.starts_with("body is not a JSON object: "),
        "{message}"
    );
    assert!(message.contains("line 1"), "{message}");
}

#[test]
fn every_usable_body_names_its_payloads_case() {
    for body in [
        GO_IDENFY.to_vec(),
        LEGACY.to_vec(),
        br#"{"scanRef": 12345, "final": true}"#.to_vec(),
        br#"{"data": {"scanRef": "inner"}, "scanRef": "outer"}"#.to_vec(),
        "{\"scanRef\":\"r\u{e9}f-\u{1F600}\"}".as_bytes().to_vec(),
    ] {
        let payload = Payload::parse(&body).unwrap();
        assert_eq!(named_scan_ref(&body), Some(payload.scan_ref));
    }
}

#[test]
fn a_body_that_does_not_parse_may_still_name_its_case() {
    // A lone surrogate where Verdict reads a value fails the payload, not the case it names.
    let body = br#"{"scanRef": "s-1", "clientId": "\ud83d"}"#;
    assert!(Payload::parse(body).is_err());
    assert_eq!(named_scan_ref(body).unwrap().as_str(), "s-1");
    // The first of two, where the payload refuses the duplicate.
    let body = br#"{"scanRef": "first", "scanRef": "second"}"#;
    assert!(Payload::parse(body).is_err());
    assert_eq!(named_scan_ref(body).unwrap().as_str(), "first");
}

#[test]
fn a_body_names_no_case_without_a_valid_top_level_scan_ref() {
    for body in [
        &br#"{"final": true}"#[..],
        br#"{"scanRef": null}"#,
        br#"{"scanRef": ""}"#,
        br#"{"scanRef": "a\u0000b"}"#,
        br#"{"scanRef": {"id": "s"}}"#,
        br#"{"data": {"scanRef": "s"}}"#,
        br#"["scanRef", "s"]"#,
        b"{not json",
        br#"{"scanRef": "s", "final": "#,
        b"",
    ] {
        assert_eq!(
            named_scan_ref(body),
            None,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}
