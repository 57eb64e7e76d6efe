//! iDenfy's status API: `POST {url}/api/v2/status` with `{"scanRef": …}` and HTTP Basic auth
//! (API key and secret), over hyper with rustls on the ring provider.
//!
//! Every exchange is bounded: the connection by a connect timeout, the whole exchange (request,
//! answer head and body) by the request timeout, the answer's body by a size limit. Failures
//! are told apart ([`LookupError`]) because the scheduler treats them differently: 429 says
//! when to come back, 401 means the credentials are wrong, 404 that iDenfy does not know the
//! case, the rest is iDenfy or the network failing.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::{ExposeSecret as _, SecretString};
use tracing::Instrument as _;
use tracing::field::Empty;
use verdict_domain::ScanRef;

/// The path of the status API under the configured URL.
pub const STATUS_PATH: &str = "/api/v2/status";

/// iDenfy's documented API address.
pub const DEFAULT_URL: &str = "https://ivs.idenfy.com";

/// Request timeout when none is configured: well under a minute, so a hanging iDenfy costs
/// one lookup slot, not the scheduler.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connecting may take at most this long (or the request timeout, if shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A status answer is a few hundred bytes; anything much larger is not one.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Where and how to reach the API.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Base URL, `https://ivs.idenfy.com` in production.
    pub url: String,
    /// The API key (the Basic auth user).
    pub key: SecretString,
    /// The API secret (the Basic auth password).
    pub secret: SecretString,
    /// Bound on one whole exchange.
    pub timeout: Duration,
}

/// Why a client could not be built. Never quotes the URL (it could hold credentials).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Not an `http://` or `https://` URL with a host.
    #[error("VERDICT_IDENFY_API_URL is not an http(s) URL with a host")]
    Url,
    /// Credentials belong in their own settings, where they are kept secret.
    #[error(
        "VERDICT_IDENFY_API_URL holds credentials: remove them and set VERDICT_IDENFY_API_KEY and VERDICT_IDENFY_API_SECRET"
    )]
    UrlCredentials,
    /// The API key or secret is empty.
    #[error("VERDICT_IDENFY_API_KEY and VERDICT_IDENFY_API_SECRET must both be set")]
    MissingCredentials,
    /// rustls refused the configuration.
    #[error("could not set up TLS for the iDenfy API")]
    Tls(#[source] rustls::Error),
}

/// Why a lookup got no answer to record. Messages never quote an answer or a credential.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// 401 or 403: the API key and secret are wrong or lack the right.
    #[error(
        "iDenfy refused the credentials ({0}): check VERDICT_IDENFY_API_KEY and VERDICT_IDENFY_API_SECRET"
    )]
    Unauthorized(StatusCode),
    /// 429: too many requests; `retry_after` when iDenfy said when to come back.
    #[error("iDenfy asked to slow down (429)")]
    RateLimited {
        /// From the `Retry-After` header.
        retry_after: Option<Duration>,
    },
    /// 404: iDenfy does not know the scanRef.
    #[error("iDenfy does not know this scanRef ({0})")]
    NotFound(StatusCode),
    /// Another 4xx: iDenfy refused the request itself.
    #[error("iDenfy rejected the request ({0})")]
    Rejected(StatusCode),
    /// 5xx, or any other status that is not an answer.
    #[error("iDenfy failed to answer ({0})")]
    Server(StatusCode),
    /// No complete answer within the request timeout.
    #[error("iDenfy did not answer within {0:?}")]
    Timeout(Duration),
    /// No connection, or it broke before an answer came.
    #[error("iDenfy could not be reached")]
    Unreachable(#[source] hyper_util::client::legacy::Error),
    /// The answer's body could not be read whole, or is larger than an answer can be.
    #[error("the answer could not be read")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl LookupError {
    /// The `result` label of `verdict.reconcile`.
    pub fn result(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::RateLimited { .. } => "rate_limited",
            Self::NotFound(_) => "not_found",
            Self::Rejected(_) => "rejected",
            Self::Server(_) => "server_error",
            Self::Timeout(_) => "timeout",
            Self::Unreachable(_) => "unreachable",
            Self::Body(_) => "bad_answer",
        }
    }

    /// A low-cardinality `error.type` for the CLIENT span: the status code, or what failed.
    fn error_type(&self) -> String {
        match self {
            Self::Unauthorized(status)
            | Self::NotFound(status)
            | Self::Rejected(status)
            | Self::Server(status) => status.as_str().to_owned(),
            Self::RateLimited { .. } => "429".to_owned(),
            Self::Timeout(_) => "timeout".to_owned(),
            Self::Unreachable(_) => "unreachable".to_owned(),
            Self::Body(_) => "body".to_owned(),
        }
    }
}

