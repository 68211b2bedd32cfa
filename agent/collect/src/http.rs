// SPDX-License-Identifier: Apache-2.0
//! HTTP fetching with timeouts, bounded retries, an overall deadline and a response size cap.
//!
//! Everything thimble downloads (Azure THIM through IMDS, AMD KDS) goes through [`HttpClient`],
//! which enforces the IMDS rules (docs/formats.md §2) for every endpoint: no proxy unless the
//! operator asked for one, no `X-Forwarded-For`, no redirects, retries only on the statuses IMDS
//! documents as transient (KDS documents none; the same set is assumed), and never longer than
//! the caller's deadline. The bodies are
//! returned as raw bytes; parsing belongs to `thimble-evidence`, so a malformed body is not an
//! error here. Callers depend on the narrow [`Fetch`] trait so that tests can substitute a fake.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use ureq::http::{self, Uri};
use ureq::{Agent, AsSendBody, Body, Proxy};

/// `User-Agent` sent with every request.
const USER_AGENT: &str = concat!("thimble/", env!("CARGO_PKG_VERSION"));

/// Longest body excerpt kept in [`FetchError::Status`], in characters.
const BODY_EXCERPT_CHARS: usize = 200;

/// Bytes read from an error response to build the excerpt; the rest is discarded unread.
const ERROR_BODY_READ_BYTES: u64 = 4096;

/// Request headers the client refuses to send whatever the caller asks. IMDS rejects any request
/// with `X-Forwarded-For` (docs/formats.md §2), and proxy credentials must never reach an endpoint.
const FORBIDDEN_REQUEST_HEADERS: &[&str] = &["x-forwarded-for", "proxy-authorization"];

/// Limits and retry policy of an [`HttpClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Budget of one attempt: connect, send, and receive headers and body.
    pub per_request_timeout: Duration,
    /// Budget of the whole call, covering every attempt and every wait between attempts.
    pub deadline: Duration,
    /// Attempts made at most, including the first.
    pub max_attempts: u32,
    /// First backoff; it doubles with each retry, with jitter, up to `max_backoff`.
    pub backoff_base: Duration,
    /// Ceiling of the computed backoff (a server's `Retry-After` is honoured beyond it).
    pub max_backoff: Duration,
    /// Largest response body accepted, in bytes.
    pub max_body_bytes: u64,
    /// Honour `HTTP_PROXY` / `HTTPS_PROXY` / `ALL_PROXY` / `NO_PROXY`. Must stay `false` for IMDS
    /// and THIM, which are unsupported behind a proxy; operators may enable it for KDS. Link-local
    /// destinations (169.254.0.0/16, fe80::/10) bypass the proxy even when this is set.
    pub use_proxy_env: bool,
    /// An absolute end shared by several calls (a whole `collect`): each call stops at the
    /// earlier of this and its own `deadline`, so a chain of fallbacks cannot add up past it.
    pub overall_end: Option<Instant>,
    /// Retry 404 and 410, which IMDS answers while it updates (docs/formats.md §2). A remote
    /// verifier's 404 means what it says, so `attest` turns this off.
    pub retry_not_found: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            per_request_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(30),
            max_attempts: 4,
            backoff_base: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
            max_body_bytes: 1024 * 1024,
            use_proxy_env: false,
            overall_end: None,
            retry_not_found: true,
        }
    }
}

/// A successful (2xx) response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The URL requested (redirects are never followed, so it is also the URL answered).
    pub url: String,
    /// HTTP status, always 2xx.
    pub status: u16,
    /// Response headers in received order, names in lowercase.
    pub headers: Vec<(String, String)>,
    /// The raw body, at most `max_body_bytes` long.
    pub body: Vec<u8>,
    /// Attempts it took, counting the successful one.
    pub attempts: u32,
    /// When the response was received; cache lifetimes (`cacheControl`) count from here.
    pub fetched_at: SystemTime,
}

