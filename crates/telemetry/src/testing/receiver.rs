//! An in-process OTLP/gRPC collector for traces (kept whole) and metrics (names only).

use std::net::SocketAddr;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

/// What the receiver has collected so far.
#[derive(Debug, Default)]
struct Received {
    spans: Vec<Span>,
    service_names: Vec<String>,
    metric_names: Vec<String>,
}

/// Collects every span exported to it, and the names of exported metrics (so the OTLP metrics
/// pipeline can be checked too); stops serving when dropped.
#[derive(Debug)]
pub struct OtlpReceiver {
    addr: SocketAddr,
    received: watch::Sender<Received>,
    stop: Option<oneshot::Sender<()>>,
}

impl OtlpReceiver {
    /// Binds `127.0.0.1:0` and serves the OTLP trace service on the current runtime.
    ///
    /// # Panics
    /// If the loopback port cannot be bound: a broken test environment, not a test failure.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the OTLP receiver on 127.0.0.1:0");
        let addr = listener.local_addr().expect("receiver address");
        let (received, _) = watch::channel(Received::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let collector = Collector {
            received: received.clone(),
        };
        tokio::spawn(async move {
            let served = Server::builder()
                .add_service(TraceServiceServer::new(collector.clone()))
                .add_service(MetricsServiceServer::new(collector))
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(error = %error, "otlp test receiver failed");
            }
        });
        Self {
            addr,
            received,
            stop: Some(stop),
        }
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT` (or an exporter's `with_endpoint`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until `predicate` holds for the spans received so far, and returns them all.
    ///
    /// # Panics
    /// After `timeout`, listing the names of the spans that did arrive.
    pub async fn wait_for_spans(
        &self,
        mut predicate: impl FnMut(&[Span]) -> bool,
        timeout: Duration,
    ) -> Vec<Span> {
        if !self.wait(|r| predicate(&r.spans), timeout).await {
            let names: Vec<String> = self.spans().into_iter().map(|span| span.name).collect();
            panic!("spans not received within {timeout:?}; got {names:?}")
        }
        self.spans()
    }

    /// Waits until a metric named `name` (OTLP spelling, e.g. `verdict.webhooks`) arrives.
    ///
    /// # Panics
    /// After `timeout`, listing the metric names that did arrive.
    pub async fn wait_for_metric(&self, name: &str, timeout: Duration) {
        if !self
            .wait(|r| r.metric_names.iter().any(|n| n == name), timeout)
            .await
        {
            panic!(
                "metric {name} not received within {timeout:?}; got {:?}",
                self.metric_names()
            )
        }
    }

    async fn wait(&self, mut done: impl FnMut(&Received) -> bool, timeout: Duration) -> bool {
        let mut rx = self.received.subscribe();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|r| done(r))).await,
            Ok(Ok(_))
        )
    }

    /// The spans received so far, in arrival order.
    pub fn spans(&self) -> Vec<Span> {
        self.received.borrow().spans.clone()
    }

    /// The names of the metrics received so far, one per data batch they appeared in.
    pub fn metric_names(&self) -> Vec<String> {
        self.received.borrow().metric_names.clone()
    }

    /// The `service.name` of every resource that exported to this receiver, one per span batch.
    pub fn service_names(&self) -> Vec<String> {
        self.received.borrow().service_names.clone()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Clone)]
struct Collector {
    received: watch::Sender<Received>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let resource_spans = request.into_inner().resource_spans;
        self.received.send_modify(|received| {
            for batch in resource_spans {
                received
                    .service_names
                    .extend(service_name(batch.resource.as_ref()));
                received
                    .spans
                    .extend(batch.scope_spans.into_iter().flat_map(|scope| scope.spans));
            }
        });
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let names = request
            .into_inner()
            .resource_metrics
            .into_iter()
            .flat_map(|batch| batch.scope_metrics)
            .flat_map(|scope| scope.metrics)
            .map(|metric| metric.name);
        self.received
            .send_modify(|received| received.metric_names.extend(names));
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

fn service_name(resource: Option<&Resource>) -> Option<String> {
    let value = resource?
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    match value {
        any_value::Value::StringValue(name) => Some(name.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
    use opentelemetry_otlp::WithExportConfig as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;
    use crate::testing::hex_id;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn receiver_collects_spans_from_a_real_otlp_exporter() {
        let receiver = OtlpReceiver::start().await;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(receiver.endpoint())
            .build()
            .expect("exporter");
        let provider = SdkTracerProvider::builder()
            .with_resource(crate::resource::build("verdict-receiver-test"))
            .with_batch_exporter(exporter)
            .build();
        let tracer = provider.tracer("test");
        let (trace_id, parent_id) = tracer.in_span("parent", |cx| {
            tracer.in_span("child", |_| {});
            let span_cx = cx.span().span_context().clone();
            (
                span_cx.trace_id().to_string(),
                span_cx.span_id().to_string(),
            )
        });
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown())
            .await
            .expect("join");
        flushed.expect("shutdown flushes to the receiver");

        let spans = receiver
            .wait_for_spans(|spans| spans.len() >= 2, Duration::from_secs(10))
            .await;
        let child = spans.iter().find(|s| s.name == "child").expect("child");
        let parent = spans.iter().find(|s| s.name == "parent").expect("parent");
        assert_eq!(hex_id(&parent.trace_id), trace_id);
        assert_eq!(hex_id(&child.trace_id), trace_id);
        assert_eq!(hex_id(&child.parent_span_id), parent_id);
        assert!(
            receiver
                .service_names()
                .iter()
                .all(|name| name == "verdict-receiver-test"),
            "{:?}",
            receiver.service_names()
        );
    }

    #[tokio::test]
    #[should_panic(expected = "spans not received")]
    async fn waiting_times_out_with_what_arrived() {
        let receiver = OtlpReceiver::start().await;
        receiver
            .wait_for_spans(|spans| !spans.is_empty(), Duration::from_millis(50))
            .await;
    }
}
