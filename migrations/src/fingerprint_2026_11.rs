//! A frozen copy of `verdict_domain::Fingerprint` as of the 2026-11-29 migrations, and the loop
//! with which they fill in the hashes of rows written before them. Migrations never depend on the application's code
//! (it moves on; a migration must not), so the algorithm is copied here and never edited: rows
//! written later are hashed by the application, and a test keeps the two in step for as long as
//! the application's algorithm stays this one.

use sea_orm_migration::prelude::*;
use serde::Deserializer;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// Top-level members a resend re-signs (`verdict_domain::fingerprint::RESIGNED_MEMBERS`).
const RESIGNED_MEMBERS: [&str; 2] = ["fileUrls", "additionalStepPdfUrls"];

/// `(body_sha256, content_sha256)` of a raw body, lowercase hex.
pub(crate) fn fingerprint(body: &[u8]) -> (String, String) {
    let body_sha256 = Sha256::digest(body);
    let content_sha256 = content_sha256(body).unwrap_or(body_sha256);
    (hex::encode(body_sha256), hex::encode(content_sha256))
}

/// Rows hashed per round trip: bodies are a few kilobytes, so a batch stays small in memory.
const BATCH: u64 = 500;

/// Fingerprints the `body` of every row of `table`, in `id` order a batch at a time, and stores
/// the raw body hash in `body_sha256` (when given) and the content hash in `content_sha256`.
pub(crate) async fn backfill<C: Iden + Copy + 'static>(
    manager: &SchemaManager<'_>,
    [table, id, body]: [C; 3],
    body_sha256: Option<C>,
    content_sha256: C,
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
            let (raw_hash, content_hash) = fingerprint(&row.try_get_by_index::<Vec<u8>>(1)?);
            let mut update = Query::update();
            update
                .table(table)
                .value(content_sha256, content_hash)
                .and_where(Expr::col(id).eq(after));
            if let Some(column) = body_sha256 {
                update.value(column, raw_hash);
            }
            db.execute(&update).await?;
        }
    }
}

type Digest256 = sha2::digest::Output<Sha256>;

fn content_sha256(body: &[u8]) -> Option<Digest256> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let digest = de.deserialize_map(ContentHasher).ok()?;
    de.end().ok()?;
    Some(digest)
}

struct ContentHasher;

impl<'de> Visitor<'de> for ContentHasher {
    type Value = Digest256;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Digest256, A::Error> {
        let mut hasher = Sha256::new();
        while let Some(name) = map.next_key::<String>()? {
            if RESIGNED_MEMBERS.contains(&name.as_str()) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value: &RawValue = map.next_value()?;
            for part in [name.as_bytes(), value.get().as_bytes()] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part);
            }
        }
        Ok(hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use verdict_domain::Fingerprint;

    use super::*;

    #[test]
    fn the_copy_hashes_as_the_application_does() {
        let bodies: [&[u8]; 7] = [
            include_bytes!("../../crates/domain/tests/fixtures/go-idenfy-webhook.json"),
            include_bytes!("../../crates/domain/tests/fixtures/idenfy-legacy-example.json"),
            br#"{"scanRef":"s","fileUrls":{"FACE":"x"},"additionalStepPdfUrls":null,"n":1.50}"#,
            br#"{"scanRef":"s","data":{"orgBirthPlace":"\ud83d"}}"#,
            b"not json",
            b"[1,2]",
            b"",
        ];
        for body in bodies {
            let live = Fingerprint::of(body);
            assert_eq!(
                fingerprint(body),
                (live.body_sha256, live.content_sha256),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
