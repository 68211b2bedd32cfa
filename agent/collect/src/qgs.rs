// SPDX-License-Identifier: Apache-2.0
//! Client of the host's TDX Quote Generation Service (QGS) over vsock, for kernels without
//! configfs-tsm (before 6.7): a TD gets its TDREPORT from `/dev/tdx_guest` and sends it to the
//! QGS on the host, which has the quoting enclave turn it into a quote.
//!
//! The protocol is Intel's (SGXDataCenterAttestationPrimitives, `QuoteGeneration/quote_wrapper/`:
//! `qgs_msg_lib/inc/qgs_msg_lib.h` and `qgs_msg_lib.cpp` for the messages, `tdx_attest/
//! tdx_attest.c` for the guest side, `qgs/qgs_server.cpp` for the service side):
//!
//! - One request per connection, to CID 2 (`VMADDR_CID_HOST`) on the port from
//!   `/etc/tdx-attest.conf` (`port=`). The service listens on 4050 by default (`qgs/qgs.conf`),
//!   which is also what QEMU's `quote-generation-socket` examples use.
//! - Every message is preceded by its length as a 4-byte big-endian integer (`HEADER_SIZE`).
//! - A message starts with a packed, little-endian (x86 native) header: `u16 major_version`,
//!   `u16 minor_version`, `u32 type`, `u32 size` (the whole message, header included),
//!   `u32 error_code` (responses only). The library writes version 1.1; readers check only the
//!   major version ("minor change is deemed as compatible").
//! - `GET_QUOTE_REQ` (type 0): header, `u32 report_size` (not 0), `u32 id_list_size` (may be 0),
//!   the report, then the id list. libtdx_attest sends the 1024-byte TDREPORT and no id list.
//! - `GET_QUOTE_RESP` (type 1): header, `u32 selected_id_size`, `u32 quote_size`, the selected
//!   id, then the quote. On error, `error_code` is non-zero and both sizes are 0.
//! - The service answers once and closes the connection; when it cannot even parse the request
//!   it closes without answering. It drops any connection after 30 s (`QGS_TIMEOUT`).
//!
//! libtdx_attest sets no socket timeout, so a host that accepts and never answers hangs it. This
//! client bounds the connect and the whole exchange, caps what it accepts from the host
//! ([`DEFAULT_MAX_RESPONSE_LEN`]) before allocating, and checks every length the host sends.
//! The transport is the narrow [`QgsTransport`] trait so that `thimble_sim::fake_qgs` can stand
//! in for the host over a socket pair.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, VsockAddr, connect, getsockopt, recv, send,
    socket, sockopt,
};

use crate::tdx_guest::TDX_REPORT_LEN;

/// `VMADDR_CID_HOST`: the vsock address of the host.
pub const HOST_CID: u32 = 2;

/// Port of the service when `/etc/tdx-attest.conf` names none (`port = 4050` in QGS's
/// `qgs.conf`, and the port of QEMU's `quote-generation-socket` examples).
pub const DEFAULT_PORT: u32 = 4050;

/// Where libtdx_attest reads the service port.
pub const DEFAULT_CONF_PATH: &str = "/etc/tdx-attest.conf";

/// The big-endian length that precedes every message (`HEADER_SIZE` in tdx_attest.c and
/// qgs_server.cpp).
pub const FRAME_PREFIX_LEN: usize = 4;

/// `sizeof(qgs_msg_header_t)`.
pub const MSG_HEADER_LEN: usize = 16;

/// `sizeof(qgs_msg_get_quote_req_t)` and `sizeof(qgs_msg_get_quote_resp_t)`: the header plus two
/// `u32` sizes.
pub const GET_QUOTE_FIXED_LEN: usize = MSG_HEADER_LEN + 8;

/// `QGS_MSG_LIB_MAJOR_VER`.
pub const MSG_MAJOR_VERSION: u16 = 1;

/// `QGS_MSG_LIB_MINOR_VER`.
pub const MSG_MINOR_VERSION: u16 = 1;

/// `qgs_msg_type_t::GET_QUOTE_REQ`.
pub const GET_QUOTE_REQ: u32 = 0;

/// `qgs_msg_type_t::GET_QUOTE_RESP`.
pub const GET_QUOTE_RESP: u32 = 1;

