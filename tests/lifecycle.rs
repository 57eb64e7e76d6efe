//! End to end: the personal-data lifecycle of DESIGN §11 against the real app, and the real
//! binary for `verdict purge`, on SQLite and PostgreSQL: erasure by RPC and by CLI, lifecycle
//! statuses, retention (the job, the CLI, two replicas at once), AdminService, and a scan of
//! every column of every table proving that a purged person is gone.

#[path = "lifecycle/admin.rs"]
mod admin;
#[path = "lifecycle/erasure.rs"]
mod erasure;
#[path = "lifecycle/forgotten.rs"]
mod forgotten;
#[path = "lifecycle/retention.rs"]
mod retention;
#[path = "lifecycle/statuses.rs"]
mod statuses;

use std::process::{Command, Output};
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use tonic::transport::Channel;
use verdict_bus::{Hub, LocalBus};
use verdict_domain::{Recorded, SignatureVerifier, UnverifiedWebhook};
use verdict_ingest::{Arrival, Ingest};
use verdict_proto::verdict::v1::admin_service_client::AdminServiceClient;
use verdict_proto::verdict::v1::{Case, CaseView, WatchCasesRequest, WatchCasesResponse};
use verdict_store::{SeaStore, StoreOptions};
use verdict_testkit::payloads::{Webhook, webhook};
use verdict_testkit::{TestApp, within};

const AUTO: &str = "IDENTIFICATION_AUTO_FINISHED";
const MANUAL: &str = "IDENTIFICATION_MANUAL_FINISHED";
const LEGACY: &str = "IDENTIFICATION";

/// One person's personal data, as values found nowhere else: after a purge of their case none
/// of them may be stored anywhere.
#[derive(Debug, Clone)]
struct Person {
    values: [String; 8],
}

impl Person {
    fn new() -> Self {
        let tag = uuid_tag();
        Self {
            values: [
                "FIRST",
                "LAST",
                "DOCNO",
                "DOB",
                "ADDRESS",
                "CLIENTIP",
                "AMLNAME",
                "BIRTHPLACE",
            ]
            .map(|what| format!("MARKER-{what}-{tag}")),
        }
    }

    fn markers(&self) -> Vec<&str> {
        self.values.iter().map(String::as_str).collect()
    }

    /// A final result of `scan_ref` with the overall status `overall`, naming this person.
    fn decided(&self, scan_ref: &str, overall: &str) -> Vec<u8> {
        self.body(scan_ref).overall(overall).final_(true).build()
    }

    /// An iDenfy body of `scan_ref` naming this person in the person fields and elsewhere.
    fn body(&self, scan_ref: &str) -> Webhook {
        let v = &self.values;
        webhook(scan_ref)
            .data("docFirstName", json!(v[0]))
            .data("docLastName", json!(v[1]))
            .data("docNumber", json!(v[2]))
            .data("docDob", json!(v[3]))
            .field("orgAddress", json!(v[4]))
            .field("clientIp", json!(v[5]))
            .field("AML", json!([{"name": v[6]}]))
            .data("orgBirthPlace", json!(v[7]))
    }
}

fn uuid_tag() -> String {
    verdict_testkit::payloads::scan_ref()[..8].to_owned()
}

/// The app's database, opened as a tool opens it.
async fn store(app: &TestApp) -> SeaStore {
    within(
        "connecting to the app's database",
        SeaStore::connect(app.database().url(), StoreOptions::default()),
    )
    .await
    .expect("connect")
}

/// Records a delivery that arrived `ago` through the real ingest use case, straight into the
/// app's database (its watchers are not told): a case that became final long ago, without
/// waiting for it.
async fn ingest_ago(app: &TestApp, event: &str, body: &[u8], ago: chrono::Duration) -> Recorded {
    within(
        "ingesting",
        ingest(app).await.ingest(arrival(event, body, ago)),
    )
    .await
    .expect("ingested")
}

/// The ingest use case on the app's database, telling no watcher.
async fn ingest(app: &TestApp) -> Ingest {
    Ingest::new(
        Arc::new(store(app).await),
        Arc::new(LocalBus::new(Hub::new())),
    )
}

/// A signed delivery that arrived `ago`.
fn arrival(event: &str, body: &[u8], ago: chrono::Duration) -> Arrival {
    let webhook = SignatureVerifier::allow_unsigned()
        .verify(UnverifiedWebhook {
            body: body.to_vec().into(),
            signature: None,
            event_type: Some(event.to_owned()),
        })
        .expect("unsigned is allowed here");
    Arrival {
        webhook,
        received_at: Utc::now() - ago,
        traceparent: None,
    }
}

/// `verdict purge ARGS` against the app's database (and its Redis channel, when it has one),
/// as an operator or the CronJob runs it.
async fn verdict_purge(app: &TestApp, args: &[&str]) -> Output {
    let mut env = vec![("VERDICT_DATABASE_URL", app.database().url().to_owned())];
    if let Some(redis) = app.redis() {
        env.push(("VERDICT_REDIS_URL", redis.url().to_owned()));
        env.push(("VERDICT_REDIS_CHANNEL", redis.channel().to_owned()));
    }
    let args: Vec<String> = std::iter::once("purge")
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_verdict"))
            .args(args)
            .env_remove("VERDICT_REDIS_URL")
            .env_remove("VERDICT_REDIS_CHANNEL")
            .envs(env)
            .output()
            .expect("run the verdict binary")
    });
    within("verdict purge", run).await.unwrap()
}

/// The JSON lines a command printed.
fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON lines"))
        .collect()
}

/// The feed's newest position.
async fn feed_head(app: &TestApp) -> verdict_domain::Cursor {
    use verdict_domain::CaseStore as _;
    store(app).await.feed_head().await.expect("the feed head")
}

/// An AdminService client on a fresh connection.
async fn admin_client(app: &TestApp) -> AdminServiceClient<Channel> {
    let url = format!("http://{}", app.grpc_addr());
    within("a gRPC connection", AdminServiceClient::connect(url))
        .await
        .expect("connect to the gRPC listener")
}

/// `WatchCases` from the feed's current head on.
async fn watch_from_now(app: &TestApp) -> tonic::Streaming<WatchCasesResponse> {
    app.watch_cases_with(WatchCasesRequest {
        from_now: true,
        ..WatchCasesRequest::default()
    })
    .await
}

/// GetCase in `view`.
async fn get(app: &TestApp, scan_ref: &str, view: CaseView) -> Case {
    app.get_case(scan_ref, view, true)
        .await
        .expect("the case exists")
}