/// The status API client. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct IdenfyClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    endpoint: Uri,
    authorization: HeaderValue,
    timeout: Duration,
    server_address: String,
    server_port: u16,
}

impl std::fmt::Debug for IdenfyClient {
    // The authorization header carries the credentials: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdenfyClient")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl IdenfyClient {
    /// A client of the API `settings` name. Reads the system's trusted root certificates.
    pub fn new(settings: &ApiSettings) -> Result<Self, SetupError> {
        let base: Uri = settings
            .url
            .trim_end_matches('/')
            .parse()
            .map_err(|_| SetupError::Url)?;
        let (Some(scheme), Some(authority)) = (base.scheme_str(), base.authority()) else {
            return Err(SetupError::Url);
        };
        if authority.as_str().contains('@') {
            return Err(SetupError::UrlCredentials);
        }
        let default_port = match scheme {
            "https" => 443,
            "http" => 80,
            _ => return Err(SetupError::Url),
        };
        let (server_address, server_port) = (
            authority.host().to_owned(),
            authority.port_u16().unwrap_or(default_port),
        );
        let prefix = base.path().trim_end_matches('/');
        let endpoint: Uri = format!("{scheme}://{authority}{prefix}{STATUS_PATH}")
            .parse()
            .map_err(|_| SetupError::Url)?;

        let (key, secret) = (
            settings.key.expose_secret(),
            settings.secret.expose_secret(),
        );
        if key.is_empty() || secret.is_empty() {
            return Err(SetupError::MissingCredentials);
        }
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"));
        let mut authorization =
            HeaderValue::try_from(format!("Basic {token}")).map_err(|_| SetupError::Url)?;
        authorization.set_sensitive(true);

        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT.min(settings.timeout)));
        let https = HttpsConnectorBuilder::new()
            .with_tls_config(tls_config().map_err(SetupError::Tls)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(Self {
            http: Client::builder(TokioExecutor::new()).build(https),
            endpoint,
            authorization,
            timeout: settings.timeout,
            server_address,
            server_port,
        })
    }

    /// The full URL asked, for logs and spans (it holds no credentials: those travel in a
    /// header).
    pub fn endpoint(&self) -> &Uri {
        &self.endpoint
    }

    /// Asks iDenfy for the status of `scan_ref`: the raw answer of a 2xx, or why there is none.
    /// One OpenTelemetry CLIENT span, `POST /api/v2/status`, with the semconv HTTP client
    /// attributes; never the body or the credentials.
    pub async fn status(&self, scan_ref: &ScanRef) -> Result<Bytes, LookupError> {
        let span = tracing::info_span!(
            "idenfy.status",
            otel.name = "POST /api/v2/status",
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = "POST",
            url.full = %self.endpoint,
            url.template = STATUS_PATH,
            server.address = %self.server_address,
            server.port = i64::from(self.server_port),
            http.response.status_code = Empty,
            error.type = Empty,
        );
        let asked = self.exchange(scan_ref).instrument(span.clone()).await;
        if let Err(error) = &asked {
            span.record("error.type", error.error_type());
            span.record("otel.status_code", "error");
        }
        asked
    }

    async fn exchange(&self, scan_ref: &ScanRef) -> Result<Bytes, LookupError> {
        let body = serde_json::json!({ "scanRef": scan_ref.as_str() }).to_string();
        let request = Request::post(self.endpoint.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("verdict/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body)))
            .expect("a request of a valid URI and static headers");
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(LookupError::Unreachable)?;
            let status = response.status();
            tracing::Span::current()
                .record("http.response.status_code", i64::from(status.as_u16()));
            if let Some(error) = failure(status, response.headers()) {
                return Err(error);
            }
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(LookupError::Body)?;
            Ok(body.to_bytes())
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(LookupError::Timeout(self.timeout)),
        }
    }
}