impl HttpResponse {
    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a fetch failed. Every variant names the URL; `attempts` counts the attempts made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server answered with a status that is not 2xx (after retries, if it was retryable).
    #[error("fetch {url}: http status {status} after {attempts} attempt(s): {body_excerpt:?}")]
    Status {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// Start of the response body, printable characters only.
        body_excerpt: String,
    },
    /// The last attempt ran out of its per-request timeout.
    #[error("fetch {url}: timed out after {attempts} attempt(s)")]
    Timeout {
        /// The URL asked.
        url: String,
        /// Attempts made.
        attempts: u32,
    },
    /// No connection could be made, or it was dropped before a complete response.
    #[error("fetch {url}: connection failed after {attempts} attempt(s): {reason}")]
    Connect {
        /// The URL asked.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// What is wrong.
        reason: String,
    },
    /// The body is larger than `max_body_bytes`; reading stopped at the cap.
    #[error("fetch {url}: response body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The URL asked.
        url: String,
        /// The cap, in bytes.
        limit: u64,
    },
    /// The overall deadline ran out, or the next wait would have crossed it.
    #[error(
        "fetch {url}: deadline of {deadline:?} reached after {attempts} attempt(s); last error: {last}"
    )]
    Deadline {
        /// The URL asked.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The deadline that ran out.
        deadline: Duration,
        /// The error of the last attempt.
        last: String,
    },
    /// The server answered with a redirect; following one could lead off the intended host.
    #[error("fetch {url}: refusing redirect with status {status} to {}", .location.as_deref().unwrap_or("(no location)"))]
    Redirect {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The `Location` the server named, if any.
        location: Option<String>,
    },
    /// The URL is not an absolute `http` or `https` URL with a host.
    #[error("fetch {url:?}: invalid url")]
    InvalidUrl {
        /// The URL asked.
        url: String,
    },
    /// A failure that retrying cannot fix: TLS, an HTTP protocol violation, an unusable header.
    #[error("fetch {url}: {reason}")]
    Transport {
        /// The URL asked.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// What is wrong.
        reason: String,
    },
}

/// An HTTP client reduced to what thimble needs, so that tests can substitute a fake.
pub trait Fetch {
    /// `GET url` with extra request `headers`; `Ok` only for a 2xx response.
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, FetchError>;
    /// `POST url` with `body`; `Ok` only for a 2xx response.
    fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, FetchError>;
}

/// A [`Fetch`] that tells a [`crate::Progress`] hook about each request just before making it
/// (`fetching {what} ({url})`), for the call sites whose fetches happen deep inside a helper.
pub(crate) struct Announced<'a> {
    /// The client that makes the requests.
    pub inner: &'a dyn Fetch,
    /// The hook told.
    pub progress: &'a crate::Progress,
    /// What is fetched, as the line names it (`AMD's CRL from KDS`).
    pub what: &'a str,
}

impl Fetch for Announced<'_> {
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, FetchError> {
        self.progress
            .report(&format!("fetching {} ({url})", self.what));
        self.inner.get(url, headers)
    }

    fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, FetchError> {
        self.progress
            .report(&format!("sending to {} ({url})", self.what));
        self.inner.post(url, headers, body)
    }
}

/// Whether `status` is worth retrying: 404 and 410 (IMDS updating), 408, 429 and 5xx
/// (docs/formats.md §2).
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 404 | 408 | 410 | 429 | 500..=599)
}

/// The wait a `Retry-After` header asks for, when it is in delta-seconds form. The HTTP-date form
/// is ignored (the caller falls back to its own backoff): honouring it would trust the server's
/// clock against ours.
fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
    let (_, value) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))?;
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // An absurd number of digits saturates; the deadline bounds the wait anyway.
    Some(Duration::from_secs(
        value.parse::<u64>().unwrap_or(u64::MAX),
    ))
}

