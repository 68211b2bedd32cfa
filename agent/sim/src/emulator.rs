// SPDX-License-Identifier: Apache-2.0
//! An HTTP/1.1 emulator of Azure IMDS THIM (AMD) and AMD KDS, with fault injection.
//!
//! It backs `thimble collect --simulate snp` and the HTTP tests, so it is std-only and small: one
//! request per connection (`Connection: close`), a thread per connection, and only the routes
//! thimble uses. It enforces the IMDS request contract (docs/formats.md §2: `Metadata: true`
//! required, `X-Forwarded-For` rejected) so that a client bug shows up as a 400 in tests rather
//! than on a real Azure VM. The per-request handler is shared by the TCP server ([`Emulator`]) and
//! by [`serve_one_connection`], which answers one connection on arbitrary streams (stdin/stdout
//! behind QEMU's `guestfwd`). It only ever listens on loopback.
//!
//! The server, the IMDS contract and the [`Fault`]s are independent of what is served: a service
//! is a [`Routes`] implementation. [`EmulatorConfig`] is the AMD one; the Intel collateral
//! services live in [`crate::intel_emulator`] on the same machinery.
//!
//! For benchmarks, a stopped emulator appends what it served to the file named by the
//! environment variable `THIMBLE_SIM_REQUEST_LOG`, when set (see [`REQUEST_LOG_ENV`]): the
//! simulator's emulators run inside the `thimble` process, so this is how `bench/run` counts the
//! requests a simulated `collect` makes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Path of the THIM AMD certification endpoint (docs/formats.md §3).
pub const THIM_AMD_PATH: &str = "/metadata/THIM/amd/certification";

/// Body IMDS sends when `Metadata: true` is missing (docs/formats.md §2).
pub const MISSING_METADATA_BODY: &str =
    r#"{"error":"Bad request. Required metadata header not specified"}"#;

/// The environment variable naming a file to which every emulator, when it stops, appends one
/// line per request it received (`request BASE_URL METHOD PATH`) and then one summary line
/// (`emulator BASE_URL requests=N max_concurrent=M`, where M is the largest number of
/// connections being served at once). Unset (the default), nothing is written.
pub const REQUEST_LOG_ENV: &str = "THIMBLE_SIM_REQUEST_LOG";

/// Largest request head (request line and headers) accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Largest request body accepted.
const MAX_REQUEST_BODY_BYTES: usize = 1024 * 1024;

/// How often blocked reads and writes wake up to check for shutdown.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// A TCP client that has not sent a complete request within this time is dropped, so that an
/// idle connection cannot pin a thread.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Chunk size used to stream an oversize body.
const OVERSIZE_CHUNK_BYTES: usize = 64 * 1024;

/// What the emulator serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmulatorConfig {
    /// Body of `GET /metadata/THIM/amd/certification`; `None` answers 404.
    pub thim_amd_body: Option<Vec<u8>>,
    /// `(product, DER)`: served for `GET /vcek/v1/{product}/{hwid}` with any hwid and query.
    pub kds_vcek: Vec<(String, Vec<u8>)>,
    /// `(product, PEM)`: served for `GET /vcek/v1/{product}/cert_chain` and
    /// `GET /vlek/v1/{product}/cert_chain`.
    pub kds_cert_chain: Vec<(String, Vec<u8>)>,
    /// `(product, DER)`: served for `GET /vcek/v1/{product}/crl` as `application/pkix-crl`;
    /// a product without an entry answers 404.
    pub kds_vcek_crl: Vec<(String, Vec<u8>)>,
    /// `(product, DER)`: served for `GET /vlek/v1/{product}/crl`, likewise.
    pub kds_vlek_crl: Vec<(String, Vec<u8>)>,
    /// Faults, tried in order; the first matching rule with uses left applies.
    pub faults: Vec<FaultRule>,
}

impl EmulatorConfig {
    /// THIM and KDS as `collect --simulate snp` meets them: the simulated Milan chain of
    /// [`crate::signer::sim_chain`], and its ARK's CRL on both CRL routes (as on KDS, one ARK
    /// issues the VCEK and the VLEK CRL). Tests replace members to serve something else.
    pub fn sim() -> Self {
        let chain = crate::signer::sim_chain();
        let milan = |bytes: &[u8]| vec![("Milan".to_owned(), bytes.to_vec())];
        Self {
            thim_amd_body: Some(chain.thim_json.as_bytes().to_vec()),
            kds_vcek: milan(chain.vcek_der),
            kds_cert_chain: milan(chain.ask_ark_pem.as_bytes()),
            kds_vcek_crl: milan(chain.crl_der),
            kds_vlek_crl: milan(chain.crl_der),
            faults: Vec::new(),
        }
    }
}