/// Largest response this client reads. Quotes are a few KiB (about 5 KiB with an embedded PCK
/// chain, more on DICE platforms); libtdx_attest itself accepts under 16 KiB.
pub const DEFAULT_MAX_RESPONSE_LEN: u32 = 1 << 20;

/// Default bound on establishing the connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default bound on the whole exchange after connecting: the service's own 30 s connection
/// timeout plus a margin.
pub const DEFAULT_EXCHANGE_TIMEOUT: Duration = Duration::from_secs(35);

/// `qgs_msg_error_t` codes (`QGS_MSG_MK_ERROR(x)` = `0x12000 | x`).
pub mod error_code {
    /// `QGS_MSG_ERROR_UNEXPECTED`.
    pub const UNEXPECTED: u32 = 0x0001_2001;
    /// `QGS_MSG_ERROR_OUT_OF_MEMORY`.
    pub const OUT_OF_MEMORY: u32 = 0x0001_2002;
    /// `QGS_MSG_ERROR_INVALID_PARAMETER`.
    pub const INVALID_PARAMETER: u32 = 0x0001_2003;
    /// `QGS_MSG_ERROR_INVALID_VERSION`.
    pub const INVALID_VERSION: u32 = 0x0001_2004;
    /// `QGS_MSG_ERROR_INVALID_TYPE`.
    pub const INVALID_TYPE: u32 = 0x0001_2005;
    /// `QGS_MSG_ERROR_INVALID_SIZE`.
    pub const INVALID_SIZE: u32 = 0x0001_2006;
    /// `QGS_MSG_ERROR_INVALID_CODE`.
    pub const INVALID_CODE: u32 = 0x0001_2007;
}

/// Name of a `qgs_msg_error_t` code.
pub fn error_name(code: u32) -> &'static str {
    match code {
        0 => "QGS_MSG_SUCCESS",
        error_code::UNEXPECTED => "QGS_MSG_ERROR_UNEXPECTED",
        error_code::OUT_OF_MEMORY => "QGS_MSG_ERROR_OUT_OF_MEMORY",
        error_code::INVALID_PARAMETER => "QGS_MSG_ERROR_INVALID_PARAMETER",
        error_code::INVALID_VERSION => "QGS_MSG_ERROR_INVALID_VERSION",
        error_code::INVALID_TYPE => "QGS_MSG_ERROR_INVALID_TYPE",
        error_code::INVALID_SIZE => "QGS_MSG_ERROR_INVALID_SIZE",
        error_code::INVALID_CODE => "QGS_MSG_ERROR_INVALID_CODE",
        _ => "unknown",
    }
}

/// Where the service is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QgsEndpoint {
    /// The vsock context ID (2: the host).
    pub cid: u32,
    /// The vsock port.
    pub port: u32,
}

impl QgsEndpoint {
    /// The service on the host at `port`.
    pub fn host(port: u32) -> Self {
        Self {
            cid: HOST_CID,
            port,
        }
    }
}

impl fmt::Display for QgsEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vsock CID {} port {}", self.cid, self.port)
    }
}

/// Time limits of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QgsTimeouts {
    /// Establishing the connection.
    pub connect: Duration,
    /// Everything after that: sending the request and reading the whole response.
    pub exchange: Duration,
}

impl Default for QgsTimeouts {
    fn default() -> Self {
        Self {
            connect: DEFAULT_CONNECT_TIMEOUT,
            exchange: DEFAULT_EXCHANGE_TIMEOUT,
        }
    }
}

/// A way to reach the service: opens one connection per request. The client does the framing;
/// the stream only carries bytes.
pub trait QgsTransport {
    /// The connection.
    type Stream: Read + Write;

    /// Where [`connect`](Self::connect) connects, for messages.
    fn endpoint(&self) -> QgsEndpoint;

    /// Opens a connection within `timeouts.connect`. Reads and writes on the stream must fail
    /// with [`io::ErrorKind::TimedOut`] or [`io::ErrorKind::WouldBlock`] instead of blocking past
    /// `timeouts.exchange` from the moment the connection is made. Errors keep the errno in
    /// [`io::Error::raw_os_error`]; the client classifies refusals by it.
    fn connect(&mut self, timeouts: &QgsTimeouts) -> io::Result<Self::Stream>;
}

impl<T: QgsTransport + ?Sized> QgsTransport for &mut T {
    type Stream = T::Stream;

