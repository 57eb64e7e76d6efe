//! `verdict.v1.AdminService`: the operator's calls, each a thin entrance to a use case that the
//! command line shares — `PurgeCase` to the lifecycle use case (`verdict purge --scan-ref`),
//! `ReprocessQuarantine` to the ingest use case's reprocess pass (`verdict quarantine
//! reprocess`), `ListQuarantine` to the store (`verdict quarantine list`). Every call needs
//! the scope `admin`; a purge is written to the audit trail (who erased what).

use std::sync::Arc;

use tonic::{Request, Response, Status};
use verdict_domain::{CaseStore, Cursor};
use verdict_ingest::Ingest;
use verdict_lifecycle::Lifecycle;
use verdict_proto::verdict::v1::{self as pb, admin_service_server::AdminService};

use crate::{
    audit,
    auth::{Caller, Scope},
    convert,
    service::check_key,
    status,
};

/// `rpc.method` of `PurgeCase`, as audit events name it.
const PURGE_METHOD: &str = "verdict.v1.AdminService/PurgeCase";

/// `ListQuarantine` page size when the request leaves it at 0, and the most it gets.
const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 500;

/// `ReprocessQuarantine` items when the request leaves `limit` at 0, and the most one call
/// takes (the call answers once they are all done).
const DEFAULT_REPROCESS: u32 = 100;
const MAX_REPROCESS: u32 = 1000;

/// The use cases `AdminService` hands its calls to, built once by the application.
#[derive(Debug, Clone)]
pub struct AdminUseCases {
    /// Purges (`PurgeCase`).
    pub lifecycle: Lifecycle,
    /// Reprocesses the quarantine (`ReprocessQuarantine`).
    pub ingest: Ingest,
}

/// The service implementation.
#[derive(Debug)]
pub(crate) struct AdminApi {
    store: Arc<dyn CaseStore>,
    use_cases: AdminUseCases,
}

impl AdminApi {
    pub(crate) fn new(store: Arc<dyn CaseStore>, use_cases: AdminUseCases) -> Self {
        Self { store, use_cases }
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    #[tracing::instrument(name = "purge_case", skip_all, fields(scan_ref = %request.get_ref().scan_ref))]
    async fn purge_case(
        &self,
        request: Request<pb::PurgeCaseRequest>,
    ) -> Result<Response<pb::PurgeCaseResponse>, Status> {
        let caller = admin(&request)?;
        let scan_ref = request.into_inner().scan_ref;
        check_key("scan_ref", &scan_ref)?;
        let purge = self
            .use_cases
            .lifecycle
            .purge_case(&scan_ref)
            .await
            .map_err(status::from_lifecycle)?;
        audit::erased(&caller, PURGE_METHOD, &purge);
        Ok(Response::new(pb::PurgeCaseResponse {
            case: Some(convert::case_to_proto(&purge.case, pb::CaseView::Basic)),
        }))
    }

    #[tracing::instrument(name = "list_quarantine", skip_all)]
    async fn list_quarantine(
        &self,
        request: Request<pb::ListQuarantineRequest>,
    ) -> Result<Response<pb::ListQuarantineResponse>, Status> {
        admin(&request)?;
        let request = request.into_inner();
        let limit = bounded(
            "page_size",
            request.page_size,
            DEFAULT_PAGE_SIZE,
            MAX_PAGE_SIZE,
        )?;
        let after = match request.page_token.as_str() {
            "" => 0,
            token => Cursor::decode(token)
                .ok()
                .and_then(|cursor| i64::try_from(cursor.0).ok())
                .ok_or_else(|| status::invalid_argument("malformed page_token"))?,
        };
        let mut items = self
            .store
            .quarantined(after, limit + 1)
            .await
            .map_err(status::from_domain)?;
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_page_token = match items.last() {
            Some(last) if more => Cursor(last.id.unsigned_abs()).encode(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListQuarantineResponse {
            items: items
                .into_iter()
                .map(convert::quarantine_item_to_proto)
                .collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(name = "reprocess_quarantine", skip_all)]
    async fn reprocess_quarantine(
        &self,
        request: Request<pb::ReprocessQuarantineRequest>,
    ) -> Result<Response<pb::ReprocessQuarantineResponse>, Status> {
        admin(&request)?;
        let limit = bounded(
            "limit",
            request.into_inner().limit,
            DEFAULT_REPROCESS,
            MAX_REPROCESS,
        )?;
        let mut items = Vec::new();
        let summary = self
            .use_cases
            .ingest
            .reprocess_waiting(limit, |done| {
                items.push(convert::reprocessed_to_proto(done))
            })
            .await
            .map_err(status::from_ingest)?;
        Ok(Response::new(pb::ReprocessQuarantineResponse {
            items,
            recorded: summary.recorded,
            waiting: summary.waiting,
            skipped: summary.skipped,
        }))
    }
}

/// The caller, if it holds the scope `admin`.
fn admin<T>(request: &Request<T>) -> Result<Caller, Status> {
    let caller = Caller::of(request)?;
    caller.require(Scope::Admin)?;
    Ok(caller)
}

/// A count from a request: 0 means the default, above the maximum is clamped, negative is a
/// caller bug.
fn bounded(field: &str, raw: i32, default: u32, max: u32) -> Result<u32, Status> {
    match u32::try_from(raw) {
        Err(_) => Err(status::invalid_argument(format!(
            "{field} must not be negative, got {raw}"
        ))),
        Ok(0) => Ok(default),
        Ok(n) => Ok(n.min(max)),
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn counts_default_clamp_and_refuse_negative() {
        assert_eq!(bounded("limit", 0, 100, 1000).unwrap(), 100);
        assert_eq!(bounded("limit", 7, 100, 1000).unwrap(), 7);
        assert_eq!(bounded("limit", 5000, 100, 1000).unwrap(), 1000);
        let refused = bounded("limit", -1, 100, 1000).unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(refused.message(), "limit must not be negative, got -1");
    }
}