/// A misbehaviour injected in place of the normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status and a small JSON error body.
    Status(u16),
    /// Answer 429 with `Retry-After: {retry_after_secs}`.
    RateLimited {
        /// The `Retry-After` value, in seconds.
        retry_after_secs: u64,
    },
    /// Read the request and never answer; the connection is held until the client goes away or
    /// the emulator stops.
    Hang,
    /// Answer 200 `application/json` with these bytes.
    MalformedBody(Vec<u8>),
    /// Answer 200 with this many bytes, close-delimited (no `Content-Length`), so that only a
    /// client that caps while reading is protected.
    Oversize(usize),
    /// Answer as normal, but with this body.
    Body(Vec<u8>),
    /// Read the request and close the connection without a response.
    CloseWithoutResponse,
    /// Answer with a redirect `status` (e.g. 302) to `location` (thimble's HTTP client
    /// follows no redirect; tests check that it does not).
    Redirect {
        /// The status sent, normally a 3xx.
        status: u16,
        /// The `Location` header sent.
        location: String,
    },
    /// Answer as normal after this delay (slow but healthy service, or concurrency tests).
    Delay(Duration),
    /// Answer as normal, with `Content-Length`, but send the body `chunk` bytes at a time with
    /// `interval` between chunks (a slow link, or a service trickling its answer out).
    Drip {
        /// Bytes written at a time (at least 1).
        chunk: usize,
        /// Pause before each chunk after the first.
        interval: Duration,
    },
    /// Answer as normal, with the `Content-Length` of the whole body, but send only its first
    /// `sent` bytes and close the connection (a truncated body).
    Truncated {
        /// Bytes of the body sent before closing.
        sent: usize,
    },
}

/// A service the emulator plays. The server applies the IMDS contract checks and the faults,
/// then asks [`Routes::route`] for the normal answer.
pub trait Routes: std::fmt::Debug + Send + Sync + 'static {
    /// The normal answer to `request`.
    fn route(&self, request: &RecordedRequest) -> Reply;
    /// Faults, tried in order; the first matching rule with uses left applies.
    fn faults(&self) -> &[FaultRule];
}

/// A normal answer of a [`Routes`] service, sent with `Content-Length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Header names are static: every service's header set is known in advance.
    /// `Connection: close` and `Content-Length` are added when the reply is written.
    pub headers: Vec<(&'static str, String)>,
    /// The body, sent as is.
    pub body: Vec<u8>,
}