/// The HTTP client used for THIM and KDS. See [`HttpConfig`] for the policy.
#[derive(Debug)]
pub struct HttpClient {
    config: HttpConfig,
    /// The proxy from the environment, when the config allows one (read once, in `new`).
    proxy: Option<Proxy>,
    /// Built on the first request: a `collect` whose endorsements all come from the cache makes
    /// none, and building an agent runs ureq's set-up code, whose pages a warm run never needs
    /// (docs/performance.md).
    agent: OnceLock<Agent>,
}

impl HttpClient {
    /// A client with `config`. The proxy environment is read here, once, and only when
    /// `config.use_proxy_env` is set.
    pub fn new(config: HttpConfig) -> Self {
        // ureq's default configuration reads the proxy variables from the environment, so the
        // proxy is always set explicitly here.
        let proxy = if config.use_proxy_env {
            Proxy::try_from_env()
        } else {
            None
        };
        Self {
            config,
            proxy,
            agent: OnceLock::new(),
        }
    }

    /// The ureq agent, built on first use with this client's proxy.
    fn agent(&self) -> &Agent {
        self.agent.get_or_init(|| {
            let agent_config = Agent::config_builder()
                .proxy(self.proxy.clone())
                // Statuses are classified here, not turned into errors by ureq.
                .http_status_as_error(false)
                // A redirect is returned as a response and becomes `FetchError::Redirect`.
                .max_redirects(0)
                .user_agent(USER_AGENT)
                .build();
            Agent::new_with_config(agent_config)
        })
    }

