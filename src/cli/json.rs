//! JSON rendering of API messages for the CLI, in the protobuf JSON mapping's field names
//! (lowerCamelCase, enum names), so `verdict get` and `buf curl` print the same shapes.

use prost_types::Timestamp;
use serde_json::{Map, Value, json};
use verdict_proto::verdict::v1::{Case, CaseEvent, Decision, Person};

/// A case as a JSON object; empty fields are left out, as protobuf JSON does.
pub(super) fn case(c: &Case) -> Value {
    let mut m = Map::new();
    put(&mut m, "scanRef", &c.scan_ref);
    put(&mut m, "clientId", &c.client_id);
    put(&mut m, "externalRef", &c.external_ref);
    let decision = Decision::try_from(c.decision).unwrap_or(Decision::Unspecified);
    m.insert("decision".into(), json!(decision.as_str_name()));
    m.insert("final".into(), json!(c.r#final));
    put(&mut m, "overallStatus", &c.overall_status);
    put(&mut m, "lastEventType", &c.last_event_type);
    m.insert("revision".into(), json!(c.revision.to_string()));
    put(&mut m, "autoDocument", &c.auto_document);
    put(&mut m, "autoFace", &c.auto_face);
    put(&mut m, "manualDocument", &c.manual_document);
    put(&mut m, "manualFace", &c.manual_face);
    list(&mut m, "fraudTags", &c.fraud_tags);
    list(&mut m, "mismatchTags", &c.mismatch_tags);
    list(&mut m, "suspicionReasons", &c.suspicion_reasons);
    time(&mut m, "createdAt", c.created_at.as_ref());
    time(&mut m, "updatedAt", c.updated_at.as_ref());
    time(&mut m, "finalizedAt", c.finalized_at.as_ref());
    if let Some(p) = &c.person {
        m.insert("person".into(), person(p));
    }
    if !c.history.is_empty() {
        m.insert("history".into(), c.history.iter().map(event).collect());
    }
    Value::Object(m)
}

fn person(p: &Person) -> Value {
    let mut m = Map::new();
    put(&mut m, "firstName", &p.first_name);
    put(&mut m, "lastName", &p.last_name);
    put(&mut m, "dateOfBirth", &p.date_of_birth);
    put(&mut m, "nationality", &p.nationality);
    put(&mut m, "sex", &p.sex);
    put(&mut m, "documentType", &p.document_type);
    put(&mut m, "documentNumber", &p.document_number);
    put(&mut m, "documentExpiry", &p.document_expiry);
    put(&mut m, "issuingCountry", &p.issuing_country);
    Value::Object(m)
}

fn event(e: &CaseEvent) -> Value {
    let mut m = Map::new();
    put(&mut m, "eventType", &e.event_type);
    m.insert("final".into(), json!(e.r#final));
    put(&mut m, "outcome", &e.outcome);
    m.insert("revision".into(), json!(e.revision.to_string()));
    put(&mut m, "overallStatus", &e.overall_status);
    time(&mut m, "receivedAt", e.received_at.as_ref());
    Value::Object(m)
}

fn put(m: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        m.insert(key.into(), json!(value));
    }
}

fn list(m: &mut Map<String, Value>, key: &str, values: &[String]) {
    if !values.is_empty() {
        m.insert(key.into(), json!(values));
    }
}

fn time(m: &mut Map<String, Value>, key: &str, t: Option<&Timestamp>) {
    if let Some(t) = t {
        m.insert(key.into(), json!(rfc3339(t)));
    }
}

/// RFC 3339 in UTC, as protobuf JSON renders a Timestamp.
pub(super) fn rfc3339(t: &Timestamp) -> String {
    chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}
