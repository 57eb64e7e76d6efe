//! Span fields for the JSON log lines, written straight as JSON text and appended to.
//!
//! The fmt layer formats a span's fields when the span is made, whether or not a line is ever
//! written inside it, so this runs for every request span (sixteen fields, before the signature
//! is checked) and every gRPC method's span (each watch stream's); the gRPC SERVER spans and
//! watchers' delivery spans are trace-only and never reach it. `tracing-subscriber`'s own
//! `JsonFields` collects the fields into a map of `serde_json` values and serialises that; its
//! `add_fields` parses the stored object and writes it anew. Under `verdict-bench watch` (perf,
//! 10 000 watchers) that formatting was about a tenth of the service's CPU. Here each field is
//! written once, as text, into one allocation of its final size, and later fields are appended.
//!
//! The stored object is what a line's span list holds ([`super::json_line`] copies it), so each
//! field is in it once: a field recorded again (a span's `scan_ref` once the case is known, say)
//! replaces its earlier value. That takes parsing the object, which only such a record does.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::span::Record;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, FormattedFields};

/// The span-field formatter of the JSON log layer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AppendingJsonFields;

impl<'writer> FormatFields<'writer> for AppendingJsonFields {
    /// A span's first fields, as one JSON object (`{}` without any).
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut members = Members::default();
        fields.record(&mut members);
        let mut object = members.finish()?;
        object.push('}');
        // One write into the empty stored string: it is allocated at its final size and kept
        // for the span's life (a watch stream's spans live for hours).
        writer.write_str(&object)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        let mut members = Members::beside(&current.fields);
        fields.record(&mut members);
        let again = members.again;
        let opened = members.finish()?;
        match again {
            false => append(&mut current.fields, &opened[1..]),
            true => replace(&mut current.fields, opened),
        }
    }
}

/// Whether the JSON object `object`, as written here, has a member named `name`.
///
/// Exact for this text, which has no spaces and no nested objects: a `"` right after `{` or `,`
/// opens a member's name, since a `"` inside a string is written `\"`. Runs for every field
/// recorded after its span was made (a request's status, say), so it does not allocate for the
/// names that need no escaping, which is every name here.
fn has_member(object: &str, name: &str) -> bool {
    if name.bytes().any(needs_escape) {
        let mut escaped = String::with_capacity(name.len() + 2);
        push_escaped(&mut escaped, name);
        return has_escaped_member(object, &escaped);
    }
    has_escaped_member(object, name)
}

/// [`has_member`] for a name as it is written in JSON.
///
/// With `memchr`'s substring search: `str::match_indices` built a two-way searcher on every
/// call, which cost more than the search itself over these short objects.
fn has_escaped_member(object: &str, written: &str) -> bool {
    let bytes = object.as_bytes();
    memchr::memmem::find_iter(bytes, written.as_bytes()).any(|i| {
        let opened = i >= 2 && bytes[i - 1] == b'"' && matches!(bytes[i - 2], b'{' | b',');
        opened && bytes[i + written.len()..].starts_with(b"\":")
    })
}

/// `object` with the members of `opened` (an object's `{` and members, not closed) added, those
/// of the same name replacing the old ones.
fn replace(object: &mut String, mut opened: String) -> fmt::Result {
    opened.push('}');
    let parse = |text: &str| {
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
            .map_err(|_| fmt::Error)
    };
    let mut merged = parse(object)?;
    merged.extend(parse(&opened)?);
    *object = serde_json::to_string(&merged).map_err(|_| fmt::Error)?;
    Ok(())
}

/// Adds `members` (JSON object members, comma-separated, possibly none) to the JSON object
/// `object` (empty: none yet).
fn append(object: &mut String, members: &str) -> fmt::Result {
    if members.is_empty() {
        return Ok(());
    }
    if object.is_empty() {
        object.reserve_exact(members.len() + 2);
        object.push('{');
        object.push_str(members);
        object.push('}');
        return Ok(());
    }
    if !object.starts_with('{') || !object.ends_with('}') {
        return Err(fmt::Error);
    }
    object.pop();
    object.reserve_exact(members.len() + 2);
    if object.len() > 1 {
        object.push(',');
    }
    object.push_str(members);
    object.push('}');
    Ok(())
}