    /// The policy this client applies.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    fn fetch(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, FetchError> {
        let target = Target {
            method,
            uri: parse_url(url)?,
            url,
            headers,
        };
        let own = Instant::now() + self.config.deadline;
        let deadline = self.config.overall_end.map_or(own, |end| end.min(own));
        let max_attempts = self.config.max_attempts.max(1);
        let mut attempts = 0u32;
        let mut last_error = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let last = last_error.as_ref().map_or_else(
                    || "no time left for an attempt".to_owned(),
                    FetchError::to_string,
                );
                return Err(self.deadline_error(url, attempts, last));
            }
            attempts += 1;
            let timeout = self.config.per_request_timeout.min(remaining);
            let outcome = match body {
                None => self.attempt(&target, (), timeout, attempts),
                Some(b) => self.attempt(&target, b, timeout, attempts),
            };
            let (error, server_wait) = match outcome {
                Outcome::Done(response) => return Ok(response),
                Outcome::Fatal(error) => return Err(error),
                Outcome::Retry { error, retry_after } => (error, retry_after),
            };
            if attempts >= max_attempts {
                return Err(error);
            }
            let wait = server_wait.unwrap_or_else(|| self.backoff(attempts));
            // An attempt needs some time to be worth making; waiting up to the deadline and then
            // failing without trying only delays the error.
            if Instant::now() + wait >= deadline {
                return Err(self.deadline_error(url, attempts, error.to_string()));
            }
            last_error = Some(error);
            std::thread::sleep(wait);
        }
    }

    fn deadline_error(&self, url: &str, attempts: u32, last: String) -> FetchError {
        FetchError::Deadline {
            url: url.to_owned(),
            attempts,
            deadline: self.config.deadline,
            last,
        }
    }

    /// Backoff before attempt `attempts + 1`: exponential, capped, with "equal jitter" (at least
    /// half the exponential step) so that retries neither synchronise across guests nor hammer
    /// IMDS's 5 requests per second limit.
    fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        let step = self
            .config
            .backoff_base
            .saturating_mul(1u32 << doublings)
            .min(self.config.max_backoff);
        let half = step / 2;
        half + half.mul_f64(jitter_fraction())
    }

    fn attempt<B: AsSendBody>(
        &self,
        target: &Target<'_>,
        body: B,
        timeout: Duration,
        attempts: u32,
    ) -> Outcome {
        let url = target.url;
        let mut builder = http::Request::builder()
            .method(target.method.clone())
            .uri(target.uri.clone());
        for (name, value) in target.headers {
            if FORBIDDEN_REQUEST_HEADERS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(name))
            {
                continue;
            }
            builder = builder.header(*name, *value);
        }
        let request = match builder.body(body) {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Fatal(FetchError::Transport {
                    url: url.to_owned(),
                    attempts,
                    reason: format!("cannot build the request: {e}"),
                });
            }
        };
        let agent = self.agent();
        let mut request_config = agent
            .configure_request(request)
            .timeout_global(Some(timeout));
        if self.config.use_proxy_env && is_link_local(&target.uri) {
            request_config = request_config.proxy(None);
        }
        let response = match agent.run(request_config.build()) {
            Ok(r) => r,
            Err(e) => return classify_error(e, url, attempts),
        };
        let (parts, mut body) = response.into_parts();
        let status = parts.status.as_u16();
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();

        if (200..300).contains(&status) {
            let limit = self.config.max_body_bytes;
            let too_large = || FetchError::TooLarge {
                url: url.to_owned(),
                limit,
            };
            if body.content_length().is_some_and(|len| len > limit) {
                return Outcome::Fatal(too_large());
            }
            return match read_capped(&mut body.as_reader(), limit) {
                Ok(Some(bytes)) => Outcome::Done(HttpResponse {
                    url: url.to_owned(),
                    status,
                    headers,
                    body: bytes,
                    attempts,
                    fetched_at: SystemTime::now(),
                }),
                Ok(None) => Outcome::Fatal(too_large()),
                Err(e) => classify_error(ureq::Error::from(e), url, attempts),
            };
        }

        if (300..400).contains(&status) {
            let location = headers
                .iter()
                .find(|(n, _)| n == "location")
                .map(|(_, v)| v.clone());
            return Outcome::Fatal(FetchError::Redirect {
                url: url.to_owned(),
                status,
                location,
            });
        }

        let error = FetchError::Status {
            url: url.to_owned(),
            status,
            attempts,
            body_excerpt: body_excerpt(&mut body),
        };
        let not_found = matches!(status, 404 | 410);
        if is_retryable_status(status) && (self.config.retry_not_found || !not_found) {
            Outcome::Retry {
                error,
                retry_after: retry_after(&headers),
            }
        } else {
            Outcome::Fatal(error)
        }
    }
}

impl Fetch for HttpClient {
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, FetchError> {
        self.fetch(http::Method::GET, url, headers, None)
    }

    fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, FetchError> {
        self.fetch(http::Method::POST, url, headers, Some(body))
    }
}

/// What every attempt of one call sends.
struct Target<'a> {
    method: http::Method,
    uri: Uri,
    /// The URL as the caller wrote it, for results and errors.
    url: &'a str,
    headers: &'a [(&'a str, &'a str)],
}

/// Result of one attempt.
enum Outcome {
    Done(HttpResponse),
    /// Transient failure; `retry_after` is the server's requested wait, if any.
    Retry {
        error: FetchError,
        retry_after: Option<Duration>,
    },
    Fatal(FetchError),
}

fn parse_url(url: &str) -> Result<Uri, FetchError> {
    let invalid = || FetchError::InvalidUrl {
        url: url.to_owned(),
    };
    let uri: Uri = url.parse().map_err(|_| invalid())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let host_ok = uri.host().is_some_and(|h| !h.is_empty());
    if scheme_ok && host_ok {
        Ok(uri)
    } else {
        Err(invalid())
    }
}

/// Whether the URL's host is an IPv4 or IPv6 link-local literal, as IMDS is.
fn is_link_local(uri: &Uri) -> bool {
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.is_link_local(),
        Ok(std::net::IpAddr::V6(v6)) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        Err(_) => false,
    }
}

