//! Signed webhook bodies: the real iDenfy payload, padded to about 4.6 KB with realistic file
//! URLs, with a fixed-length scanRef spliced in per request (no JSON work in the load loop).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use serde_json::{Value, json};

/// The key both the service and the HMAC peer check signatures with.
pub(crate) const SECRET: &str = "bench-webhook-secret";

const FIXTURE: &[u8] = include_bytes!("../../domain/tests/fixtures/go-idenfy-webhook.json");

/// Every scanRef of a run has this length: `<run:8>-<tag:1><n:12>`.
const SCAN_REF_LEN: usize = 8 + 1 + 1 + 12;
const PLACEHOLDER: &str = "@@@@@@@@@@@@@@@@@@@@@@";

/// Every clientId spliced into [`Bodies::with_clients`] bodies has this length.
pub(crate) const CLIENT_ID_LEN: usize = 8;
const CLIENT_PLACEHOLDER: &str = "~~~~~~~~";

/// Makes unique, signed webhook bodies quickly.
#[derive(Debug)]
pub(crate) struct Bodies {
    run: String,
    template: Vec<u8>,
    offset: usize,
    /// Where the clientId goes, for bodies made by [`Bodies::with_clients`].
    client_offset: Option<usize>,
    next: AtomicU64,
}

/// One request's body and signature.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub(crate) scan_ref: String,
    pub(crate) body: Bytes,
    pub(crate) signature: String,
}

impl Bodies {
    /// Bodies for `run` (8 characters), final or not.
    pub(crate) fn new(run: &str, is_final: bool) -> Self {
        Self::build(run, is_final, false)
    }

    /// Bodies for `run` whose clientId is chosen per body ([`Bodies::signed_for`]).
    pub(crate) fn with_clients(run: &str, is_final: bool) -> Self {
        Self::build(run, is_final, true)
    }

    fn build(run: &str, is_final: bool, clients: bool) -> Self {
        assert_eq!(run.len(), 8, "run ids are 8 characters");
        assert_eq!(PLACEHOLDER.len(), SCAN_REF_LEN);
        assert_eq!(CLIENT_PLACEHOLDER.len(), CLIENT_ID_LEN);
        let mut value: Value = serde_json::from_slice(FIXTURE).expect("the fixture is JSON");
        value["scanRef"] = json!(PLACEHOLDER);
        if clients {
            value["clientId"] = json!(CLIENT_PLACEHOLDER);
        }
        value["final"] = json!(is_final);
        value["status"]["overall"] = json!(if is_final { "APPROVED" } else { "REVIEWING" });
        // Real deliveries carry signed file URLs; they make the body 4–5 KB.
        let urls: serde_json::Map<String, Value> = ["FRONT", "BACK", "FACE", "FRONT_VIDEO", "FACE_VIDEO", "DOCUMENT_VIDEO", "SELFIE"]
            .iter()
            .map(|kind| {
                (
                    (*kind).to_owned(),
                    json!(format!(
                        "https://s3.eu-west-1.amazonaws.com/production.users.storage/users_storage/users/{}/{kind}.png?AWSAccessKeyId=AKIAXXXXXXXXXXXXXXXX&Signature=0123456789abcdef0123456789abcdef&Expires=1554727600",
                        "d".repeat(40)
                    )),
                )
            })
            .collect();
        value["fileUrls"] = Value::Object(urls);
        let template = serde_json::to_vec_pretty(&value).expect("serialise");
        let offset = find(&template, PLACEHOLDER.as_bytes()).expect("placeholder present");
        let client_offset = clients.then(|| {
            find(&template, CLIENT_PLACEHOLDER.as_bytes()).expect("client placeholder present")
        });
        Self {
            run: run.to_owned(),
            template,
            offset,
            client_offset,
            next: AtomicU64::new(0),
        }
    }

    /// The body length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.template.len()
    }

    /// A scanRef of this run: `tag` separates the uses inside one run.
    pub(crate) fn scan_ref(&self, tag: char) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{tag}{n:012}", self.run)
    }

    /// The `LIKE` pattern matching every scanRef of this run with `tag`.
    pub(crate) fn pattern(&self, tag: char) -> String {
        format!("{}-{tag}%", self.run)
    }

    /// A signed body for `scan_ref`.
    pub(crate) fn signed(&self, scan_ref: String) -> Signed {
        self.signed_with(scan_ref, |_| {})
    }

    /// A signed body for `scan_ref` of client `client_id` ([`CLIENT_ID_LEN`] bytes); only for
    /// [`Bodies::with_clients`].
    pub(crate) fn signed_for(&self, scan_ref: String, client_id: &str) -> Signed {
        assert_eq!(client_id.len(), CLIENT_ID_LEN);
        let at = self.client_offset.expect("bodies made with_clients");
        self.signed_with(scan_ref, |body| {
            body[at..at + CLIENT_ID_LEN].copy_from_slice(client_id.as_bytes());
        })
    }

    fn signed_with(&self, scan_ref: String, splice: impl FnOnce(&mut [u8])) -> Signed {
        assert_eq!(scan_ref.len(), SCAN_REF_LEN);
        let mut body = self.template.clone();
        body[self.offset..self.offset + SCAN_REF_LEN].copy_from_slice(scan_ref.as_bytes());
        splice(&mut body);
        let signature = verdict_domain::sign(SECRET.as_bytes(), &body);
        Signed {
            scan_ref,
            body: Bytes::from(body),
            signature,
        }
    }

    /// A signed body for a new scanRef with `tag`.
    pub(crate) fn next_signed(&self, tag: char) -> Signed {
        let scan_ref = self.scan_ref(tag);
        self.signed(scan_ref)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A random 8-character run id, so concurrent runs never share rows or channels.
pub(crate) fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}
