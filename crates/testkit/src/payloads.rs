//! Webhook bodies for tests: a builder for iDenfy-shaped bodies, and the two real payloads
//! written outside this project, used as they are (only `scanRef` changes, per test).

use serde_json::{Value, json};

/// The newer real payload (with `final`, `AML`/`LID` arrays, non-ASCII fields).
pub const REAL_NEW: &[u8] = include_bytes!("../../domain/tests/fixtures/go-idenfy-webhook.json");
/// The legacy real payload (no `final`).
pub const REAL_LEGACY: &[u8] =
    include_bytes!("../../domain/tests/fixtures/idenfy-legacy-example.json");

/// A real payload with its placeholder `scanRef` replaced, so each test has its own case.
pub fn real(fixture: &[u8], scan_ref: &str) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(fixture).expect("fixtures are JSON");
    value["scanRef"] = json!(scan_ref);
    serde_json::to_vec(&value).expect("serialise")
}

/// A unique scanRef for a test (iDenfy's are UUIDs).
pub fn scan_ref() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Builds an iDenfy-shaped body.
#[derive(Debug, Clone)]
pub struct Webhook {
    value: Value,
}

/// A preliminary (non-final) body for `scan_ref` with overall status `REVIEWING`.
pub fn webhook(scan_ref: &str) -> Webhook {
    Webhook {
        value: json!({
            "clientId": "client-1",
            "scanRef": scan_ref,
            "externalRef": "ext-1",
            "platform": "PC",
            "startTime": 1_700_000_000,
            "finishTime": 1_700_000_100,
            "clientIp": "192.0.2.1",
            "clientIpCountry": "LT",
            "clientLocation": "Vilnius, Lithuania",
            "final": false,
            "status": {
                "overall": "REVIEWING",
                "suspicionReasons": [],
                "mismatchTags": [],
                "fraudTags": [],
                "autoDocument": "DOC_VALIDATED",
                "autoFace": "FACE_MATCH",
                "manualDocument": null,
                "manualFace": null,
                "additionalSteps": null
            },
            "data": {
                "docFirstName": "JONAS",
                "docLastName": "JONAITIS",
                "docNumber": "LT1234567",
                "docExpiry": "2030-01-01",
                "docDob": "1990-05-17",
                "docType": "ID_CARD",
                "docSex": "MALE",
                "docNationality": "LT",
                "docIssuingCountry": "LT"
            },
            "fileUrls": {},
            "AML": [],
            "LID": []
        }),
    }
}

impl Webhook {
    /// Sets `status.overall`.
    pub fn overall(mut self, overall: &str) -> Self {
        self.value["status"]["overall"] = json!(overall);
        self
    }

    /// Sets `final`.
    pub fn final_(mut self, is_final: bool) -> Self {
        self.value["final"] = json!(is_final);
        self
    }

    /// Removes `final`, as payloads from before 2021 lack it.
    pub fn without_final(mut self) -> Self {
        if let Some(o) = self.value.as_object_mut() {
            o.remove("final");
        }
        self
    }

    /// Sets `clientId`.
    pub fn client_id(mut self, client_id: &str) -> Self {
        self.value["clientId"] = json!(client_id);
        self
    }

    /// Sets a `data` field (camelCase name as iDenfy sends it).
    pub fn data(mut self, field: &str, value: Value) -> Self {
        self.value["data"][field] = value;
        self
    }

    /// Sets a `status` field.
    pub fn status(mut self, field: &str, value: Value) -> Self {
        self.value["status"][field] = value;
        self
    }

    /// Sets any top-level field.
    pub fn field(mut self, field: &str, value: Value) -> Self {
        self.value[field] = value;
        self
    }

    /// The JSON value.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The body bytes.
    pub fn build(&self) -> Vec<u8> {
        serde_json::to_vec(&self.value).expect("serialise")
    }
}
