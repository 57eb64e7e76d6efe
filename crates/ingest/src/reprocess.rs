//! The reprocess pass: every quarantined delivery still waiting, ingested again as of its
//! original arrival. One loop for `verdict quarantine reprocess` and
//! `AdminService.ReprocessQuarantine`.

use verdict_domain::{ErrorKind, Recorded};

use crate::{Error, Ingest};

/// Items read from the store at a time: bodies are a few kilobytes each.
const PAGE: u32 = 100;

/// What became of one quarantined delivery in a reprocess pass.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per item, lent to a callback at once: boxing the case would only add an allocation"
)]
pub enum Reprocessed {
    /// Ingested again: recorded (applied, duplicate or stale, and released), or quarantined
    /// again with the reason it has now.
    Ingested { id: i64, recorded: Recorded },
    /// Another reprocess released it first; `why` says so.
    Skipped { id: i64, why: String },
}

impl Reprocessed {
    /// The quarantine item.
    pub fn id(&self) -> i64 {
        match self {
            Self::Ingested { id, .. } | Self::Skipped { id, .. } => *id,
        }
    }
}

/// The counts of a reprocess pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReprocessSummary {
    /// Recorded on their case and released.
    pub recorded: u32,
    /// Still unusable: they wait on.
    pub waiting: u32,
    /// Released by someone else meanwhile.
    pub skipped: u32,
}

impl Ingest {
    /// Reprocesses up to `limit` waiting items, oldest first, telling `each` what became of
    /// every one as it goes. Stops at the first failure other than an item someone else
    /// released (the items before it are done; running the pass again takes up the rest).
    pub async fn reprocess_waiting(
        &self,
        limit: u32,
        mut each: impl FnMut(&Reprocessed),
    ) -> Result<ReprocessSummary, Error> {
        let mut summary = ReprocessSummary::default();
        let mut left = limit;
        let mut after = 0;
        while left > 0 {
            let page = self.store.quarantined(after, left.min(PAGE)).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.id;
            left = left.saturating_sub(page.len() as u32);
            for item in page {
                let id = item.id;
                let done = match self.reprocess(item).await {
                    Ok(recorded) => {
                        match &recorded {
                            Recorded::Quarantined { .. } => summary.waiting += 1,
                            Recorded::Applied { .. }
                            | Recorded::Duplicate { .. }
                            | Recorded::Stale { .. } => summary.recorded += 1,
                        }
                        Reprocessed::Ingested { id, recorded }
                    }
                    Err(err) if err.kind() == ErrorKind::NotFound => {
                        summary.skipped += 1;
                        Reprocessed::Skipped {
                            id,
                            why: err.to_string(),
                        }
                    }
                    Err(err) => return Err(err),
                };
                each(&done);
            }
        }
        Ok(summary)
    }
}
