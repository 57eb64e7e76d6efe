//! `ListCases`: filtered pages of cases, most recently changed first.

use tonic::Status;
use verdict_domain::{CaseQuery, Cursor};
use verdict_proto::verdict::v1 as pb;

use super::{CaseApi, authorize, check_key, view};
use crate::{audit::Audit, auth::Caller, convert, status};

/// `rpc.method` of this call, as audit events name it.
const METHOD: &str = "verdict.v1.CaseService/ListCases";

/// Page size when the request leaves it at 0.
const DEFAULT_PAGE_SIZE: u32 = 50;
/// Larger requests are clamped to this, as AIP-158 suggests, rather than refused.
const MAX_PAGE_SIZE: u32 = 500;

/// One page. The page token is the opaque feed position the store says the next page starts
/// before ([`CaseQuery::before`]); the filters must stay the same across pages.
///
/// The first page also carries a `watch_cursor`: the feed's head, read *before* the page. Every
/// change after it is either already reflected in the page or comes on a `WatchCases` stream
/// started there, so list-then-watch misses nothing; a change in both is seen twice, and the
/// client keeps the higher revision.
#[tracing::instrument(name = "list_cases", skip_all, fields(page_size = req.page_size))]
pub(super) async fn list_cases(
    api: &CaseApi,
    caller: Caller,
    req: pb::ListCasesRequest,
) -> Result<pb::ListCasesResponse, Status> {
    let view = view(req.view)?;
    authorize(&caller, view)?;
    if !req.client_id.is_empty() {
        check_key("client_id", &req.client_id)?;
    }
    let limit = page_size(req.page_size)?;
    let decision = pb::Decision::try_from(req.decision)
        .map_err(|_| status::invalid_argument(format!("unknown decision {}", req.decision)))?;
    let before = page_token(&req.page_token)?;
    let watch_cursor = match before {
        None => Some(api.store.feed_head().await.map_err(status::from_domain)?),
        Some(_) => None,
    };
    let query = CaseQuery {
        client_id: (!req.client_id.is_empty()).then_some(req.client_id),
        decision: convert::decision_from_proto(decision),
        is_final: req.r#final,
        limit,
        before,
        with_person: view == pb::CaseView::Full,
    };
    let page = api
        .store
        .list_cases(&query)
        .await
        .map_err(status::from_domain)?;
    if let Some(audit) = Audit::of(&caller, METHOD, view).filter(|_| !page.cases.is_empty()) {
        audit.served(page.cases.iter().map(|case| case.scan_ref.as_str()));
    }
    Ok(pb::ListCasesResponse {
        cases: page
            .cases
            .into_iter()
            .map(|case| convert::case_to_proto(&case, view))
            .collect(),
        next_page_token: page.next.map(Cursor::encode).unwrap_or_default(),
        watch_cursor: watch_cursor.map(Cursor::encode).unwrap_or_default(),
    })
}

/// 0 means the default, above the maximum is clamped, negative is a caller bug.
fn page_size(raw: i32) -> Result<u32, Status> {
    match u32::try_from(raw) {
        Err(_) => Err(status::invalid_argument(format!(
            "page_size must not be negative, got {raw}"
        ))),
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) => Ok(n.min(MAX_PAGE_SIZE)),
    }
}

/// Empty is the first page. Otherwise the opaque token we handed out; anything else is refused.
fn page_token(raw: &str) -> Result<Option<Cursor>, Status> {
    if raw.is_empty() {
        return Ok(None);
    }
    Cursor::decode(raw)
        .map(Some)
        .map_err(|_| status::invalid_argument("malformed page_token"))
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn page_size_defaults_clamps_and_refuses_negative() {
        assert_eq!(page_size(0).unwrap(), 50);
        assert_eq!(page_size(1).unwrap(), 1);
        assert_eq!(page_size(500).unwrap(), 500);
        assert_eq!(page_size(501).unwrap(), 500);
        assert_eq!(page_size(i32::MAX).unwrap(), 500);
        assert_eq!(page_size(-1).unwrap_err().code(), Code::InvalidArgument);
    }

    #[test]
    fn empty_page_token_is_the_first_page_not_position_zero() {
        assert_eq!(page_token("").unwrap(), None);
        assert_eq!(page_token(&Cursor(42).encode()).unwrap(), Some(Cursor(42)));
    }

    #[test]
    fn garbage_page_token_is_invalid_argument() {
        for bad in ["x", "v1.", "v1.zz", "v2.10"] {
            assert_eq!(
                page_token(bad).unwrap_err().code(),
                Code::InvalidArgument,
                "{bad}"
            );
        }
    }
}
