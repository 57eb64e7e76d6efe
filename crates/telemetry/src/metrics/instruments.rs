//! The instruments and the one place their names, units and labels are spelled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, ObservableGauge, UpDownCounter};
use opentelemetry_semantic_conventions::{attribute as semconv, metric as semconv_metric};

/// Bucket bounds (seconds) semconv recommends for `http.server.request.duration`.
const HTTP_BOUNDARIES: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Commit-to-delivery is usually a few milliseconds in one process, longer across Redis.
const DELIVERY_BOUNDARIES: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Methods kept as-is in `http.request.method`; anything else is `_OTHER` (semconv), so a client
/// cannot mint new series by inventing methods.
const KNOWN_METHODS: [&str; 9] = [
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
];

/// Every metric Verdict records. Get it from [`super::metrics()`].
///
/// Each method documents its metric name and labels; Prometheus shows dots as underscores, adds
/// `_total` to counters and `_seconds` to durations.
#[derive(Debug)]
pub struct Metrics {
    webhooks: Counter<u64>,
    signature_failures: Counter<u64>,
    http_duration: Histogram<f64>,
    rpc_duration: Histogram<f64>,
    watch_streams: UpDownCounter<i64>,
    watched_cases: UpDownCounter<i64>,
    feed_lag: Gauge<u64>,
    delivery_duration: Histogram<f64>,
    notifications: Counter<u64>,
    resyncs: Counter<u64>,
    resync_caught: Counter<u64>,
    quarantined: Counter<u64>,
    purges: Counter<u64>,
    reconcile: Counter<u64>,
    reconcile_after: Gauge<f64>,
    decisions: Counter<u64>,
    redis_subscription: Gauge<u64>,
    watch_streams_limit: Gauge<u64>,
    backlog: Arc<BacklogReading>,
    _oldest_pending_case: ObservableGauge<f64>,
    _quarantine_depth: ObservableGauge<u64>,
}

/// The last backlog read, which the observable gauges report at each collection: the read
/// runs periodically (one indexed query per number), never per scrape.
#[derive(Debug, Default)]
struct BacklogReading {
    /// Whether a read happened yet: until then the gauges report nothing rather than zero.
    known: AtomicBool,
    /// Unix milliseconds of the oldest open case's last change; `i64::MIN` when none is open.
    oldest_pending_ms: AtomicI64,
    quarantine_depth: AtomicU64,
}