/// Maps a ureq failure of one attempt to a retry decision.
fn classify_error(error: ureq::Error, url: &str, attempts: u32) -> Outcome {
    let retry = |error| Outcome::Retry {
        error,
        retry_after: None,
    };
    let connect = |reason: String| FetchError::Connect {
        url: url.to_owned(),
        attempts,
        reason,
    };
    match error {
        ureq::Error::Timeout(_) => retry(FetchError::Timeout {
            url: url.to_owned(),
            attempts,
        }),
        ureq::Error::Io(e) => match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => retry(FetchError::Timeout {
                url: url.to_owned(),
                attempts,
            }),
            // rustls reports a failed handshake (a plain-HTTP server, a bad certificate) as
            // invalid data on the socket: retrying cannot fix it.
            io::ErrorKind::InvalidData => Outcome::Fatal(FetchError::Transport {
                url: url.to_owned(),
                attempts,
                reason: format!("TLS: {e}"),
            }),
            _ => retry(connect(e.to_string())),
        },
        ureq::Error::HostNotFound => retry(connect("host not found".to_owned())),
        ureq::Error::ConnectionFailed => retry(connect("connection failed".to_owned())),
        ureq::Error::ConnectProxyFailed(reason) => retry(connect(format!("proxy: {reason}"))),
        ureq::Error::BadUri(_) | ureq::Error::RequireHttpsOnly(_) => {
            Outcome::Fatal(FetchError::InvalidUrl {
                url: url.to_owned(),
            })
        }
        other => Outcome::Fatal(FetchError::Transport {
            url: url.to_owned(),
            attempts,
            reason: other.to_string(),
        }),
    }
}

/// Reads all of `reader` if it holds at most `limit` bytes; `Ok(None)` as soon as it holds more.
/// Never buffers more than `limit + 1` bytes.
fn read_capped(reader: &mut impl Read, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).map_or(true, |len| len > limit) {
        Ok(None)
    } else {
        Ok(Some(bytes))
    }
}

/// The start of an error response body, for the error message. Read errors are ignored: the
/// status is the error, the body only decorates it.
fn body_excerpt(body: &mut Body) -> String {
    let mut bytes = Vec::new();
    let _ = body
        .as_reader()
        .take(ERROR_BODY_READ_BYTES)
        .read_to_end(&mut bytes);
    printable_excerpt(&bytes)
}