    fn endpoint(&self) -> QgsEndpoint {
        (**self).endpoint()
    }

    fn connect(&mut self, timeouts: &QgsTimeouts) -> io::Result<Self::Stream> {
        (**self).connect(timeouts)
    }
}

/// Why a quote could not be obtained from the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QgsError {
    /// `/etc/tdx-attest.conf` cannot be read.
    #[error("cannot read {}", path.display())]
    Config {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The host refused or reset the connection.
    #[error(
        "no Quote Generation Service on {endpoint}: the host refused or reset the connection \
         (qgsd not running, or the TD was started without a quote-generation-socket)"
    )]
    NoService {
        /// Where the service was reached.
        endpoint: QgsEndpoint,
    },
    /// The guest has no usable vsock transport.
    #[error(
        "cannot reach the host over vsock ({endpoint}): this guest has no usable vsock transport"
    )]
    NoVsock {
        /// Where the service was reached.
        endpoint: QgsEndpoint,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The connection was not made in time.
    #[error("connecting to the Quote Generation Service on {endpoint} timed out after {timeout:?}")]
    ConnectTimedOut {
        /// Where the service was reached.
        endpoint: QgsEndpoint,
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// The connection failed otherwise.
    #[error("connecting to the Quote Generation Service on {endpoint}")]
    Connect {
        /// Where the service was reached.
        endpoint: QgsEndpoint,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The exchange did not finish in time.
    #[error("Quote Generation Service on {endpoint} did not finish within {timeout:?} ({stage})")]
    TimedOut {
        /// Where the service was reached.
        endpoint: QgsEndpoint,
        /// The timeout that ran out.
        timeout: Duration,
        /// What the client was doing: `sending the request` or `reading the response`.
        stage: &'static str,
    },
    /// Reading or writing failed.
    #[error("talking to the Quote Generation Service on {endpoint} ({stage})")]
    Io {
        /// Where the service was reached.
        endpoint: QgsEndpoint,
        /// What the client was doing.
        stage: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The service closed the connection without answering.
    #[error(
        "Quote Generation Service on {endpoint} closed the connection without a response (it does \
         so when it cannot parse the request or set up its quoting context)"
    )]
    ClosedWithoutResponse {
        /// Where the service was reached.
        endpoint: QgsEndpoint,
    },
    /// The response ended early.
    #[error(
        "Quote Generation Service response is truncated: {received} of {expected} bytes of the \
         {what} before the connection closed"
    )]
    Truncated {
        /// The part of the response.
        what: &'static str,
        /// Bytes the response announced.
        expected: usize,
        /// Bytes that came.
        received: usize,
    },
    /// The response claims more bytes than accepted.
    #[error("Quote Generation Service response claims {len} bytes, more than the {max} accepted")]
    ResponseTooLarge {
        /// The length claimed.
        len: u32,
        /// The cap.
        max: u32,
    },
    /// A message version thimble does not speak.
    #[error(
        "Quote Generation Service message version is {major}.{minor}, expected major version \
         {MSG_MAJOR_VERSION}"
    )]
    UnsupportedVersion {
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// A message that does not decode.
    #[error("malformed Quote Generation Service message: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The service failed the request.
    #[error("Quote Generation Service failed the request with error {code:#x} ({name})")]
    Service {
        /// The `qgs_msg_error_t` code.
        code: u32,
        /// Its name.
        name: &'static str,
    },
    /// Success, without a quote.
    #[error("Quote Generation Service reported success but returned an empty quote")]
    EmptyQuote,
}

fn malformed(reason: impl Into<String>) -> QgsError {
    QgsError::Malformed {
        reason: reason.into(),
    }
}

fn len_u32(what: &str, n: usize) -> Result<u32, QgsError> {
    u32::try_from(n).map_err(|_| malformed(format!("{what} of {n} bytes does not fit a u32")))
}