impl BacklogReading {
    /// Seconds since the oldest open case last changed, as of now (0 when none is open).
    fn oldest_pending_seconds(&self) -> Option<f64> {
        if !self.known.load(Ordering::Acquire) {
            return None;
        }
        let since = self.oldest_pending_ms.load(Ordering::Relaxed);
        if since == i64::MIN {
            return Some(0.0);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Some(now.saturating_sub(since).max(0) as f64 / 1000.0)
    }

    fn quarantine_depth(&self) -> Option<u64> {
        self.known
            .load(Ordering::Acquire)
            .then(|| self.quarantine_depth.load(Ordering::Relaxed))
    }
}

impl Metrics {
    pub(super) fn new(meter: &Meter) -> Self {
        let backlog = Arc::new(BacklogReading::default());
        Self {
            webhooks: meter
                .u64_counter("verdict.webhooks")
                .with_unit("{webhook}")
                .with_description("Webhooks received, by event type and outcome")
                .build(),
            signature_failures: meter
                .u64_counter("verdict.webhook.signature_failures")
                .with_unit("{webhook}")
                .with_description("Webhooks rejected by the signature check, by reason")
                .build(),
            http_duration: meter
                .f64_histogram(semconv_metric::HTTP_SERVER_REQUEST_DURATION)
                .with_unit("s")
                .with_description("Duration of HTTP server requests")
                .with_boundaries(HTTP_BOUNDARIES.to_vec())
                .build(),
            rpc_duration: meter
                .f64_histogram(semconv_metric::RPC_SERVER_CALL_DURATION)
                .with_unit("s")
                .with_description("Duration of gRPC calls (for streams: until the stream ends)")
                .with_boundaries(HTTP_BOUNDARIES.to_vec())
                .build(),
            watch_streams: meter
                .i64_up_down_counter("verdict.watch.streams")
                .with_unit("{stream}")
                .with_description("Open watch streams, by kind (case or feed)")
                .build(),
            watched_cases: meter
                .i64_up_down_counter("verdict.watch.cases")
                .with_unit("{case}")
                .with_description("Distinct cases with at least one watcher in this process")
                .build(),
            feed_lag: meter
                .u64_gauge("verdict.watch.feed_lag")
                .with_unit("{change}")
                .with_description(
                    "Feed positions between the head and the slowest WatchCases stream",
                )
                .build(),
            delivery_duration: meter
                .f64_histogram("verdict.watch.delivery.duration")
                .with_unit("s")
                .with_description("Time from a change's commit to its delivery to a watcher")
                .with_boundaries(DELIVERY_BOUNDARIES.to_vec())
                .build(),
            notifications: meter
                .u64_counter("verdict.notifications")
                .with_unit("{notification}")
                .with_description("Change notifications handed to the bus, by result")
                .build(),
            resyncs: meter
                .u64_counter("verdict.resyncs")
                .with_unit("{resync}")
                .with_description("Resyncs from the database after a bus gap or reconnect")
                .build(),
            resync_caught: meter
                .u64_counter("verdict.resync.caught")
                .with_unit("{change}")
                .with_description("Changes that only a resync delivered (missed on the bus)")
                .build(),
            quarantined: meter
                .u64_counter("verdict.quarantined")
                .with_unit("{webhook}")
                .with_description("Verified webhooks set aside instead of applied, by reason")
                .build(),
            purges: meter
                .u64_counter("verdict.purges")
                .with_unit("{case}")
                .with_description("Cases whose personal data was erased, by reason")
                .build(),
            reconcile: meter
                .u64_counter("verdict.reconcile")
                .with_unit("{lookup}")
                .with_description("Lookups of open cases at iDenfy's status API, by result")
                .build(),
            reconcile_after: meter
                .f64_gauge("verdict.reconcile.after")
                .with_unit("s")
                .with_description(
                    "VERDICT_RECONCILE_AFTER: how long an open case stays unchanged before it is looked up",
                )
                .build(),
            decisions: meter
                .u64_counter("verdict.decisions")
                .with_unit("{case}")
                .with_description(
                    "Applied results that left a case final, by decision (not lifecycle notices)",
                )
                .build(),
            redis_subscription: meter
                .u64_gauge("verdict.redis.subscription.up")
                .with_description("1 while this replica's Redis subscription is up, else 0")
                .build(),
            watch_streams_limit: meter
                .u64_gauge("verdict.watch.streams.limit")
                .with_unit("{stream}")
                .with_description(
                    "VERDICT_GRPC_MAX_STREAMS: open watch streams this replica admits",
                )
                .build(),
            _oldest_pending_case: meter
                .f64_observable_gauge("verdict.oldest_pending_case")
                .with_unit("s")
                .with_description("Time since the oldest case still not final last changed")
                .with_callback({
                    let backlog = Arc::clone(&backlog);
                    move |observer| {
                        if let Some(seconds) = backlog.oldest_pending_seconds() {
                            observer.observe(seconds, &[]);
                        }
                    }
                })
                .build(),
            _quarantine_depth: meter
                .u64_observable_gauge("verdict.quarantine.depth")
                .with_unit("{delivery}")
                .with_description("Quarantined deliveries waiting to be reprocessed")
                .with_callback({
                    let backlog = Arc::clone(&backlog);
                    move |observer| {
                        if let Some(depth) = backlog.quarantine_depth() {
                            observer.observe(depth, &[]);
                        }
                    }
                })
                .build(),
            backlog,
        }
    }

    /// A webhook was handled: `verdict.webhooks{event_type, outcome}`.
    ///
    /// `outcome` is e.g. `accepted`, `duplicate`, `stale`, `rejected`, `quarantined`.
    pub fn webhook(&self, event_type: &'static str, outcome: &'static str) {
        self.webhooks.add(
            1,
            &[
                KeyValue::new("event_type", event_type),
                KeyValue::new("outcome", outcome),
            ],
        );
    }

