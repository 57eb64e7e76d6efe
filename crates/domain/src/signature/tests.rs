use proptest::prelude::*;

use super::*;

const KEY: &[u8] = b"webhook-secret";

fn webhook(body: &[u8], signature: Option<&str>) -> UnverifiedWebhook {
    UnverifiedWebhook {
        body: Bytes::copy_from_slice(body),
        signature: signature.map(str::to_owned),
        event_type: Some("IDENTIFICATION_AUTO_FINISHED".to_owned()),
    }
}

fn check(
    verifier: &SignatureVerifier,
    body: &[u8],
    signature: Option<&str>,
) -> Result<VerifiedWebhook, SignatureError> {
    verifier.verify(webhook(body, signature))
}

#[test]
fn sign_matches_the_rfc_4231_hmac_sha256_vector() {
    assert_eq!(
        sign(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn signed_body_round_trips_with_its_headers() {
    let body = br#"{"scanRef":"s","final":true}"#;
    let verified = check(&SignatureVerifier::new([KEY]), body, Some(&sign(KEY, body))).unwrap();
    assert_eq!(verified.body().as_ref(), body);
    assert_eq!(verified.event_type(), Some("IDENTIFICATION_AUTO_FINISHED"));
}

#[test]
fn missing_event_type_header_stays_missing() {
    let body = b"{}";
    let mut w = webhook(body, Some(&sign(KEY, body)));
    w.event_type = None;
    let verified = SignatureVerifier::new([KEY]).verify(w).unwrap();
    assert_eq!(verified.event_type(), None);
}

#[test]
fn empty_body_can_be_signed() {
    assert!(check(&SignatureVerifier::new([KEY]), b"", Some(&sign(KEY, b""))).is_ok());
}

#[test]
fn uppercase_and_mixed_case_hex_are_accepted() {
    let body = b"{\"scanRef\":\"s\"}";
    let lower = sign(KEY, body);
    let upper = lower.to_uppercase();
    let mixed: String = lower
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    let verifier = SignatureVerifier::new([KEY]);
    for signature in [lower, upper, mixed] {
        assert!(
            check(&verifier, body, Some(&signature)).is_ok(),
            "{signature}"
        );
    }
}

#[test]
fn surrounding_whitespace_in_the_header_is_ignored() {
    let body = b"{}";
    let signature = format!(" {}\t", sign(KEY, body));
    assert!(check(&SignatureVerifier::new([KEY]), body, Some(&signature)).is_ok());
}

#[test]
fn any_configured_key_verifies_during_rotation() {
    let verifier = SignatureVerifier::new([b"old-key".as_slice(), b"new-key".as_slice()]);
    let body = b"{\"scanRef\":\"s\"}";
    assert!(check(&verifier, body, Some(&sign(b"old-key", body))).is_ok());
    assert!(check(&verifier, body, Some(&sign(b"new-key", body))).is_ok());
    assert_eq!(
        check(&verifier, body, Some(&sign(b"other-key", body))).unwrap_err(),
        SignatureError::Mismatch
    );
}

#[test]
fn keys_accept_strings_and_vectors() {
    let body = b"{}";
    let from_strings = SignatureVerifier::new(vec!["a".to_owned(), "b".to_owned()]);
    assert!(check(&from_strings, body, Some(&sign(b"b", body))).is_ok());
    // Longer than the SHA-256 block size: HMAC hashes such keys first.
    let long_key = vec![7u8; 200];
    let long = SignatureVerifier::new([long_key.clone()]);
    assert!(check(&long, body, Some(&sign(&long_key, body))).is_ok());
}

#[test]
fn missing_signature_is_rejected_as_missing() {
    assert_eq!(
        check(&SignatureVerifier::new([KEY]), b"{}", None).unwrap_err(),
        SignatureError::Missing
    );
}

#[test]
fn non_hex_or_wrong_length_signature_is_malformed() {
    let good = sign(KEY, b"{}");
    let cases = [
        String::new(),
        "zz".repeat(32),
        format!("{}g", &good[..63]),
        good[..62].to_owned(),
        good[..63].to_owned(),
        format!("{good}00"),
        format!("sha256={good}"),
        format!("0x{good}"),
    ];
    let verifier = SignatureVerifier::new([KEY]);
    for signature in cases {
        assert_eq!(
            check(&verifier, b"{}", Some(&signature)).unwrap_err(),
            SignatureError::Malformed,
            "{signature:?}"
        );
    }
}

#[test]
fn signature_under_a_wrong_key_is_a_mismatch() {
    let verifier = SignatureVerifier::new([KEY]);
    assert_eq!(
        check(&verifier, b"{}", Some(&sign(b"not-the-key", b"{}"))).unwrap_err(),
        SignatureError::Mismatch
    );
}

#[test]
fn signature_of_another_body_is_a_mismatch() {
    let verifier = SignatureVerifier::new([KEY]);
    let signature = sign(KEY, br#"{"final":false}"#);
    assert_eq!(
        check(&verifier, br#"{"final":true}"#, Some(&signature)).unwrap_err(),
        SignatureError::Mismatch
    );
}

#[test]
fn empty_keys_are_ignored_and_never_verify() {
    let none = SignatureVerifier::new([b"".as_slice()]);
    assert!(!none.has_keys());
    assert_eq!(
        check(&none, b"{}", Some(&sign(b"", b"{}"))).unwrap_err(),
        SignatureError::Mismatch
    );

    let some = SignatureVerifier::new([b"".as_slice(), KEY]);
    assert!(some.has_keys());
    assert!(check(&some, b"{}", Some(&sign(KEY, b"{}"))).is_ok());
}

#[test]
fn verifier_without_keys_rejects_everything() {
    let verifier = SignatureVerifier::new(Vec::<Vec<u8>>::new());
    assert!(!verifier.has_keys());
    assert_eq!(
        check(&verifier, b"{}", Some(&sign(KEY, b"{}"))).unwrap_err(),
        SignatureError::Mismatch
    );
}

#[test]
fn allow_unsigned_accepts_anything() {
    let verifier = SignatureVerifier::allow_unsigned();
    assert!(!verifier.has_keys());
    for signature in [
        None,
        Some(""),
        Some("not hex"),
        Some(&*sign(b"k", b"other")),
    ] {
        let verified = check(&verifier, b"raw body", signature).unwrap();
        assert_eq!(verified.body().as_ref(), b"raw body");
    }
}

#[test]
fn debug_output_shows_neither_body_nor_keys() {
    let body = b"{\"docFirstName\":\"SECRET-NAME\"}";
    let w = webhook(body, Some(&sign(KEY, body)));
    let shown = format!("{w:?}");
    assert!(!shown.contains("SECRET-NAME"), "{shown}");
    assert!(shown.contains("body_len"));

    let verified = SignatureVerifier::new([KEY]).verify(w).unwrap();
    assert!(!format!("{verified:?}").contains("SECRET-NAME"));

    let verifier = SignatureVerifier::new([b"key-that-must-not-leak".as_slice()]);
    let shown = format!("{verifier:?}");
    assert!(!shown.contains("key-that-must-not-leak"), "{shown}");
    assert!(shown.contains("keys: 1"), "{shown}");
}

fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut flipped = bytes.to_vec();
    flipped[bit / 8] ^= 1 << (bit % 8);
    flipped
}

proptest! {
    #[test]
    fn any_body_round_trips_with_any_key(
        key in prop::collection::vec(any::<u8>(), 1..100),
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let verifier = SignatureVerifier::new([&key]);
        let verified = check(&verifier, &body, Some(&sign(&key, &body))).unwrap();
        prop_assert_eq!(verified.body().as_ref(), body.as_slice());
    }

    #[test]
    fn any_single_bit_flip_of_the_body_is_rejected(
        body in prop::collection::vec(any::<u8>(), 1..300),
        bit in any::<prop::sample::Index>(),
    ) {
        let signature = sign(KEY, &body);
        let tampered = flip(&body, bit.index(body.len() * 8));
        prop_assert_eq!(
            check(&SignatureVerifier::new([KEY]), &tampered, Some(&signature)).unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn any_single_bit_flip_of_the_signature_is_rejected(
        body in prop::collection::vec(any::<u8>(), 0..300),
        bit in 0..256usize,
    ) {
        let tag = hex::decode(sign(KEY, &body)).unwrap();
        let tampered = hex::encode(flip(&tag, bit));
        let verifier = SignatureVerifier::new([b"rotated-out".as_slice(), KEY]);
        prop_assert_eq!(
            check(&verifier, &body, Some(&tampered)).unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn a_bit_flip_in_the_header_text_passes_only_as_a_change_of_hex_case(
        body in prop::collection::vec(any::<u8>(), 0..100),
        byte in 0..64usize,
        bit in 0..7usize,
    ) {
        // Bits 0..7 of an ASCII digit: the header stays a string, as it must to reach us.
        let header = sign(KEY, &body);
        let tampered = flip(header.as_bytes(), byte * 8 + bit);
        let tampered = String::from_utf8(tampered).unwrap();
        let result = check(&SignatureVerifier::new([KEY]), &body, Some(&tampered));
        let same_digits = tampered.eq_ignore_ascii_case(&header);
        prop_assert_eq!(result.is_ok(), same_digits, "{} -> {}", header, tampered);
    }
}