/// Serializes a `GET_QUOTE_REQ` for `report` and `id_list` (unframed).
pub fn encode_get_quote_req(report: &[u8], id_list: &[u8]) -> Result<Vec<u8>, QgsError> {
    if report.is_empty() {
        return Err(malformed("report_size cannot be 0"));
    }
    let size = GET_QUOTE_FIXED_LEN + report.len() + id_list.len();
    let mut msg = Vec::with_capacity(size);
    msg.extend_from_slice(&MSG_MAJOR_VERSION.to_le_bytes());
    msg.extend_from_slice(&MSG_MINOR_VERSION.to_le_bytes());
    msg.extend_from_slice(&GET_QUOTE_REQ.to_le_bytes());
    msg.extend_from_slice(&len_u32("request", size)?.to_le_bytes());
    msg.extend_from_slice(&0u32.to_le_bytes());
    msg.extend_from_slice(&len_u32("report", report.len())?.to_le_bytes());
    msg.extend_from_slice(&len_u32("id list", id_list.len())?.to_le_bytes());
    msg.extend_from_slice(report);
    msg.extend_from_slice(id_list);
    Ok(msg)
}

/// `msg` preceded by its big-endian length.
pub fn frame(msg: &[u8]) -> Result<Vec<u8>, QgsError> {
    let mut framed = Vec::with_capacity(FRAME_PREFIX_LEN + msg.len());
    framed.extend_from_slice(&len_u32("message", msg.len())?.to_be_bytes());
    framed.extend_from_slice(msg);
    Ok(framed)
}

/// A successful `GET_QUOTE_RESP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetQuoteResponse {
    /// The attestation key id the service chose; empty when the request named none.
    pub selected_id: Vec<u8>,
    /// The quote. Never empty.
    pub quote: Vec<u8>,
}

fn le_u16(msg: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([msg[at], msg[at + 1]])
}

fn le_u32(msg: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([msg[at], msg[at + 1], msg[at + 2], msg[at + 3]])
}

/// Parses an unframed `GET_QUOTE_RESP` with the checks of `qgs_msg_inflate_get_quote_resp`: the
/// fixed part is present, the major version and type are right, `size` is the message length
/// and equals the fixed part plus both payloads, and an error response carries no payload.
pub fn decode_get_quote_resp(msg: &[u8]) -> Result<GetQuoteResponse, QgsError> {
    if msg.len() < GET_QUOTE_FIXED_LEN {
        return Err(malformed(format!(
            "response of {} bytes is shorter than the {GET_QUOTE_FIXED_LEN}-byte GET_QUOTE_RESP \
             header",
            msg.len()
        )));
    }
    let major = le_u16(msg, 0);
    let minor = le_u16(msg, 2);
    if major != MSG_MAJOR_VERSION {
        return Err(QgsError::UnsupportedVersion { major, minor });
    }
    let msg_type = le_u32(msg, 4);
    if msg_type != GET_QUOTE_RESP {
        return Err(malformed(format!(
            "message type is {msg_type}, expected GET_QUOTE_RESP ({GET_QUOTE_RESP})"
        )));
    }
    let size = le_u32(msg, 8);
    if u64::from(size) != msg.len() as u64 {
        return Err(malformed(format!(
            "header size is {size} but the message has {} bytes",
            msg.len()
        )));
    }
    let error_code = le_u32(msg, 12);
    let id_size = le_u32(msg, 16);
    let quote_size = le_u32(msg, 20);
    let expected = GET_QUOTE_FIXED_LEN as u64 + u64::from(id_size) + u64::from(quote_size);
    if expected != u64::from(size) {
        return Err(malformed(format!(
            "selected_id_size {id_size} and quote_size {quote_size} do not add up to the \
             {size}-byte message"
        )));
    }
    if error_code != 0 {
        if id_size != 0 || quote_size != 0 {
            return Err(malformed(format!(
                "error response {error_code:#x} carries {id_size} id and {quote_size} quote bytes"
            )));
        }
        return Err(QgsError::Service {
            code: error_code,
            name: error_name(error_code),
        });
    }
    if quote_size == 0 {
        return Err(QgsError::EmptyQuote);
    }
    // Both sizes were checked against the message length above.
    let id_end = GET_QUOTE_FIXED_LEN + id_size as usize;
    Ok(GetQuoteResponse {
        selected_id: msg[GET_QUOTE_FIXED_LEN..id_end].to_vec(),
        quote: msg[id_end..].to_vec(),
    })
}

/// Quote requests to the service over a [`QgsTransport`].
#[derive(Debug)]
pub struct QgsClient<T: QgsTransport> {
    transport: T,
    timeouts: QgsTimeouts,
    max_response_len: u32,
}

