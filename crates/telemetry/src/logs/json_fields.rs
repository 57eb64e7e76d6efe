//! Span fields for the JSON log lines, kept as one JSON object that later fields are appended to.
//!
//! `tracing-subscriber`'s own `JsonFields` parses a span's stored object and writes it anew each
//! time a field is recorded after the span was made. Verdict records on every request span when
//! the answer is known (the status, and for a webhook its `scan_ref` and `revision`): with
//! sixteen fields already there, those re-parses were about a sixteenth of the service's CPU under
//! `verdict-bench badsig` (perf). Appending writes only the new fields.
//!
//! A field recorded twice appears twice in the stored object; the JSON event format parses it
//! into a map before writing a line, where the later value wins, as it did before.

use std::fmt;

use tracing::span::Record;
use tracing_subscriber::field::{RecordFields, VisitOutput as _};
use tracing_subscriber::fmt::format::{JsonFields, JsonVisitor, Writer};
use tracing_subscriber::fmt::{FormatFields, FormattedFields};

/// The span-field formatter of the JSON log layer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AppendingJsonFields;

impl<'writer> FormatFields<'writer> for AppendingJsonFields {
    /// A span's first fields: exactly as `JsonFields` writes them.
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        JsonFields::new().format_fields(writer, fields)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        let mut added = String::new();
        let mut visitor = JsonVisitor::new(&mut added);
        fields.record(&mut visitor);
        visitor.finish()?;
        append(&mut current.fields, &added)
    }
}

/// Adds the members of the JSON object `added` to the JSON object `object` (empty: none yet).
fn append(object: &mut String, added: &str) -> fmt::Result {
    let members = added
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .ok_or(fmt::Error)?;
    if members.is_empty() {
        return Ok(());
    }
    if object.is_empty() {
        object.push_str(added);
        return Ok(());
    }
    if !object.ends_with('}') {
        return Err(fmt::Error);
    }
    object.pop();
    if object.len() > 1 {
        object.push(',');
    }
    object.push_str(members);
    object.push('}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use tracing::field::Empty;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn members_are_appended_to_an_object() {
        let mut object = String::new();
        append(&mut object, "{}").unwrap();
        assert_eq!(object, "");
        append(&mut object, r#"{"a":1}"#).unwrap();
        append(&mut object, "{}").unwrap();
        append(&mut object, r#"{"b":"x,}","c":null}"#).unwrap();
        assert_eq!(object, r#"{"a":1,"b":"x,}","c":null}"#);
        let mut empty_object = "{}".to_owned();
        append(&mut empty_object, r#"{"d":true}"#).unwrap();
        assert_eq!(empty_object, r#"{"d":true}"#);
    }

    #[test]
    fn what_is_not_an_object_is_an_error() {
        assert!(append(&mut String::new(), "[1]").is_err());
        assert!(append(&mut "{\"a\":1".to_owned(), r#"{"b":2}"#).is_err());
    }

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    #[test]
    fn a_line_carries_the_fields_recorded_after_its_span_was_made_the_later_value_winning() {
        let lines = Lines::default();
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .fmt_fields(AppendingJsonFields)
            .with_writer(lines.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span =
                tracing::info_span!("request", route = "/x", status = Empty, scan_ref = Empty);
            span.record("status", 401);
            span.record("scan_ref", "ref-1");
            span.record("scan_ref", "ref-2");
            span.in_scope(|| tracing::info!(answered = true, "done"));
        });
        let written = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(written.trim()).unwrap();
        assert_eq!(
            line["spans"],
            json!([{"name": "request", "route": "/x", "status": 401, "scan_ref": "ref-2"}])
        );
        assert_eq!(line["fields"]["answered"], json!(true));
    }
}