/// What a status that is not 2xx means.
fn failure(status: StatusCode, headers: &HeaderMap) -> Option<LookupError> {
    Some(match status.as_u16() {
        200..=299 => return None,
        401 | 403 => LookupError::Unauthorized(status),
        404 => LookupError::NotFound(status),
        429 => LookupError::RateLimited {
            retry_after: retry_after(headers, SystemTime::now()),
        },
        400..=499 => LookupError::Rejected(status),
        _ => LookupError::Server(status),
    })
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 §10.2.3); a date in the past is
/// "now", anything unreadable is no advice.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// rustls on the ring provider, trusting the system's root certificates.
fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "could not read some of the system's root certificates");
    }
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::warn!("no trusted root certificates found: https lookups at iDenfy will fail");
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> ApiSettings {
        ApiSettings {
            url: url.to_owned(),
            key: SecretString::from("key-1".to_owned()),
            secret: SecretString::from("s3cret-value".to_owned()),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    #[test]
    fn the_endpoint_is_the_status_path_under_the_configured_url() {
        for (url, endpoint) in [
            (
                "https://ivs.idenfy.com",
                "https://ivs.idenfy.com/api/v2/status",
            ),
            (
                "https://ivs.idenfy.com/",
                "https://ivs.idenfy.com/api/v2/status",
            ),
            (
                "http://127.0.0.1:8099",
                "http://127.0.0.1:8099/api/v2/status",
            ),
            (
                "https://proxy.internal/idenfy",
                "https://proxy.internal/idenfy/api/v2/status",
            ),
        ] {
            let client = IdenfyClient::new(&settings(url)).unwrap();
            assert_eq!(client.endpoint().to_string(), endpoint, "{url}");
        }
    }

    #[test]
    fn bad_urls_and_missing_credentials_are_refused_without_quoting_them() {
        for url in ["ftp://ivs.idenfy.com", "ivs.idenfy.com", "", "https://"] {
            let err = IdenfyClient::new(&settings(url)).unwrap_err();
            assert!(matches!(err, SetupError::Url), "{url}: {err:?}");
        }
        let err = IdenfyClient::new(&settings("https://user:pw@ivs.idenfy.com")).unwrap_err();
        assert!(matches!(err, SetupError::UrlCredentials));
        assert!(!err.to_string().contains("pw@"));
        let mut empty = settings(DEFAULT_URL);
        empty.secret = SecretString::from(String::new());
        assert!(matches!(
            IdenfyClient::new(&empty).unwrap_err(),
            SetupError::MissingCredentials
        ));
    }

    #[test]
    fn debug_output_holds_no_credentials() {
        let client = IdenfyClient::new(&settings(DEFAULT_URL)).unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let encoded = base64::engine::general_purpose::STANDARD.encode("key-1:s3cret-value");
        assert!(!shown.contains(&encoded), "{shown}");
    }

    #[test]
    fn statuses_map_to_their_failures() {
        let none = HeaderMap::new();
        let result =
            |code: u16| failure(StatusCode::from_u16(code).unwrap(), &none).map(|e| e.result());
        assert_eq!(result(200), None);
        assert_eq!(result(401), Some("unauthorized"));
        assert_eq!(result(403), Some("unauthorized"));
        assert_eq!(result(404), Some("not_found"));
        assert_eq!(result(429), Some("rate_limited"));
        assert_eq!(result(400), Some("rejected"));
        assert_eq!(result(500), Some("server_error"));
        assert_eq!(result(503), Some("server_error"));
        assert_eq!(result(302), Some("server_error"));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
            retry_after(&headers, now)
        };
        assert_eq!(with("120"), Some(Duration::from_secs(120)));
        assert_eq!(with(" 7 "), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(with(&later), Some(Duration::from_secs(90)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(with(&earlier), Some(Duration::ZERO));
        assert_eq!(with("soon"), None);
        assert_eq!(with("-5"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