impl<T: QgsTransport> QgsClient<T> {
    /// A client over `transport`, with the default timeouts and response cap.
    pub fn new(transport: T) -> Self {
        Self {
            transport,
            timeouts: QgsTimeouts::default(),
            max_response_len: DEFAULT_MAX_RESPONSE_LEN,
        }
    }

    /// The connect and exchange timeouts.
    pub fn with_timeouts(mut self, timeouts: QgsTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Refuses responses whose length prefix exceeds `max` bytes.
    pub fn with_max_response_len(mut self, max: u32) -> Self {
        self.max_response_len = max;
        self
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, giving up the client.
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// A quote for `tdreport`, as libtdx_attest asks for it (no attestation key id list).
    pub fn get_quote(&mut self, tdreport: &[u8; TDX_REPORT_LEN]) -> Result<Vec<u8>, QgsError> {
        Ok(self.get_quote_response(tdreport, &[])?.quote)
    }

    /// The full response to a `GET_QUOTE_REQ` for `report` and `id_list`. One connection, one
    /// request, no retry.
    pub fn get_quote_response(
        &mut self,
        report: &[u8],
        id_list: &[u8],
    ) -> Result<GetQuoteResponse, QgsError> {
        let request = frame(&encode_get_quote_req(report, id_list)?)?;
        let endpoint = self.transport.endpoint();
        let timeouts = self.timeouts;
        let mut stream = self
            .transport
            .connect(&timeouts)
            .map_err(|source| connect_error(endpoint, timeouts.connect, source))?;

        let io_error = |stage: &'static str| {
            move |source: io::Error| {
                if matches!(
                    source.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) {
                    QgsError::TimedOut {
                        endpoint,
                        timeout: timeouts.exchange,
                        stage,
                    }
                } else {
                    QgsError::Io {
                        endpoint,
                        stage,
                        source,
                    }
                }
            }
        };

        stream
            .write_all(&request)
            .and_then(|()| stream.flush())
            .map_err(io_error("sending the request"))?;

        let mut prefix = [0u8; FRAME_PREFIX_LEN];
        let got = read_full(&mut stream, &mut prefix).map_err(io_error("reading the response"))?;
        if got == 0 {
            return Err(QgsError::ClosedWithoutResponse { endpoint });
        }
        if got < FRAME_PREFIX_LEN {
            return Err(QgsError::Truncated {
                what: "length prefix",
                expected: FRAME_PREFIX_LEN,
                received: got,
            });
        }
        let len = u32::from_be_bytes(prefix);
        if len > self.max_response_len {
            return Err(QgsError::ResponseTooLarge {
                len,
                max: self.max_response_len,
            });
        }
        let len = len as usize;
        let mut body = vec![0u8; len];
        let got = read_full(&mut stream, &mut body).map_err(io_error("reading the response"))?;
        if got < len {
            return Err(QgsError::Truncated {
                what: "message",
                expected: len,
                received: got,
            });
        }
        decode_get_quote_resp(&body)
    }
}

/// Reads until `buf` is full or the peer closes; returns the bytes read.
fn read_full(stream: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Classifies a failed connect. A guest's virtio-vsock transport turns the host's "nobody
/// listens on this port" into a reset (`ECONNRESET`), other transports into `ECONNREFUSED`;
/// `af_vsock` answers `ENODEV`/`ENETUNREACH` when no transport can reach the host, and
/// `socket(2)` fails with `EAFNOSUPPORT` when the kernel has no vsock at all.
fn connect_error(endpoint: QgsEndpoint, timeout: Duration, source: io::Error) -> QgsError {
    match source.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ECONNREFUSED | Errno::ECONNRESET) => QgsError::NoService { endpoint },
        Some(Errno::ETIMEDOUT) => QgsError::ConnectTimedOut { endpoint, timeout },
        Some(Errno::ENODEV | Errno::ENETUNREACH | Errno::EHOSTUNREACH | Errno::EAFNOSUPPORT) => {
            QgsError::NoVsock { endpoint, source }
        }
        _ if source.kind() == io::ErrorKind::TimedOut => {
            QgsError::ConnectTimedOut { endpoint, timeout }
        }
        _ => QgsError::Connect { endpoint, source },
    }
}

/// The real transport: an `AF_VSOCK` stream socket to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsockTransport {
    endpoint: QgsEndpoint,
}