/// At most [`BODY_EXCERPT_CHARS`] characters of `bytes`, with control characters (a hostile
/// server could send terminal escapes) replaced by spaces.
fn printable_excerpt(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(BODY_EXCERPT_CHARS)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A value in `[0, 1)`, different on every call. Jitter needs no cryptographic quality; std's
/// randomly keyed hasher avoids a dependency on a random number crate.
fn jitter_fraction() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    // 53 random bits fill an f64 mantissa exactly.
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `max-age=N` of a `Cache-Control` value, in seconds: how long the source allows an item to
/// be cached.
pub fn cache_max_age(value: &str) -> Option<u64> {
    value.split(',').find_map(|d| {
        d.trim()
            .strip_prefix("max-age=")
            .and_then(|n| n.trim().parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn retryable_statuses() {
        for status in [404, 408, 410, 429, 500, 502, 503, 504, 599] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [200, 204, 301, 400, 401, 403, 405, 409, 411, 413, 451, 600] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }

    #[test]
    fn retry_after_delta_seconds() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1")])),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            retry_after(&headers(&[("Retry-After", " 120 ")])),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "0")])),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "99999999999999999999999")])),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn retry_after_ignored_forms() {
        assert_eq!(retry_after(&headers(&[])), None);
        assert_eq!(
            retry_after(&headers(&[(
                "retry-after",
                "Wed, 21 Oct 2015 07:28:00 GMT"
            )])),
            None
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "-1")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "1.5")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "")])), None);
        assert_eq!(retry_after(&headers(&[("x-retry-after", "3")])), None);
    }

    #[test]
    fn read_capped_stops_at_limit() {
        let data = vec![7u8; 100];
        assert_eq!(
            read_capped(&mut &data[..], 100).unwrap(),
            Some(data.clone())
        );
        assert_eq!(read_capped(&mut &data[..], 99).unwrap(), None);
        assert_eq!(read_capped(&mut &data[..0], 0).unwrap(), Some(Vec::new()));

        // An endless source must not be buffered beyond the cap.
        let mut endless = io::repeat(1);
        assert_eq!(read_capped(&mut endless, 1024).unwrap(), None);
    }

    #[test]
    fn excerpt_is_short_and_printable() {
        let long = "x".repeat(1000);
        assert_eq!(printable_excerpt(long.as_bytes()).chars().count(), 200);
        assert_eq!(
            printable_excerpt(b"{\"error\":\"busy\"}\r\n\x1b[31m"),
            "{\"error\":\"busy\"}   [31m"
        );
        assert_eq!(printable_excerpt(b"\xff\xfeok"), "\u{fffd}\u{fffd}ok");
    }

    #[test]
    fn url_validation() {
        assert!(parse_url("http://127.0.0.1:8080/metadata/THIM/amd/certification").is_ok());
        assert!(parse_url("https://kdsintf.amd.com/vcek/v1/Milan/cert_chain").is_ok());
        assert!(parse_url("http://[::1]:80/").is_ok());
        for bad in [
            "",
            "not a url",
            "/relative",
            "ftp://host/x",
            "http:///path",
            "file:///etc",
        ] {
            assert!(
                matches!(parse_url(bad), Err(FetchError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn link_local_detection() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert!(is_link_local(&uri("http://169.254.169.254/metadata")));
        assert!(is_link_local(&uri("http://[fe80::1]/")));
        assert!(!is_link_local(&uri("http://127.0.0.1/")));
        assert!(!is_link_local(&uri("https://kdsintf.amd.com/")));
    }

    /// A client that never fetches never builds its agent (a warm `collect` runs no ureq code);
    /// the first request builds it and later ones reuse it.
    #[test]
    fn the_agent_is_built_by_the_first_request_and_kept() {
        let client = HttpClient::new(HttpConfig {
            max_attempts: 1,
            deadline: Duration::from_secs(2),
            ..HttpConfig::default()
        });
        assert!(client.agent.get().is_none());
        // Port 0 cannot be connected to: the attempt fails, after it asked for the agent.
        let url = "http://127.0.0.1:0/";
        assert!(client.get(url, &[]).is_err());
        let first = client.agent.get().map(std::ptr::from_ref);
        assert!(first.is_some());
        assert!(client.get(url, &[]).is_err());
        assert_eq!(client.agent.get().map(std::ptr::from_ref), first);
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let client = HttpClient::new(HttpConfig {
            backoff_base: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..HttpConfig::default()
        });
        for _ in 0..50 {
            let first = client.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let second = client.backoff(2);
            assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200));
            let capped = client.backoff(30);
            assert!(capped >= Duration::from_millis(175) && capped <= Duration::from_millis(350));
            assert!(client.backoff(u32::MAX) <= Duration::from_millis(350));
        }
    }

    #[test]
    fn jitter_in_unit_interval() {
        for _ in 0..100 {
            let j = jitter_fraction();
            assert!((0.0..1.0).contains(&j));
        }
    }

    #[test]
    fn response_header_lookup_is_case_insensitive() {
        let response = HttpResponse {
            url: "http://127.0.0.1/".to_owned(),
            status: 200,
            headers: headers(&[("content-type", "application/json"), ("x-a", "1")]),
            body: Vec::new(),
            attempts: 1,
            fetched_at: SystemTime::UNIX_EPOCH,
        };
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        assert_eq!(response.header("x-b"), None);
    }
}
