//! A frozen copy of `verdict_domain::named_scan_ref` as of the 2026-11-29 lifecycle migration:
//! the case a raw body names, read from its top-level `scanRef` alone, and the loop that fills
//! `quarantine.scan_ref` for rows written before the column existed. Like
//! [`crate::fingerprint_2026_11`], it is never edited: rows written later get their `scan_ref`
//! from the application, and a test keeps the two readings in step.

use sea_orm_migration::prelude::*;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// iDenfy's documented maximum length of a `scanRef`, in characters.
const MAX_CHARS: usize = 36;

/// The first top-level `scanRef` of a JSON object — a string, or a number or boolean as its
/// text — when it is 1 to 36 characters, not blank, and free of control characters.
pub(crate) fn named_scan_ref(body: &[u8]) -> Option<String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let raw = de.deserialize_map(FirstScanRef).ok()??;
    let valid = !raw.trim().is_empty()
        && raw.chars().count() <= MAX_CHARS
        && !raw.chars().any(char::is_control);
    valid.then_some(raw)
}

/// Rows read per round trip: bodies are a few kilobytes, so a batch stays small in memory.
const BATCH: u64 = 500;

/// Reads the `body` of every row of `table` in `id` order, a batch at a time, and stores the
/// case it names in `scan_ref` (rows naming none keep NULL).
pub(crate) async fn backfill<C: Iden + Copy + 'static>(
    manager: &SchemaManager<'_>,
    [table, id, body, scan_ref]: [C; 4],
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let mut after = 0_i64;
    loop {
        let rows = db
            .query_all(
                &Query::select()
                    .columns([id, body])
                    .from(table)
                    .and_where(Expr::col(id).gt(after))
                    .order_by(id, Order::Asc)
                    .limit(BATCH)
                    .to_owned(),
            )
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        for row in rows {
            after = row.try_get_by_index(0)?;
            let Some(named) = named_scan_ref(&row.try_get_by_index::<Vec<u8>>(1)?) else {
                continue;
            };
            db.execute(
                &Query::update()
                    .table(table)
                    .value(scan_ref, named)
                    .and_where(Expr::col(id).eq(after))
                    .to_owned(),
            )
            .await?;
        }
    }
}

struct FirstScanRef;

impl<'de> Visitor<'de> for FirstScanRef {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        let mut found = None;
        while let Some(name) = map.next_key::<String>()? {
            if name == "scanRef" && found.is_none() {
                found = Some(map.next_value_seed(Text)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found.flatten())
    }
}

/// A string as it is; a number or a boolean as its text; anything else nothing.
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Option<String>, D::Error> {
        Ok(match serde_json::Value::deserialize(de)? {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_reads_as_the_application_does() {
        let bodies: [&[u8]; 16] = [
            include_bytes!("../../crates/domain/tests/fixtures/go-idenfy-webhook.json"),
            include_bytes!("../../crates/domain/tests/fixtures/idenfy-legacy-example.json"),
            br#"{"scanRef": 12345}"#,
            br#"{"scanRef": true}"#,
            br#"{"scanRef": "s-1", "clientId": "\ud83d"}"#,
            br#"{"scanRef": "first", "scanRef": "second"}"#,
            br#"{"data": {"scanRef": "inner"}}"#,
            br#"{"scanRef": null}"#,
            br#"{"scanRef": " "}"#,
            br#"{"scanRef": "a\u0000b"}"#,
            br#"{"scanRef": "0123456789012345678901234567890123456"}"#,
            "{\"scanRef\": \"r\u{e9}f-\u{1F600}\"}".as_bytes(),
            br#"["scanRef", "s"]"#,
            br#"{"scanRef": "s", "final": "#,
            b"not json",
            b"",
        ];
        for body in bodies {
            assert_eq!(
                named_scan_ref(body),
                verdict_domain::named_scan_ref(body).map(String::from),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