    /// A webhook failed its signature check: `verdict.webhook.signature_failures{reason}`
    /// (`missing`, `malformed`, `mismatch`).
    pub fn signature_failure(&self, reason: &'static str) {
        self.signature_failures
            .add(1, &[KeyValue::new("reason", reason)]);
    }

    /// An HTTP request finished: `http.server.request.duration{http.request.method, http.route,
    /// http.response.status_code, url.scheme, error.type}` in seconds.
    ///
    /// `route` is the matched route template (axum's `MatchedPath`), never the raw path, or `""`
    /// when nothing matched (the label is then left out). `error.type` is set for 5xx only.
    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = KNOWN_METHODS
            .iter()
            .find(|known| known.eq_ignore_ascii_case(method))
            .copied()
            .unwrap_or("_OTHER");
        let mut attributes = Vec::with_capacity(5);
        attributes.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD, method));
        // The server only speaks plain HTTP; TLS ends at the ingress in front of it.
        attributes.push(KeyValue::new(semconv::URL_SCHEME, "http"));
        attributes.push(KeyValue::new(
            semconv::HTTP_RESPONSE_STATUS_CODE,
            i64::from(status),
        ));
        if !route.is_empty() {
            attributes.push(KeyValue::new(semconv::HTTP_ROUTE, route.to_owned()));
        }
        if status >= 500 {
            attributes.push(KeyValue::new(semconv::ERROR_TYPE, status.to_string()));
        }
        self.http_duration.record(seconds, &attributes);
    }

    /// A gRPC call finished: `rpc.server.call.duration{rpc.system.name="grpc", rpc.method,
    /// rpc.response.status_code}` in seconds.
    ///
    /// `method` is fully qualified (`kyc.v1.CaseService/GetCase`); `status_code` is the
    /// upper-case code name (`OK`, `NOT_FOUND`), as semconv 1.42 spells them.
    pub fn grpc_call(&self, method: &'static str, status_code: &'static str, seconds: f64) {
        self.rpc_duration.record(
            seconds,
            &[
                KeyValue::new(semconv::RPC_SYSTEM_NAME, "grpc"),
                KeyValue::new(semconv::RPC_METHOD, method),
                KeyValue::new(semconv::RPC_RESPONSE_STATUS_CODE, status_code),
            ],
        );
    }

    /// A watch stream opened (`+1`) or closed (`-1`): `verdict.watch.streams{kind}`, `kind` being
    /// `case` or `feed`.
    pub fn watch_streams(&self, delta: i64, kind: &'static str) {
        self.watch_streams
            .add(delta, &[KeyValue::new("kind", kind)]);
    }

    /// A case gained its first watcher (`+1`) or lost its last (`-1`): `verdict.watch.cases`.
    pub fn watched_cases(&self, delta: i64) {
        self.watched_cases.add(delta, &[]);
    }

    /// How far the slowest `WatchCases` stream of this process is behind the feed's head, in
    /// positions (0 without streams): `verdict.watch.feed_lag`.
    pub fn watch_feed_lag(&self, positions: u64) {
        self.feed_lag.record(positions, &[]);
    }

    /// A change reached a watcher `seconds` after its commit: `verdict.watch.delivery.duration`.
    pub fn delivery_latency(&self, seconds: f64) {
        self.delivery_duration.record(seconds, &[]);
    }

    /// A change notification was handed to the bus: `verdict.notifications{result}`, `result`
    /// being `published` or `failed`.
    pub fn notification(&self, result: &'static str) {
        self.notifications
            .add(1, &[KeyValue::new("result", result)]);
    }

    /// A resync ran and delivered `caught` changes the bus had missed: `verdict.resyncs` and
    /// `verdict.resync.caught`.
    pub fn resync(&self, caught: u64) {
        self.resyncs.add(1, &[]);
        self.resync_caught.add(caught, &[]);
    }

    /// A verified webhook was quarantined: `verdict.quarantined{reason}`, `reason_kind` being the
    /// kind of problem (`QuarantineReason::kind`: `unparseable`, `header_body_mismatch`, ...),
    /// never the payload.
    pub fn quarantined(&self, reason_kind: &'static str) {
        self.quarantined
            .add(1, &[KeyValue::new("reason", reason_kind)]);
    }

    /// A case's personal data was erased: `verdict.purges{reason}`, `reason` being
    /// `PurgeReason::as_str` (`erasure`, `retention`, `lifecycle_status`).
    pub fn purge(&self, reason: &'static str) {
        self.purges.add(1, &[KeyValue::new("reason", reason)]);
    }

    /// A lookup at iDenfy's status API ended: `verdict.reconcile{result}`, `result` being one of
    /// a fixed set (`applied`, `unchanged`, `not_found`, `unauthorized`, `rate_limited`, ...).
    pub fn reconcile(&self, result: &'static str) {
        self.reconcile.add(1, &[KeyValue::new("result", result)]);
    }

    /// Reconciliation runs on this replica with this threshold: `verdict.reconcile.after`, so
    /// alert rules can compare the oldest open case with it.
    pub fn reconcile_after(&self, after: Duration) {
        self.reconcile_after.record(after.as_secs_f64(), &[]);
    }

    /// An applied result left its case final: `verdict.decisions{decision}` (`APPROVED`,
    /// `DENIED`, `SUSPECTED`, `EXPIRED`, `CANCELLED`). A lifecycle notice keeps the decision
    /// it finds and is not counted again.
    pub fn decision(&self, decision: &'static str) {
        self.decisions
            .add(1, &[KeyValue::new("decision", decision)]);
    }

    /// The Redis subscription went up or down: `verdict.redis.subscription.up` (1 or 0).
    pub fn redis_subscription(&self, up: bool) {
        self.redis_subscription.record(u64::from(up), &[]);
    }

    /// The stream limit this replica enforces: `verdict.watch.streams.limit`.
    pub fn watch_streams_limit(&self, limit: usize) {
        self.watch_streams_limit
            .record(u64::try_from(limit).unwrap_or(u64::MAX), &[]);
    }

    /// A backlog read: the last change of the oldest open case (`None`: every case is final)
    /// and the quarantine's depth, reported by `verdict.oldest_pending_case` (seconds since
    /// that change, as of each collection) and `verdict.quarantine.depth` until the next read.
    pub fn backlog(&self, oldest_pending_since: Option<SystemTime>, quarantine_depth: u64) {
        let reading = &self.backlog;
        let since = oldest_pending_since.map_or(i64::MIN, |at| {
            at.duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        });
        reading.oldest_pending_ms.store(since, Ordering::Relaxed);
        reading
            .quarantine_depth
            .store(quarantine_depth, Ordering::Relaxed);
        reading.known.store(true, Ordering::Release);
    }

    /// Records one value in every instrument, so that each renders under its exported name:
    /// for tests that check what alert rules and dashboards may refer to. Never call it in
    /// the service.
    #[cfg(any(test, feature = "testing"))]
    pub fn record_every_instrument(&self) {
        self.http_request("POST", "/webhooks/idenfy", 202, 0.012);
        self.http_request("BREW", "", 500, 0.5);
        self.grpc_call("kyc.v1.CaseService/GetCase", "NOT_FOUND", 0.003);
        self.watch_streams(1, "case");
        self.watched_cases(2);
        self.watch_feed_lag(7);
        self.delivery_latency(0.004);
        self.notification("published");
        self.resync(3);
        self.quarantined("unparseable");
        self.webhook("IDENTIFICATION", "applied");
        self.signature_failure("mismatch");
        self.reconcile("applied");
        self.reconcile_after(Duration::from_secs(3600));
        self.decision("APPROVED");
        self.redis_subscription(true);
        self.watch_streams_limit(200_000);
        self.purge("retention");
        self.backlog(Some(SystemTime::now() - Duration::from_secs(90)), 2);
    }
}