impl VsockTransport {
    /// The service on the host (CID 2) at `port`.
    pub fn new(port: u32) -> Self {
        Self {
            endpoint: QgsEndpoint::host(port),
        }
    }

    /// The service at the port `/etc/tdx-attest.conf` names, or [`DEFAULT_PORT`].
    pub fn from_default_conf() -> Result<Self, QgsError> {
        Ok(Self::new(configured_port(Path::new(DEFAULT_CONF_PATH))?))
    }
}

impl QgsTransport for VsockTransport {
    type Stream = VsockStream;

    fn endpoint(&self) -> QgsEndpoint {
        self.endpoint
    }

    fn connect(&mut self, timeouts: &QgsTimeouts) -> io::Result<VsockStream> {
        if self.endpoint.port == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "port 0 disables the vsock path (libtdx_attest convention)",
            ));
        }
        // Non-blocking from the start: connect then completes under poll(2) with our timeout
        // instead of af_vsock's own connect timeout, and every later read and write is bounded
        // by the exchange deadline.
        let fd = socket(
            AddressFamily::Vsock,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        let addr = VsockAddr::new(self.endpoint.cid, self.endpoint.port);
        match connect(fd.as_raw_fd(), &addr) {
            Ok(()) => {}
            Err(Errno::EINPROGRESS) => {
                wait_ready(&fd, PollFlags::POLLOUT, Instant::now() + timeouts.connect)?;
                let pending = getsockopt(&fd, sockopt::SocketError)?;
                if pending != 0 {
                    return Err(io::Error::from_raw_os_error(pending));
                }
            }
            Err(errno) => return Err(errno.into()),
        }
        Ok(VsockStream {
            fd,
            deadline: Instant::now() + timeouts.exchange,
        })
    }
}

/// A connected vsock stream whose reads and writes fail with `TimedOut` past a deadline.
#[derive(Debug)]
pub struct VsockStream {
    fd: OwnedFd,
    deadline: Instant,
}

impl Read for VsockStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            wait_ready(&self.fd, PollFlags::POLLIN, self.deadline)?;
            match recv(self.fd.as_raw_fd(), buf, MsgFlags::empty()) {
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                other => return other.map_err(io::Error::from),
            }
        }
    }
}

impl Write for VsockStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            wait_ready(&self.fd, PollFlags::POLLOUT, self.deadline)?;
            // MSG_NOSIGNAL: a host that closed early must give EPIPE, not kill us with SIGPIPE.
            match send(self.fd.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL) {
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                other => return other.map_err(io::Error::from),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Waits until `fd` is ready for `events` (or has an error or hang-up to report), or fails with
/// `TimedOut` at `deadline`.
fn wait_ready(fd: &OwnedFd, events: PollFlags, deadline: Instant) -> io::Result<()> {
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        // Rounded up, so that a sub-millisecond remainder does not become a busy loop.
        let millis = remaining.as_nanos().div_ceil(1_000_000);
        let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), events)];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(Errno::EINTR) => {}
            Ok(_) => return Ok(()),
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// The port in the text of `/etc/tdx-attest.conf`, read as libtdx_attest reads it: lines whose
/// first non-blank character is `#` are comments; the first line of the form `port = DIGITS`
/// (blanks allowed around each part, at most 10 digits, nothing else on the line) decides.
/// `None` when no line sets a port or the value does not fit a `u32`.
///
/// `Some(0)` is returned as written: libtdx_attest takes port 0 (like a missing file) to mean
/// "do not use vsock". thimble differs for a missing file only, where it assumes
/// [`DEFAULT_PORT`].
pub fn parse_tdx_attest_conf(text: &str) -> Option<u32> {
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some(value) = line
            .strip_prefix("port")
            .and_then(|rest| rest.trim_start().strip_prefix('='))
            .map(str::trim)
        else {
            continue;
        };
        if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        return value.parse().ok();
    }
    None
}