/// Writes each field visited as a JSON object member (`"name":value`), after a `{`.
#[derive(Debug)]
struct Members<'a> {
    /// `{` and the members so far.
    text: String,
    /// The object these members will be added to, if any.
    existing: Option<&'a str>,
    /// Some member is in `existing` already.
    again: bool,
    /// A field whose `Debug` failed: the whole formatting fails, as it would in `JsonFields`.
    failed: bool,
}

impl Default for Members<'_> {
    fn default() -> Self {
        // Room for a request span's sixteen fields, so the text is not regrown field by field.
        let mut text = String::with_capacity(512);
        text.push('{');
        Self {
            text,
            existing: None,
            again: false,
            failed: false,
        }
    }
}

impl<'a> Members<'a> {
    /// Members to be added to the object `existing`.
    fn beside(existing: &'a str) -> Self {
        Self {
            existing: Some(existing),
            ..Self::default()
        }
    }

    /// `{` and the members, not closed.
    fn finish(self) -> Result<String, fmt::Error> {
        match self.failed {
            true => Err(fmt::Error),
            false => Ok(self.text),
        }
    }

    /// Starts the member `field`, ready for its value.
    fn key(&mut self, field: &Field) {
        if self.text.len() > 1 {
            self.text.push(',');
        }
        let name = field.name();
        // A raw identifier (`r#type`) is logged under its plain name, as `JsonFields` does.
        let name = name.strip_prefix("r#").unwrap_or(name);
        if let Some(existing) = self.existing {
            self.again |= has_member(existing, name);
        }
        self.string(name);
        self.text.push(':');
    }

    /// `value` as a JSON string.
    fn string(&mut self, value: &str) {
        self.text.push('"');
        push_escaped(&mut self.text, value);
        self.text.push('"');
    }

    /// A number or `true`/`false`, which are their own JSON text.
    fn literal(&mut self, field: &Field, value: impl fmt::Display) {
        self.key(field);
        // Writing into a String cannot fail.
        let _ = write!(self.text, "{value}");
    }
}

impl Visit for Members<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        match value.is_finite() {
            true => self.literal(field, value),
            // JSON has no NaN or infinity; serde_json writes them as null too.
            false => self.literal(field, "null"),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.literal(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.literal(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.literal(field, value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        self.string(value);
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.key(field);
        self.text.push('[');
        for (i, byte) in value.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            let _ = write!(self.text, "{byte}");
        }
        self.text.push(']');
    }

    /// `Debug` and `Display` values (`?x`, `%x`, and integers wider than 64 bits) as strings.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        self.text.push('"');
        if write!(Escaping(&mut self.text), "{value:?}").is_err() {
            self.failed = true;
        }
        self.text.push('"');
    }
}

/// A `fmt::Write` that JSON-escapes what it is given, so a `Debug` value is escaped as it is
/// formatted rather than formatted into a string of its own first.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_escaped(self.0, s);
        Ok(())
    }
}

/// Appends `s` with the characters JSON strings cannot hold as they are escaped.
///
/// Nearly every string needs no escaping, so that is checked first, in one pass that never
/// stops early (the compiler vectorises it), and the string copied whole. Every field of every
/// request's and gRPC method's span comes through here: a byte at a time it was the largest part
/// of refusing a bad signature after the HMAC itself (callgrind: 5 450 of the 67 000
/// instructions besides SHA-256).
pub(super) fn push_escaped(out: &mut String, s: &str) {
    if !s.bytes().fold(false, |any, byte| any | needs_escape(byte)) {
        out.push_str(s);
        return;
    }
    let mut plain = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Everything up to here is plain text; `byte` is ASCII, so `i` is a char boundary.
        out.push_str(&s[plain..i]);
        plain = i + 1;
        match escape.is_empty() {
            true => {
                let _ = write!(out, "\\u{byte:04x}");
            }
            false => out.push_str(escape),
        }
    }
    out.push_str(&s[plain..]);
}