impl Reply {
    /// `status` with a `Content-Type` and `body`.
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body,
        }
    }

    /// `status` with the JSON error body IMDS uses, `{"error":"…"}`.
    pub fn json_error(status: u16, message: &str) -> Self {
        let body = serde_json::json!({ "error": message }).to_string();
        Self::new(status, "application/json; charset=utf-8", body.into_bytes())
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Applies `fault` to requests whose path starts with `path_prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// Prefix of the request path (without the query).
    pub path_prefix: String,
    /// The misbehaviour.
    pub fault: Fault,
    /// Number of requests it applies to; `None` means every request.
    pub times: Option<u32>,
}

impl FaultRule {
    /// A rule applying `fault` to every request under `path_prefix`.
    pub fn always(path_prefix: impl Into<String>, fault: Fault) -> Self {
        Self {
            path_prefix: path_prefix.into(),
            fault,
            times: None,
        }
    }

    /// A rule applying `fault` to the next `times` requests under `path_prefix`.
    pub fn times(path_prefix: impl Into<String>, fault: Fault, times: u32) -> Self {
        Self {
            path_prefix: path_prefix.into(),
            fault,
            times: Some(times),
        }
    }
}

/// A request as the emulator received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Method, as sent.
    pub method: String,
    /// Path without the query, as sent (not percent-decoded).
    pub path: String,
    /// The query after `?`, if any.
    pub query: Option<String>,
    /// Headers in received order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The request body (`Content-Length` bodies only).
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An emulator on `127.0.0.1`. Dropping it stops every thread, hung connections included.
///
/// [`Emulator::start`] binds and serves at once. [`Emulator::bind_routes`] only binds, so that its
/// address can be handed out, and [`Emulator::serve`] starts the accept thread when the first
/// request is about to be made: a simulated `collect` whose endorsements all come from its cache
/// then costs no thread and no connection (what bench/run's warm `collect` measures is thimble's
/// work, not the emulator's start and stop).
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// The bound socket until [`Emulator::serve`] hands it to the accept thread.
    listener: Mutex<Option<TcpListener>>,
    accept_thread: Mutex<Option<JoinHandle<()>>>,
}

impl Emulator {
    /// Binds `127.0.0.1` on an ephemeral port and starts serving `config`.
    pub fn start(config: EmulatorConfig) -> io::Result<Self> {
        Self::start_routes(config)
    }

    /// Binds `127.0.0.1` on an ephemeral port and starts serving `routes`.
    pub fn start_routes(routes: impl Routes) -> io::Result<Self> {
        let emulator = Self::bind_routes(routes)?;
        emulator.serve()?;
        Ok(emulator)
    }

    /// Binds `127.0.0.1` on an ephemeral port for `routes` without serving yet: connections
    /// wait in the listen queue until [`Emulator::serve`].
    pub fn bind_routes(routes: impl Routes) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        // Accept blocks; `Drop` wakes it with a connection of its own after setting the stop
        // flag, so shutting down costs no polling delay (a `collect --simulate` run exits at once).
        let shared = Arc::new(Shared {
            faults: FaultState::new(routes.faults()),
            routes: Box::new(routes),
            requests: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
        });
        Ok(Self {
            addr,
            shared,
            listener: Mutex::new(Some(listener)),
            accept_thread: Mutex::new(None),
        })
    }

    /// Starts the accept thread, once; later calls do nothing.
    pub fn serve(&self) -> io::Result<()> {
        let mut thread = lock(&self.accept_thread);
        let Some(listener) = lock(&self.listener).take() else {
            return Ok(());
        };
        let accept_shared = Arc::clone(&self.shared);
        *thread = Some(
            std::thread::Builder::new()
                .name("thim-emulator-accept".to_owned())
                .spawn(move || accept_loop(&listener, &accept_shared))?,
        );
        Ok(())
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address listened on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far that could be parsed, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Only a thread blocked in accept needs waking; an emulator never served has none.
        if let Some(handle) = lock(&self.accept_thread).take() {
            let _ = TcpStream::connect_timeout(&self.addr, POLL_INTERVAL);
            let _ = handle.join();
        }
        let connections = std::mem::take(&mut *lock(&self.shared.connections));
        for handle in connections {
            let _ = handle.join();
        }
        if let Some(path) = std::env::var_os(REQUEST_LOG_ENV) {
            self.append_request_log(std::path::Path::new(&path));
        }
    }
}

impl Emulator {
    /// Appends the lines [`REQUEST_LOG_ENV`] describes to `path`; a file that cannot be written
    /// is ignored, as the log is only a benchmark's measurement.
    fn append_request_log(&self, path: &std::path::Path) {
        let base = self.base_url();
        let requests = lock(&self.shared.requests);
        let mut text = String::new();
        for r in requests.iter() {
            text.push_str(&format!("request {base} {} {}\n", r.method, r.path));
        }
        text.push_str(&format!(
            "emulator {base} requests={} max_concurrent={}\n",
            requests.len(),
            self.shared.max_in_flight.load(Ordering::SeqCst)
        ));
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
    }
}

/// A loopback port with nothing listening on it (bound, noted, released), for "connection
/// refused" tests. Another process could take it in between; on loopback in a test run that is
/// unlikely enough.
pub fn unused_loopback_port() -> io::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Answers the one request read from `input` on `output`, as the TCP emulator would. Faults with
/// a `times` budget apply as to the first request, since no state survives between calls. A
/// [`Fault::Hang`] reads `input` until it ends.
pub fn serve_one_connection(
    config: &EmulatorConfig,
    input: impl Read,
    output: impl Write,
) -> io::Result<()> {
    serve_one_connection_with(config, input, output)
}

/// [`serve_one_connection`] for any [`Routes`] service.
pub fn serve_one_connection_with(
    routes: &dyn Routes,
    mut input: impl Read,
    mut output: impl Write,
) -> io::Result<()> {
    let faults = FaultState::new(routes.faults());
    let stream = Streams {
        stop: &|| false,
        read_deadline: None,
    };
    serve(
        routes,
        &faults,
        &stream,
        &mut input,
        &mut output,
        &mut |_| {},
    )
}

/// State shared by the accept loop, the connection threads and the [`Emulator`] handle.
#[derive(Debug)]
struct Shared {
    routes: Box<dyn Routes>,
    faults: FaultState,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Connections being served now, and the most at any one time ([`REQUEST_LOG_ENV`]).
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    stop: AtomicBool,
    connections: Mutex<Vec<JoinHandle<()>>>,
}

/// Remaining uses of each fault rule (`None` = unlimited).
#[derive(Debug)]
struct FaultState(Mutex<Vec<Option<u32>>>);

impl FaultState {
    fn new(rules: &[FaultRule]) -> Self {
        Self(Mutex::new(rules.iter().map(|r| r.times).collect()))
    }

    /// The first rule matching `path` with uses left, consuming one use.
    fn take<'a>(&self, rules: &'a [FaultRule], path: &str) -> Option<&'a Fault> {
        let mut remaining = lock(&self.0);
        for (rule, left) in rules.iter().zip(remaining.iter_mut()) {
            if !path.starts_with(&rule.path_prefix) {
                continue;
            }
            match left {
                None => return Some(&rule.fault),
                Some(0) => {}
                Some(n) => {
                    *n -= 1;
                    return Some(&rule.fault);
                }
            }
        }
        None
    }
}

/// How blocking I/O on a connection is bounded.
struct Streams<'a> {
    /// Polled whenever a read or write times out; `true` abandons the connection.
    stop: &'a dyn Fn() -> bool,
    /// Give up reading the request after this instant.
    read_deadline: Option<Instant>,
}

/// Poisoning only means another connection thread panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok(_) if shared.stop.load(Ordering::SeqCst) => break,
            Ok((stream, _)) => {
                let conn_shared = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name("thim-emulator-conn".to_owned())
                    .spawn(move || serve_tcp(stream, &conn_shared));
                let mut connections = lock(&shared.connections);
                connections.retain(|h| !h.is_finished());
                if let Ok(handle) = spawned {
                    connections.push(handle);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL_INTERVAL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Transient accept failures (EMFILE, ECONNABORTED): back off and keep serving.
            Err(_) => std::thread::sleep(POLL_INTERVAL),
        }
    }
}

fn serve_tcp(stream: TcpStream, shared: &Shared) {
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
    serve_tcp_counted(stream, shared);
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
}

fn serve_tcp_counted(stream: TcpStream, shared: &Shared) {
    // Short timeouts turn blocking calls into polls of the stop flag.
    let configured = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(POLL_INTERVAL)))
        .and_then(|()| stream.set_write_timeout(Some(POLL_INTERVAL)));
    if configured.is_err() {
        return;
    }
    let stop = || shared.stop.load(Ordering::SeqCst);
    let streams = Streams {
        stop: &stop,
        read_deadline: Some(Instant::now() + REQUEST_READ_TIMEOUT),
    };
    let mut record = |request: &RecordedRequest| lock(&shared.requests).push(request.clone());
    let _ = serve(
        shared.routes.as_ref(),
        &shared.faults,
        &streams,
        &mut &stream,
        &mut &stream,
        &mut record,
    );
    let _ = stream.shutdown(Shutdown::Both);
}

/// What to do with a request.
enum Action {
    Respond(Response),
    /// Respond after the delay.
    Delay(Duration, Response),
    Hang,
    Close,
}

struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: ResponseBody,
}

enum ResponseBody {
    /// Sent with `Content-Length`.
    Bytes(Vec<u8>),
    /// This many filler bytes, delimited by closing the connection.
    CloseDelimited(usize),
    /// Sent with `Content-Length`, `chunk` bytes at a time, `interval` apart ([`Fault::Drip`]).
    Dripped {
        body: Vec<u8>,
        chunk: usize,
        interval: Duration,
    },
    /// `Content-Length` of the whole body, then only its first `sent` bytes
    /// ([`Fault::Truncated`]).
    Truncated { body: Vec<u8>, sent: usize },
}

impl Response {
    fn new(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Reply::new(status, content_type, body).into()
    }

    fn json_error(status: u16, message: &str) -> Self {
        Reply::json_error(status, message).into()
    }
}

impl From<Reply> for Response {
    fn from(reply: Reply) -> Self {
        Self {
            status: reply.status,
            headers: reply.headers,
            body: ResponseBody::Bytes(reply.body),
        }
    }
}

/// Reads one request, records it, and answers it.
fn serve(
    routes: &dyn Routes,
    faults: &FaultState,
    streams: &Streams<'_>,
    input: &mut dyn Read,
    output: &mut dyn Write,
    record: &mut dyn FnMut(&RecordedRequest),
) -> io::Result<()> {
    let action = match read_request(input, streams)? {
        ReadResult::Request(request) => {
            record(&request);
            handle(routes, faults, &request)
        }
        ReadResult::Bad(status, message) => Action::Respond(Response::json_error(status, message)),
        ReadResult::Gone => return Ok(()),
    };
    match action {
        Action::Respond(response) => write_response(output, streams, &response),
        Action::Delay(delay, response) => {
            if sleep_unless_stopped(delay, streams) {
                write_response(output, streams, &response)
            } else {
                Ok(())
            }
        }
        Action::Hang => {
            drain_until_closed(input, streams);
            Ok(())
        }
        Action::Close => Ok(()),
    }
}

/// The emulated services: IMDS contract checks, then faults, then routes.
fn handle(routes: &dyn Routes, faults: &FaultState, request: &RecordedRequest) -> Action {
    if request.header("x-forwarded-for").is_some() {
        return Action::Respond(Response::json_error(
            400,
            "Bad request. X-Forwarded-For header is not allowed",
        ));
    }
    let is_imds = request.path.starts_with("/metadata/") || request.path == "/metadata";
    if is_imds && request.header("metadata").map(str::trim) != Some("true") {
        return Action::Respond(Response::new(
            400,
            "application/json; charset=utf-8",
            MISSING_METADATA_BODY.as_bytes().to_vec(),
        ));
    }

    let fault = faults.take(routes.faults(), &request.path);
    let normal = || Response::from(routes.route(request));
    let response = match fault {
        None => normal(),
        Some(Fault::Status(status)) => {
            Response::json_error(*status, &format!("emulated status {status}"))
        }
        Some(Fault::RateLimited { retry_after_secs }) => {
            let mut response = Response::json_error(429, "Too many requests");
            response
                .headers
                .push(("Retry-After", retry_after_secs.to_string()));
            response
        }
        Some(Fault::Hang) => return Action::Hang,
        Some(Fault::MalformedBody(bytes)) => Response::new(200, "application/json", bytes.clone()),
        Some(Fault::Oversize(len)) => Response {
            status: 200,
            headers: vec![("Content-Type", "application/octet-stream".to_owned())],
            body: ResponseBody::CloseDelimited(*len),
        },
        Some(Fault::Body(bytes)) => {
            let mut response = normal();
            response.body = ResponseBody::Bytes(bytes.clone());
            response
        }
        Some(Fault::CloseWithoutResponse) => return Action::Close,
        Some(Fault::Redirect { status, location }) => {
            let mut response = Response::new(*status, "text/plain", b"redirect".to_vec());
            response.headers.push(("Location", location.clone()));
            response
        }
        Some(Fault::Delay(delay)) => return Action::Delay(*delay, normal()),
        Some(Fault::Drip { chunk, interval }) => {
            let mut response = normal();
            if let ResponseBody::Bytes(body) = response.body {
                response.body = ResponseBody::Dripped {
                    body,
                    chunk: (*chunk).max(1),
                    interval: *interval,
                };
            }
            response
        }
        Some(Fault::Truncated { sent }) => {
            let mut response = normal();
            if let ResponseBody::Bytes(body) = response.body {
                response.body = ResponseBody::Truncated { body, sent: *sent };
            }
            response
        }
    };
    Action::Respond(response)
}

impl Routes for EmulatorConfig {
    fn route(&self, request: &RecordedRequest) -> Reply {
        route(self, request)
    }

    fn faults(&self) -> &[FaultRule] {
        &self.faults
    }
}

/// The normal answer for `request`.
fn route(config: &EmulatorConfig, request: &RecordedRequest) -> Reply {
    let not_found = || Reply::json_error(404, "Not found");
    if request.path == THIM_AMD_PATH {
        if request.method != "GET" {
            return Reply::json_error(405, "Method not allowed");
        }
        return match &config.thim_amd_body {
            Some(body) => Reply::new(200, "application/json; charset=utf-8", body.clone()),
            None => not_found(),
        };
    }

    let segments: Vec<&str> = request.path.split('/').collect();
    // ["", "vcek"|"vlek", "v1", product, resource]
    let ["", kind @ ("vcek" | "vlek"), "v1", product, resource] = segments.as_slice() else {
        return not_found();
    };
    if product.is_empty() || resource.is_empty() {
        return not_found();
    }
    if request.method != "GET" {
        return Reply::json_error(405, "Method not allowed");
    }
    let lookup = |table: &[(String, Vec<u8>)]| {
        table
            .iter()
            .find(|(p, _)| p == product)
            .map(|(_, bytes)| bytes.clone())
    };
    // KDS answers DER with the type RFC 5280 §4.2.1.13 registers for CRLs.
    let crl = |table: &[(String, Vec<u8>)]| match lookup(table) {
        Some(der) => Reply::new(200, "application/pkix-crl", der),
        None => not_found(),
    };
    match (*kind, *resource) {
        (_, "cert_chain") => match lookup(&config.kds_cert_chain) {
            Some(pem) => Reply::new(200, "application/x-pem-file", pem),
            None => not_found(),
        },
        // Through the inverse of the URL builder `collect` uses, so that a CRL URL thimble
        // should not build (another spelling of the product, say) is not answered.
        (_, "crl") => match thimble_evidence::kds::parse_crl_path(&request.path) {
            Some(req) if req.product.kds_name() == *product => crl(if req.vlek {
                &config.kds_vlek_crl
            } else {
                &config.kds_vcek_crl
            }),
            _ => not_found(),
        },
        ("vcek", _hwid) => match lookup(&config.kds_vcek) {
            Some(der) => Reply::new(200, "application/octet-stream", der),
            None => not_found(),
        },
        _ => not_found(),
    }
}

enum ReadResult {
    Request(RecordedRequest),
    /// Unparseable or unacceptable request: answer with this status and message.
    Bad(u16, &'static str),
    /// The peer closed, stalled past the read deadline, or the emulator is stopping.
    Gone,
}

/// Outcome of one read that may have timed out.
enum Read1 {
    Data(usize),
    Eof,
    Abandon,
}

/// One read, retried across poll timeouts until data, EOF, stop or the read deadline.
fn read_some(input: &mut dyn Read, streams: &Streams<'_>, buf: &mut [u8]) -> io::Result<Read1> {
    loop {
        match input.read(buf) {
            Ok(0) => return Ok(Read1::Eof),
            Ok(n) => return Ok(Read1::Data(n)),
            Err(e) if is_poll_timeout(&e) => {
                let late = streams.read_deadline.is_some_and(|d| Instant::now() >= d);
                if (streams.stop)() || late {
                    return Ok(Read1::Abandon);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn is_poll_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn read_request(input: &mut dyn Read, streams: &Streams<'_>) -> io::Result<ReadResult> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Ok(ReadResult::Bad(431, "Request header fields too large"));
        }
        match read_some(input, streams, &mut chunk)? {
            Read1::Data(n) => buf.extend_from_slice(&chunk[..n]),
            Read1::Eof | Read1::Abandon => return Ok(ReadResult::Gone),
        }
    };
    let Ok(head) = std::str::from_utf8(&buf[..head_end]) else {
        return Ok(ReadResult::Bad(400, "Bad request. Header is not UTF-8"));
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(ReadResult::Bad(400, "Bad request. Malformed request line"));
    };
    if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Ok(ReadResult::Bad(400, "Bad request. Malformed request line"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Ok(ReadResult::Bad(400, "Bad request. Malformed header"));
        };
        if name.is_empty() || name.contains(|c: char| c.is_whitespace()) {
            return Ok(ReadResult::Bad(400, "Bad request. Malformed header"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (target.to_owned(), None),
    };
    let mut request = RecordedRequest {
        method: method.to_owned(),
        path,
        query,
        headers,
        body: Vec::new(),
    };

    if request.header("transfer-encoding").is_some() {
        return Ok(ReadResult::Bad(411, "Length required"));
    }
    let content_length = match request.header("content-length") {
        None => 0,
        Some(value) => match value.parse::<usize>() {
            Ok(n) if n <= MAX_REQUEST_BODY_BYTES => n,
            Ok(_) => return Ok(ReadResult::Bad(413, "Payload too large")),
            Err(_) => return Ok(ReadResult::Bad(400, "Bad request. Invalid Content-Length")),
        },
    };
    let mut body = buf.split_off(head_end + 4);
    while body.len() < content_length {
        match read_some(input, streams, &mut chunk)? {
            Read1::Data(n) => body.extend_from_slice(&chunk[..n]),
            Read1::Eof | Read1::Abandon => return Ok(ReadResult::Gone),
        }
    }
    body.truncate(content_length);
    request.body = body;
    Ok(ReadResult::Request(request))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn write_response(
    output: &mut dyn Write,
    streams: &Streams<'_>,
    response: &Response,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nConnection: close\r\n",
        response.status,
        reason_phrase(response.status)
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match &response.body {
        ResponseBody::Bytes(body)
        | ResponseBody::Dripped { body, .. }
        | ResponseBody::Truncated { body, .. } => {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        ResponseBody::CloseDelimited(_) => {}
    }
    head.push_str("\r\n");
    write_all(output, streams, head.as_bytes())?;
    match &response.body {
        ResponseBody::Bytes(body) => write_all(output, streams, body)?,
        ResponseBody::CloseDelimited(len) => {
            let filler = vec![b'A'; OVERSIZE_CHUNK_BYTES];
            let mut left = *len;
            while left > 0 {
                let n = left.min(filler.len());
                write_all(output, streams, &filler[..n])?;
                left -= n;
            }
        }
        ResponseBody::Dripped {
            body,
            chunk,
            interval,
        } => {
            for (i, piece) in body.chunks(*chunk).enumerate() {
                if i > 0 && !sleep_unless_stopped(*interval, streams) {
                    return Ok(());
                }
                write_all(output, streams, piece)?;
                output.flush()?;
            }
        }
        ResponseBody::Truncated { body, sent } => {
            write_all(output, streams, &body[..(*sent).min(body.len())])?;
        }
    }
    output.flush()
}

/// `write_all` that survives the poll timeouts and gives up when the emulator stops, so that a
/// client that stopped reading cannot block shutdown.
fn write_all(output: &mut dyn Write, streams: &Streams<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match output.write(bytes) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if is_poll_timeout(&e) => {
                if (streams.stop)() {
                    return Err(io::Error::from(io::ErrorKind::Interrupted));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sleeps for `delay` in poll-sized steps; `false` if the emulator stopped meanwhile.
fn sleep_unless_stopped(delay: Duration, streams: &Streams<'_>) -> bool {
    let until = Instant::now() + delay;
    loop {
        if (streams.stop)() {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(POLL_INTERVAL));
    }
}

/// Holds a hung connection: reads and discards until the peer closes or the emulator stops.
fn drain_until_closed(input: &mut dyn Read, streams: &Streams<'_>) {
    let hang = Streams {
        stop: streams.stop,
        read_deadline: None,
    };
    let mut sink = [0u8; 1024];
    while let Ok(Read1::Data(_)) = read_some(input, &hang, &mut sink) {}
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EmulatorConfig {
        EmulatorConfig {
            thim_amd_body: Some(br#"{"vcekCert":"x"}"#.to_vec()),
            kds_vcek: vec![("Milan".to_owned(), vec![0x30, 0x82, 0x01])],
            kds_cert_chain: vec![(
                "Milan".to_owned(),
                b"-----BEGIN CERTIFICATE-----\n".to_vec(),
            )],
            kds_vcek_crl: vec![("Milan".to_owned(), vec![0x30, 0x82, 0x03])],
            kds_vlek_crl: vec![("Genoa".to_owned(), vec![0x30, 0x82, 0x04])],
            faults: Vec::new(),
        }
    }

    /// Runs `request` through `serve_one_connection` and splits the answer.
    fn exchange(config: &EmulatorConfig, request: &str) -> (u16, String, Vec<u8>) {
        let mut out = Vec::new();
        serve_one_connection(config, request.as_bytes(), &mut out).unwrap();
        let end = find(&out, b"\r\n\r\n").unwrap();
        let head = String::from_utf8(out[..end].to_vec()).unwrap();
        let status = head[9..12].parse().unwrap();
        (status, head, out[end + 4..].to_vec())
    }

    #[test]
    fn thim_requires_metadata_header() {
        let (status, _, body) = exchange(
            &config(),
            "GET /metadata/THIM/amd/certification HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert_eq!(status, 400);
        assert_eq!(body, MISSING_METADATA_BODY.as_bytes());

        let (status, _, body) = exchange(
            &config(),
            "GET /metadata/THIM/amd/certification HTTP/1.1\r\nmetadata: false\r\n\r\n",
        );
        assert_eq!(status, 400);
        assert_eq!(body, MISSING_METADATA_BODY.as_bytes());

        let (status, head, body) = exchange(
            &config(),
            "GET /metadata/THIM/amd/certification HTTP/1.1\r\nMETADATA:true\r\n\r\n",
        );
        assert_eq!(status, 200);
        assert!(head.contains("Connection: close"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert_eq!(body, br#"{"vcekCert":"x"}"#);
    }

    #[test]
    fn forwarded_for_is_rejected_everywhere() {
        for path in [THIM_AMD_PATH, "/vcek/v1/Milan/cert_chain"] {
            let (status, _, _) = exchange(
                &config(),
                &format!(
                    "GET {path} HTTP/1.1\r\nMetadata: true\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
                ),
            );
            assert_eq!(status, 400, "{path}");
        }
    }

    #[test]
    fn kds_routes() {
        let c = config();
        let (status, _, body) = exchange(
            &c,
            "GET /vcek/v1/Milan/abcd?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115 HTTP/1.1\r\n\r\n",
        );
        assert_eq!((status, body), (200, vec![0x30, 0x82, 0x01]));
        let (status, _, body) = exchange(&c, "GET /vlek/v1/Milan/cert_chain HTTP/1.1\r\n\r\n");
        assert_eq!(
            (status, body),
            (200, b"-----BEGIN CERTIFICATE-----\n".to_vec())
        );
        let (status, head, body) = exchange(&c, "GET /vcek/v1/Milan/crl HTTP/1.1\r\n\r\n");
        assert_eq!((status, body), (200, vec![0x30, 0x82, 0x03]));
        assert!(
            head.contains("Content-Type: application/pkix-crl"),
            "{head}"
        );
        let (status, _, body) = exchange(&c, "GET /vlek/v1/Genoa/crl HTTP/1.1\r\n\r\n");
        assert_eq!((status, body), (200, vec![0x30, 0x82, 0x04]));
        for path in [
            "/vcek/v1/Genoa/abcd",
            "/vcek/v1/Genoa/crl",
            "/vlek/v1/Milan/crl",
            "/vcek/v1/milan/crl",
            "/vlek/v1/Milan/abcd",
            "/vcek/v1/Milan/",
            "/vcek/v2/Milan/abcd",
            "/vcek/v1/Milan/abcd/extra",
            "/nothing",
            "/metadata/instance",
        ] {
            let (status, _, _) = exchange(
                &c,
                &format!("GET {path} HTTP/1.1\r\nMetadata: true\r\n\r\n"),
            );
            assert_eq!(status, 404, "{path}");
        }
        let (status, _, _) = exchange(&c, "POST /vcek/v1/Milan/cert_chain HTTP/1.1\r\n\r\n");
        assert_eq!(status, 405);
    }

    #[test]
    fn missing_thim_body_is_not_found() {
        let c = EmulatorConfig::default();
        let (status, _, _) = exchange(
            &c,
            "GET /metadata/THIM/amd/certification HTTP/1.1\r\nMetadata: true\r\n\r\n",
        );
        assert_eq!(status, 404);
    }

    #[test]
    fn faults_apply_in_order_and_count_down() {
        let mut c = config();
        c.faults = vec![
            FaultRule::times("/vcek/", Fault::Status(503), 1),
            FaultRule::always(
                "/vcek/v1/Milan/cert_chain",
                Fault::RateLimited {
                    retry_after_secs: 7,
                },
            ),
        ];
        let faults = FaultState::new(&c.faults);
        let get = |path: &str| RecordedRequest {
            method: "GET".to_owned(),
            path: path.to_owned(),
            query: None,
            headers: Vec::new(),
            body: Vec::new(),
        };
        let status = |action: Action| match action {
            Action::Respond(r) => r.status,
            _ => 0,
        };
        assert_eq!(status(handle(&c, &faults, &get("/vcek/v1/Milan/x"))), 503);
        assert_eq!(status(handle(&c, &faults, &get("/vcek/v1/Milan/x"))), 200);
        for _ in 0..3 {
            let Action::Respond(r) = handle(&c, &faults, &get("/vcek/v1/Milan/cert_chain")) else {
                panic!("expected a response");
            };
            assert_eq!(r.status, 429);
            assert!(r.headers.contains(&("Retry-After", "7".to_owned())));
        }
    }

    #[test]
    fn body_fault_keeps_status_and_oversize_is_close_delimited() {
        let mut c = config();
        c.faults = vec![
            FaultRule::always(THIM_AMD_PATH, Fault::Body(b"{}".to_vec())),
            FaultRule::always("/vcek/", Fault::Oversize(100_000)),
        ];
        let (status, _, body) = exchange(
            &c,
            "GET /metadata/THIM/amd/certification HTTP/1.1\r\nMetadata: true\r\n\r\n",
        );
        assert_eq!((status, body), (200, b"{}".to_vec()));
        let (status, head, body) = exchange(&c, "GET /vcek/v1/Milan/x HTTP/1.1\r\n\r\n");
        assert_eq!(status, 200);
        assert!(!head.contains("Content-Length"));
        assert_eq!(body.len(), 100_000);
    }

    #[test]
    fn faults_apply_to_the_crl_routes() {
        let mut c = config();
        c.faults = vec![
            FaultRule::times("/vcek/v1/Milan/crl", Fault::Body(b"junk".to_vec()), 1),
            FaultRule::always("/vlek/", Fault::Status(500)),
        ];
        let (status, head, body) = exchange(&c, "GET /vcek/v1/Milan/crl HTTP/1.1\r\n\r\n");
        assert_eq!((status, body), (200, b"junk".to_vec()));
        assert!(head.contains("application/pkix-crl"), "{head}");
        let (status, _, _) = exchange(&c, "GET /vlek/v1/Genoa/crl HTTP/1.1\r\n\r\n");
        assert_eq!(status, 500);
    }

    #[test]
    fn delay_answers_normally_afterwards() {
        let mut c = config();
        c.faults = vec![FaultRule::times(
            THIM_AMD_PATH,
            Fault::Delay(Duration::from_millis(100)),
            1,
        )];
        let start = Instant::now();
        let (status, _, body) = exchange(
            &c,
            "GET /metadata/THIM/amd/certification HTTP/1.1\r\nMetadata: true\r\n\r\n",
        );
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert_eq!((status, body), (200, br#"{"vcekCert":"x"}"#.to_vec()));
    }

    #[test]
    fn close_and_hang_send_nothing() {
        for fault in [Fault::CloseWithoutResponse, Fault::Hang] {
            let mut c = config();
            c.faults = vec![FaultRule::always("/", fault)];
            let mut out = Vec::new();
            serve_one_connection(&c, &b"GET /x HTTP/1.1\r\n\r\n"[..], &mut out).unwrap();
            assert!(out.is_empty());
        }
    }

    #[test]
    fn malformed_requests() {
        for raw in [
            "GARBAGE\r\n\r\n",
            "GET x HTTP/1.1\r\n\r\n",
            "GET /x HTTP/1.1\r\nno colon\r\n\r\n",
            "GET /x HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        ] {
            let (status, _, _) = exchange(&config(), raw);
            assert_eq!(status, 400, "{raw:?}");
        }
        let mut out = Vec::new();
        serve_one_connection(&config(), &b"GET /x HTTP/1.1\r\n"[..], &mut out).unwrap();
        assert!(out.is_empty(), "an incomplete request gets no answer");
    }

    #[test]
    fn request_body_is_read() {
        let input = b"POST /acc/x?a=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        let faults = FaultState::new(&[]);
        let streams = Streams {
            stop: &|| false,
            read_deadline: None,
        };
        let mut seen = Vec::new();
        serve(
            &config(),
            &faults,
            &streams,
            &mut &input[..],
            &mut Vec::new(),
            &mut |r| seen.push(r.clone()),
        )
        .unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].path, "/acc/x");
        assert_eq!(seen[0].query.as_deref(), Some("a=1"));
        assert_eq!(seen[0].body, b"abc");
    }

    #[test]
    fn a_bound_emulator_answers_only_once_served() {
        let emulator = Emulator::bind_routes(config()).unwrap();
        let mut stream = TcpStream::connect(emulator.addr()).unwrap();
        stream
            .write_all(b"GET /vcek/v1/Milan/cert_chain HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        // The connection waits in the listen queue: nothing is read, nothing answered.
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut byte = [0u8; 1];
        let waited = stream.read(&mut byte).unwrap_err();
        assert!(
            matches!(
                waited.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{waited:?}"
        );
        assert!(emulator.requests().is_empty());
        emulator.serve().unwrap();
        emulator.serve().unwrap(); // a second call changes nothing
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
        assert_eq!(emulator.requests().len(), 1);
    }

    #[test]
    fn an_emulator_never_served_drops_at_once() {
        let emulator = Emulator::bind_routes(config()).unwrap();
        let addr = emulator.addr();
        let start = Instant::now();
        drop(emulator);
        assert!(start.elapsed() < Duration::from_secs(1));
        // The socket closed with it.
        assert!(TcpStream::connect(addr).is_err());
    }

    #[test]
    fn tcp_emulator_stops_with_a_hung_connection() {
        let mut c = config();
        c.faults = vec![FaultRule::always("/", Fault::Hang)];
        let emulator = Emulator::start(c).unwrap();
        let mut stream = TcpStream::connect(emulator.addr()).unwrap();
        stream.write_all(b"GET /x HTTP/1.1\r\n\r\n").unwrap();
        // Wait until the request is recorded so that the connection thread is in its hang.
        let start = Instant::now();
        while emulator.requests().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
        let start = Instant::now();
        drop(emulator);
        assert!(start.elapsed() < Duration::from_secs(2));
        let mut rest = Vec::new();
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        assert_eq!(stream.read_to_end(&mut rest).unwrap_or(0), 0);
    }

    #[test]
    fn drip_sends_the_whole_body_slowly_and_truncated_declares_more_than_it_sends() {
        let mut c = config();
        c.faults = vec![FaultRule::always(
            THIM_AMD_PATH,
            Fault::Drip {
                chunk: 3,
                interval: Duration::from_millis(10),
            },
        )];
        let request = "GET /metadata/THIM/amd/certification HTTP/1.1\r\nMetadata: true\r\n\r\n";
        let start = Instant::now();
        let (status, head, body) = exchange(&c, request);
        assert_eq!(status, 200);
        assert_eq!(body, br#"{"vcekCert":"x"}"#);
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        // 16 bytes in 6 chunks: 5 pauses.
        assert!(start.elapsed() >= Duration::from_millis(50));

        c.faults = vec![FaultRule::always(
            THIM_AMD_PATH,
            Fault::Truncated { sent: 5 },
        )];
        let (status, head, body) = exchange(&c, request);
        assert_eq!(status, 200);
        assert!(head.contains("Content-Length: 16"), "{head}");
        assert_eq!(body, br#"{"vce"#);
    }

    #[test]
    fn unused_port_refuses() {
        let port = unused_loopback_port().unwrap();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