/// The service port configured in the file at `path` (normally [`DEFAULT_CONF_PATH`]);
/// [`DEFAULT_PORT`] when the file does not exist or sets no port.
pub fn configured_port(path: &Path) -> Result<u32, QgsError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            Ok(parse_tdx_attest_conf(&String::from_utf8_lossy(&bytes)).unwrap_or(DEFAULT_PORT))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(DEFAULT_PORT),
        Err(source) => Err(QgsError::Config {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Whether the vsock path to the service at `port` can be tried, for `detect`: checks only that
/// the kernel can create `AF_VSOCK` stream sockets. It connects nowhere, so `Ok` does not mean a
/// service is listening. `Err` carries the reason in words.
pub fn probe(port: u32) -> Result<(), String> {
    if port == 0 {
        return Err(format!(
            "{DEFAULT_CONF_PATH} sets port 0, which disables the vsock path to the Quote \
             Generation Service"
        ));
    }
    match socket(
        AddressFamily::Vsock,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    ) {
        Ok(_) => Ok(()),
        Err(Errno::EAFNOSUPPORT) => Err(
            "the kernel has no vsock support (socket(AF_VSOCK) fails with EAFNOSUPPORT; \
             vsock or vmw_vsock_virtio_transport not loaded)"
                .to_owned(),
        ),
        Err(errno) => Err(format!(
            "cannot create an AF_VSOCK socket: {} ({errno:?})",
            errno.desc()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(error_code: u32, id: &[u8], quote: &[u8]) -> Vec<u8> {
        let size = (GET_QUOTE_FIXED_LEN + id.len() + quote.len()) as u32;
        let mut m = Vec::new();
        m.extend(1u16.to_le_bytes());
        m.extend(1u16.to_le_bytes());
        m.extend(GET_QUOTE_RESP.to_le_bytes());
        m.extend(size.to_le_bytes());
        m.extend(error_code.to_le_bytes());
        m.extend((id.len() as u32).to_le_bytes());
        m.extend((quote.len() as u32).to_le_bytes());
        m.extend(id);
        m.extend(quote);
        m
    }

    #[test]
    fn request_layout() {
        let report = [0xAB; TDX_REPORT_LEN];
        let msg = encode_get_quote_req(&report, &[]).unwrap();
        assert_eq!(msg.len(), 24 + 1024);
        assert_eq!(
            &msg[..24],
            &[
                1, 0, 1, 0, // version 1.1
                0, 0, 0, 0, // GET_QUOTE_REQ
                0x18, 0x04, 0, 0, // size 1048
                0, 0, 0, 0, // error_code
                0, 4, 0, 0, // report_size 1024
                0, 0, 0, 0, // id_list_size
            ]
        );
        assert_eq!(&msg[24..], &report);
        let framed = frame(&msg).unwrap();
        assert_eq!(&framed[..4], &[0, 0, 0x04, 0x18]);
        assert!(encode_get_quote_req(&[], &[]).is_err());
    }

    #[test]
    fn response_decoding() {
        let ok = decode_get_quote_resp(&response(0, b"id", b"QUOTE")).unwrap();
        assert_eq!(ok.selected_id, b"id");
        assert_eq!(ok.quote, b"QUOTE");

        let err = decode_get_quote_resp(&response(error_code::UNEXPECTED, b"", b"")).unwrap_err();
        assert!(
            matches!(
                err,
                QgsError::Service {
                    code: 0x12001,
                    name: "QGS_MSG_ERROR_UNEXPECTED"
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("0x12001"));
        assert!(matches!(
            decode_get_quote_resp(&response(0, b"", b"")),
            Err(QgsError::EmptyQuote)
        ));
        assert!(matches!(
            decode_get_quote_resp(&response(error_code::UNEXPECTED, b"", b"q")),
            Err(QgsError::Malformed { .. })
        ));

        let mut wrong_version = response(0, b"", b"q");
        wrong_version[0] = 2;
        assert!(matches!(
            decode_get_quote_resp(&wrong_version),
            Err(QgsError::UnsupportedVersion { major: 2, minor: 1 })
        ));
        let mut newer_minor = response(0, b"", b"q");
        newer_minor[2] = 9;
        assert!(decode_get_quote_resp(&newer_minor).is_ok());

        let mut wrong_type = response(0, b"", b"q");
        wrong_type[4] = 0;
        assert!(matches!(
            decode_get_quote_resp(&wrong_type),
            Err(QgsError::Malformed { .. })
        ));

        assert!(decode_get_quote_resp(&response(0, b"", b"q")[..23]).is_err());

        let mut lying_size = response(0, b"", b"quote");
        lying_size[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_get_quote_resp(&lying_size),
            Err(QgsError::Malformed { .. })
        ));
        let mut lying_header = response(0, b"", b"quote");
        lying_header[8] += 1;
        assert!(matches!(
            decode_get_quote_resp(&lying_header),
            Err(QgsError::Malformed { .. })
        ));
    }

    #[test]
    fn conf_parsing_follows_libtdx_attest() {
        assert_eq!(parse_tdx_attest_conf("port=4050\n"), Some(4050));
        assert_eq!(parse_tdx_attest_conf("  port =  4051  \r\n"), Some(4051));
        assert_eq!(parse_tdx_attest_conf("\tport\t=\t4052"), Some(4052));
        assert_eq!(
            parse_tdx_attest_conf("# port=1\n  #port=2\nfoo=bar\nport=4053\nport=4054\n"),
            Some(4053)
        );
        assert_eq!(parse_tdx_attest_conf("port=0\n"), Some(0));
        assert_eq!(parse_tdx_attest_conf("port=04050"), Some(4050));
        assert_eq!(parse_tdx_attest_conf(""), None);
        assert_eq!(parse_tdx_attest_conf("port=\n"), None);
        assert_eq!(parse_tdx_attest_conf("port=40x\n"), None);
        assert_eq!(parse_tdx_attest_conf("port=4050 # comment\n"), None);
        assert_eq!(parse_tdx_attest_conf("ports=4050\n"), None);
        assert_eq!(parse_tdx_attest_conf("port=12345678901\nport=7\n"), Some(7));
        assert_eq!(parse_tdx_attest_conf("port=4294967296\n"), None);
        assert_eq!(parse_tdx_attest_conf("port=4294967295\n"), Some(u32::MAX));
    }

    #[test]
    fn configured_port_defaults_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.conf");
        assert_eq!(configured_port(&missing).unwrap(), DEFAULT_PORT);
        let conf = dir.path().join("tdx-attest.conf");
        std::fs::write(&conf, "# QGS\nport = 4999\n").unwrap();
        assert_eq!(configured_port(&conf).unwrap(), 4999);
        std::fs::write(&conf, "nothing here\n").unwrap();
        assert_eq!(configured_port(&conf).unwrap(), DEFAULT_PORT);
        assert!(matches!(
            configured_port(dir.path()),
            Err(QgsError::Config { .. })
        ));
    }

    #[test]
    fn connect_errors_are_classified() {
        let ep = QgsEndpoint::host(4050);
        let t = Duration::from_secs(1);
        let e = |errno: Errno| connect_error(ep, t, io::Error::from_raw_os_error(errno as i32));
        let refused = e(Errno::ECONNREFUSED);
        assert!(matches!(refused, QgsError::NoService { .. }));
        assert_eq!(
            refused.to_string().split(':').next().unwrap(),
            "no Quote Generation Service on vsock CID 2 port 4050"
        );
        assert!(matches!(e(Errno::ECONNRESET), QgsError::NoService { .. }));
        assert!(matches!(
            e(Errno::ETIMEDOUT),
            QgsError::ConnectTimedOut { .. }
        ));
        assert!(matches!(e(Errno::ENODEV), QgsError::NoVsock { .. }));
        assert!(matches!(e(Errno::EACCES), QgsError::Connect { .. }));
    }

    /// The deadline logic of the vsock stream, over a Unix socket pair standing in for the
    /// vsock connection.
    #[test]
    fn vsock_stream_io_is_bounded_by_the_deadline() {
        use nix::sys::socket::socketpair;
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let mut stream = VsockStream {
            fd: ours,
            deadline: Instant::now() + Duration::from_millis(200),
        };
        stream.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(
            recv(theirs.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap(),
            4
        );
        assert_eq!(&buf, b"ping");
        send(theirs.as_raw_fd(), b"pong", MsgFlags::empty()).unwrap();
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pong");

        let start = Instant::now();
        let err = stream.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(5));

        drop(theirs);
        stream.deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(stream.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn probe_port_zero() {
        assert!(probe(0).unwrap_err().contains("port 0"));
    }

    #[test]
    fn error_names() {
        assert_eq!(error_name(0x12006), "QGS_MSG_ERROR_INVALID_SIZE");
        assert_eq!(error_name(0xE011), "unknown");
    }
}