/// A control character, `"` or `\`: what a JSON string cannot hold as it is.
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use tracing::field::Empty;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::fmt::format::JsonFields;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::super::json_line::JsonLine;
    use super::super::trace_ids::DispatchSlot;
    use super::*;

    #[test]
    fn members_are_appended_to_an_object() {
        let mut object = String::new();
        append(&mut object, "").unwrap();
        assert_eq!(object, "");
        append(&mut object, r#""a":1"#).unwrap();
        append(&mut object, "").unwrap();
        append(&mut object, r#""b":"x,}","c":null"#).unwrap();
        assert_eq!(object, r#"{"a":1,"b":"x,}","c":null}"#);
        let mut empty_object = "{}".to_owned();
        append(&mut empty_object, r#""d":true"#).unwrap();
        assert_eq!(empty_object, r#"{"d":true}"#);
    }

    #[test]
    fn what_is_not_an_object_is_an_error() {
        assert!(append(&mut "[1]".to_owned(), r#""b":2"#).is_err());
        assert!(append(&mut "{\"a\":1".to_owned(), r#""b":2"#).is_err());
    }

    #[test]
    fn escaped_text_is_what_serde_json_reads_back() {
        let nasty = "quote \" backslash \\ nl \n cr \r tab \t bell \u{7} nul \0 bs \u{8} ff \u{c} \
                     us \u{1f} del \u{7f} é ✓ 🦀 end";
        let mut out = String::from("\"");
        push_escaped(&mut out, nasty);
        out.push('"');
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), nasty);
    }

    /// Every ASCII byte at every place of a string long enough to be checked in vectors, among
    /// plain and multi-byte text: the text is what serde_json writes, byte for byte.
    #[test]
    fn escaping_is_serde_json_s_wherever_the_byte_falls() {
        for byte in 0..=0x7f_u8 {
            let odd = char::from(byte);
            for at in 0..=40 {
                for filler in [
                    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ",
                    "é✓🦀é✓🦀é✓🦀é✓🦀é✓🦀",
                ] {
                    let mut text: String = filler.chars().take(at).collect();
                    text.push(odd);
                    text.push_str(filler);
                    let mut ours = String::from("\"");
                    push_escaped(&mut ours, &text);
                    ours.push('"');
                    assert_eq!(
                        ours,
                        serde_json::to_string(&text).unwrap(),
                        "{byte:#04x} at {at}"
                    );
                }
            }
        }
    }

    /// The stored object of one span made and recorded with `fields`, under `F`.
    fn stored<F>(fields: F) -> Value
    where
        F: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        #[derive(Debug)]
        struct Weird;
        let line = logged_line(fields, || {
            let span = tracing::info_span!(
                "request",
                text = "a \"quoted\"\nline ✓",
                negative = -7_i64,
                big = u64::MAX,
                yes = true,
                ratio = 0.25_f64,
                nan = f64::NAN,
                wide = 1_u128 << 100,
                shown = %"display \"me\"",
                debugged = ?Weird,
                r#type = "raw",
                bytes = &b"\x00\xff"[..],
                later = Empty,
                unset = Empty,
            );
            span.record("later", "recorded");
            span.record("text", "replaced");
            span.in_scope(|| tracing::info!("inside"));
        });
        line["spans"][0].clone()
    }

    /// The one line written while `inside` runs under a JSON layer set up as the service's,
    /// with `fields` as its span-field formatter.
    fn logged_line<F>(fields: F, inside: impl FnOnce()) -> Value
    where
        F: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        serde_json::from_str(service_text(fields, inside).text().trim()).unwrap()
    }

    /// What `tracing-subscriber`'s JSON format alone writes for the same events: its own span
    /// list and span-field formatter. Timestamps left out.
    fn their_lines(inside: impl FnOnce()) -> Vec<Value> {
        let lines = Lines::default();
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(lines.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), inside);
        lines.parsed()
    }

    /// The lines of a JSON layer set up as the service's. Timestamps left out.
    fn our_lines(inside: impl FnOnce()) -> Vec<Value> {
        service_text(AppendingJsonFields, inside).parsed()
    }

    /// What a JSON layer set up as the service's writes while `inside` runs, with `fields` as
    /// its span-field formatter.
    fn service_text<F>(fields: F, inside: impl FnOnce()) -> Lines
    where
        F: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        let lines = Lines::default();
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .fmt_fields(fields)
            .map_event_format(|inner| JsonLine::new(inner, DispatchSlot::default()))
            .with_writer(lines.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), inside);
        lines
    }

    /// Events outside any span, in nested spans (one of them recorded again between lines),
    /// with an explicit parent and as an explicit root.
    fn events() {
        tracing::info!(n = 1, "outside");
        let outer = tracing::info_span!("outer", route = "/x", scan_ref = Empty);
        let inner = tracing::info_span!(parent: &outer, "inner \"quoted\"", step = 2);
        let _entered = outer.enter();
        tracing::warn!("in outer");
        inner.in_scope(|| tracing::info!(done = true, "in inner"));
        outer.record("scan_ref", "ref-1");
        outer.record("scan_ref", "ref-2");
        inner.in_scope(|| tracing::info!("in inner again"));
        tracing::info!(parent: &inner, "parented");
        tracing::info!(parent: None, "root");
    }

    #[test]
    fn lines_are_what_tracing_subscriber_writes() {
        let ours = our_lines(events);
        assert_eq!(ours, their_lines(events));
        // Spelled out, so that a change in both cannot pass unnoticed.
        assert_eq!(ours.len(), 6);
        assert!(ours[0].get("spans").is_none(), "outside any span: no list");
        assert_eq!(
            ours[3]["spans"],
            json!([
                {"name": "outer", "route": "/x", "scan_ref": "ref-2"},
                {"name": "inner \"quoted\"", "step": 2},
            ])
        );
        assert_eq!(ours[3]["fields"]["message"], json!("in inner again"));
        // Parsing keeps the last of two members of one name: the text must have one only.
        let text = service_text(AppendingJsonFields, events).text();
        let last = text.lines().nth(3).unwrap();
        assert_eq!(last.matches(r#""scan_ref":"#).count(), 1, "{last}");
    }

    #[test]
    fn a_member_is_found_by_its_name_only() {
        let object = r#"{"a":1,"b":"x,\"c\":2","d.e":true}"#;
        assert!(has_member(object, "a"));
        assert!(has_member(object, "b"));
        assert!(has_member(object, "d.e"));
        assert!(!has_member(object, "c"), "inside a string value");
        assert!(!has_member(object, "d"));
        assert!(!has_member("", "a"));
        assert!(!has_member(r#"{"ab":1}"#, "b"), "the end of another name");
        assert!(!has_member(r#"{"ab":1}"#, "a"), "the start of another name");
        let escaped = r#"{"q\"uote":1}"#;
        assert!(has_member(escaped, "q\"uote"), "a name that needs escaping");
        assert!(!has_member(escaped, "uote"));
    }

    #[test]
    fn a_field_recorded_again_replaces_the_earlier_value() {
        let mut object = r#"{"a":1,"b":"x"}"#.to_owned();
        replace(&mut object, r#"{"b":"y","c":null"#.to_owned()).unwrap();
        let merged: Value = serde_json::from_str(&object).unwrap();
        assert_eq!(merged, json!({"a": 1, "b": "y", "c": null}));
        assert!(replace(&mut "[1]".to_owned(), r#"{"a":1"#.to_owned()).is_err());
    }

    #[test]
    fn a_span_logs_the_same_fields_as_with_json_fields() {
        let ours = stored(AppendingJsonFields);
        assert_eq!(ours, stored(JsonFields::new()));
        // What both wrote, spelled out, so a change in both cannot pass unnoticed.
        assert_eq!(ours["text"], json!("replaced"));
        assert_eq!(ours["big"], json!(u64::MAX));
        assert_eq!(ours["nan"], Value::Null);
        assert_eq!(ours["shown"], json!("display \"me\""));
        assert_eq!(ours["debugged"], json!("Weird"));
        assert_eq!(ours["type"], json!("raw"));
        assert_eq!(ours["later"], json!("recorded"));
        assert!(ours.get("unset").is_none());
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

    impl Lines {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }

        /// Each line written, as JSON, without its timestamp.
        fn parsed(&self) -> Vec<Value> {
            self.text()
                .lines()
                .map(|line| {
                    let mut value: Value = serde_json::from_str(line).unwrap();
                    value.as_object_mut().unwrap().remove("timestamp");
                    value
                })
                .collect()
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
        let line = logged_line(AppendingJsonFields, || {
            let span =
                tracing::info_span!("request", route = "/x", status = Empty, scan_ref = Empty);
            span.record("status", 401);
            span.record("scan_ref", "ref-1");
            span.record("scan_ref", "ref-2");
            span.in_scope(|| tracing::info!(answered = true, "done"));
        });
        assert_eq!(
            line["spans"],
            json!([{"name": "request", "route": "/x", "status": 401, "scan_ref": "ref-2"}])
        );
        assert_eq!(line["fields"]["answered"], json!(true));
    }
}
