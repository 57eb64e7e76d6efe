//! The audit trail of personal data served and erased: one event (tracing target
//! `verdict::audit`) per response that carries a `person`, naming who got which cases, never
//! what they got; and one per erasure request (`AdminService.PurgeCase`), naming who erased
//! which case.
//!
//! Streams write one event per delivered change or snapshot: a FULL watcher of a busy feed
//! writes as many events as it receives cases, which is the point of an audit trail.

use std::fmt;

use verdict_domain::Purge;
use verdict_proto::verdict::v1 as pb;

use crate::auth::Caller;

/// The tracing target of audit events, for log routing (`RUST_LOG` must keep it at `info`).
pub const AUDIT_TARGET: &str = "verdict::audit";

/// What to audit for one call or stream; only built for the view that carries personal data.
#[derive(Debug, Clone)]
pub(crate) struct Audit {
    caller: Caller,
    method: &'static str,
}

impl Audit {
    /// `None` unless `view` is FULL: BASIC holds no personal data (DESIGN §10).
    pub(crate) fn of(caller: &Caller, method: &'static str, view: pb::CaseView) -> Option<Self> {
        (view == pb::CaseView::Full).then(|| Self {
            caller: caller.clone(),
            method,
        })
    }

    /// Records that the cases `scan_refs` were served with their personal data.
    pub(crate) fn served<'a, I>(&self, scan_refs: I)
    where
        I: IntoIterator<Item = &'a str>,
        I::IntoIter: Clone,
    {
        let scan_refs = Joined(scan_refs.into_iter());
        tracing::info!(
            target: AUDIT_TARGET,
            caller = self.caller.name(),
            method = self.method,
            view = "FULL",
            count = scan_refs.0.clone().count(),
            scan_refs = %scan_refs,
            "personal data served"
        );
    }
}

/// Records that `caller` asked to erase the personal data of `purge`'s case, through
/// `method`: an erasure is audited whatever it found (`erased` false: nothing was left).
pub(crate) fn erased(caller: &Caller, method: &'static str, purge: &Purge) {
    tracing::info!(
        target: AUDIT_TARGET,
        caller = caller.name(),
        method,
        scan_refs = %purge.case.scan_ref,
        revision = purge.case.revision,
        erased = purge.position.is_some(),
        "personal data erased"
    );
}

/// scanRefs as one comma-separated field, written straight into the event.
struct Joined<I>(I);

impl<'a, I: Iterator<Item = &'a str> + Clone> fmt::Display for Joined<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, scan_ref) in self.0.clone().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            f.write_str(scan_ref)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_full_view_is_audited() {
        let caller = Caller::anonymous();
        assert!(Audit::of(&caller, "m", pb::CaseView::Basic).is_none());
        assert!(Audit::of(&caller, "m", pb::CaseView::Unspecified).is_none());
        assert!(Audit::of(&caller, "m", pb::CaseView::Full).is_some());
    }

    #[test]
    fn scan_refs_are_joined_by_commas() {
        assert_eq!(Joined(["a", "b", "c"].into_iter()).to_string(), "a,b,c");
        assert_eq!(Joined(std::iter::empty::<&str>()).to_string(), "");
    }
}
