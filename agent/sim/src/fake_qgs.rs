// SPDX-License-Identifier: Apache-2.0
//! A fake host Quote Generation Service for `thimble_collect::qgs::QgsClient`, served over a Unix
//! socket pair that stands in for the vsock connection (no network, no vsock).
//!
//! Each `connect` makes a socket pair and a thread that plays one QGS connection as
//! `qgs_server.cpp` and `qgs_ql_logic.cpp` (Intel SGXDataCenterAttestationPrimitives,
//! `QuoteGeneration/quote_wrapper/qgs/`) do: read the big-endian length prefix and the message,
//! close without a word if the header is unusable, answer a `GET_QUOTE_REQ` it cannot inflate
//! with `QGS_MSG_ERROR_UNEXPECTED`, otherwise answer with a quote, then close. The messages are
//! encoded here independently of the client's encoder (from `qgs_msg_lib.h`), so the tests
//! compare two readings of the format rather than one with itself.
//!
//! Faults ([`QgsFault`]) reproduce what a missing, broken or hostile host does. The default quote
//! ([`sim_quote`]) is shaped like a TDX v4 quote that carries the TDREPORT's measurements and
//! report data, but it is unsigned: nothing here can pass a real verification.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::errno::Errno;
use thimble_collect::qgs::{DEFAULT_PORT, QgsEndpoint, QgsTimeouts, QgsTransport};
use thimble_evidence::tdx::quote::{QUOTE_HEADER_LEN, TD_REPORT10_BODY_LEN};
use thimble_evidence::tdx::td_report::TD_REPORT_LEN;
use thimble_evidence::tdx::{QuoteHeader, TdReportFields, TdxBody, UnsignedQuote};

// qgs_msg_lib.h, read independently of thimble_collect::qgs.
const MAJOR_VERSION: u16 = 1;
const MINOR_VERSION: u16 = 1;
const GET_QUOTE_REQ: u32 = 0;
const GET_QUOTE_RESP: u32 = 1;
const QGS_MSG_TYPE_MAX: u32 = 6;
const HEADER_LEN: usize = 16;
const GET_QUOTE_LEN: usize = HEADER_LEN + 8;
const QGS_MSG_ERROR_UNEXPECTED: u32 = 0x0001_2001;

/// `QGS_TIMEOUT` in qgs_server.cpp: the service drops a connection after 30 s.
pub const SERVICE_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest request the fake reads; QGS requests are about 1 KiB.
const MAX_REQUEST_LEN: u32 = 1 << 16;

/// Makes the quote for a report (the `report` bytes of a `GET_QUOTE_REQ`).
pub type QuoteMaker = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// What goes wrong on every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QgsFault {
    /// `connect` fails with `ECONNREFUSED`: nothing listens on the port.
    Refuse,
    /// `connect` fails with `ECONNRESET`, which is how a guest's virtio-vsock transport reports a
    /// port nobody listens on.
    Reset,
    /// The service answers with this `error_code` and no quote.
    ErrorCode(u32),
    /// The service answers success with `quote_size` 0.
    EmptyQuote,
    /// The response header carries this major version.
    WrongVersion(u16),
    /// The response header carries this message type.
    WrongType(u32),
    /// Only the first `n` bytes of the framed response are sent before the connection closes.
    Truncate(usize),
    /// The length prefix claims this many bytes; the real message follows and the connection
    /// closes.
    OversizeLength(u32),
    /// The service reads the request and never answers, holding the connection open until the
    /// client leaves or [`SERVICE_TIMEOUT`] passes.
    Hang,
    /// The service reads the request and closes without answering.
    CloseWithoutResponse,
}

/// Fake QGS. Clones share their records, so a test can keep one clone and hand another to the
/// client.
#[derive(Clone)]
pub struct FakeQgs {
    endpoint: QgsEndpoint,
    quote_maker: QuoteMaker,
    selected_id: Vec<u8>,
    fault: Option<QgsFault>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    connections: usize,
    requests: Vec<Vec<u8>>,
    reports: Vec<Vec<u8>>,
    threads: Vec<JoinHandle<()>>,
}

impl fmt::Debug for FakeQgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeQgs")
            .field("endpoint", &self.endpoint)
            .field("fault", &self.fault)
            .finish_non_exhaustive()
    }
}

impl Default for FakeQgs {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeQgs {
    /// A service "on vsock CID 2 port 4050" that answers with [`sim_quote`].
    pub fn new() -> Self {
        Self {
            endpoint: QgsEndpoint::host(DEFAULT_PORT),
            quote_maker: Arc::new(sim_quote),
            selected_id: Vec::new(),
            fault: None,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// Answers every request with `quote`.
    pub fn with_quote(self, quote: Vec<u8>) -> Self {
        self.with_quote_maker(Arc::new(move |_| quote.clone()))
    }

    /// Answers with what `maker` makes of the request's report.
    pub fn with_quote_maker(mut self, maker: QuoteMaker) -> Self {
        self.quote_maker = maker;
        self
    }

    /// Reports `id` as the selected attestation key id.
    pub fn with_selected_id(mut self, id: Vec<u8>) -> Self {
        self.selected_id = id;
        self
    }

    /// The port the fake claims to listen on (it only appears in messages).
    pub fn with_port(mut self, port: u32) -> Self {
        self.endpoint = QgsEndpoint::host(port);
        self
    }

    /// Injects `fault` into every connection.
    pub fn with_fault(mut self, fault: QgsFault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// `connect` calls so far, refused ones included.
    pub fn connections(&self) -> usize {
        self.lock().connections
    }

    /// Every complete request message the service read (without the length prefix).
    pub fn requests(&self) -> Vec<Vec<u8>> {
        self.lock().requests.clone()
    }

    /// The report of every `GET_QUOTE_REQ` the service accepted.
    pub fn reports(&self) -> Vec<Vec<u8>> {
        self.lock().reports.clone()
    }

    /// Waits until every connection thread has finished.
    pub fn join(&self) {
        let threads = std::mem::take(&mut self.lock().threads);
        for thread in threads {
            // A panicking connection thread is a bug in the fake; the test will notice the
            // missing answer.
            let _ = thread.join();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One connection, as `QgsConnection` handles it.
    fn serve(&self, mut stream: UnixStream) {
        let mut prefix = [0u8; 4];
        if stream.read_exact(&mut prefix).is_err() {
            return;
        }
        let len = u32::from_be_bytes(prefix);
        if len == 0 || len > MAX_REQUEST_LEN {
            return;
        }
        let mut msg = vec![0u8; len as usize];
        if stream.read_exact(&mut msg).is_err() {
            return;
        }
        self.lock().requests.push(msg.clone());

        // `decode_header` / `qgs_msg_get_type`: a prefix that disagrees with the header, a
        // foreign major version or an unknown type gets no answer.
        if msg.len() < HEADER_LEN
            || le_u32(&msg, 8) != len
            || le_u16(&msg, 0) != MAJOR_VERSION
            || le_u32(&msg, 4) >= QGS_MSG_TYPE_MAX
        {
            return;
        }
        // The real service also answers GET_COLLATERAL_REQ and GET_PLATFORM_INFO_REQ; the fake
        // serves quotes only and hangs up on the rest.
        if le_u32(&msg, 4) != GET_QUOTE_REQ {
            return;
        }

        let response = match inflate_get_quote_req(&msg) {
            None => error_resp(QGS_MSG_ERROR_UNEXPECTED),
            Some(report) => {
                self.lock().reports.push(report.to_vec());
                match &self.fault {
                    Some(QgsFault::Hang) => {
                        // Read until the client gives up or the service's own timeout fires.
                        let mut sink = [0u8; 64];
                        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                        return;
                    }
                    Some(QgsFault::CloseWithoutResponse) => return,
                    Some(QgsFault::ErrorCode(code)) => error_resp(*code),
                    Some(QgsFault::EmptyQuote) => quote_resp(&[], &[]),
                    _ => quote_resp(&self.selected_id, &(self.quote_maker)(report)),
                }
            }
        };

        let mut response = response;
        match &self.fault {
            Some(QgsFault::WrongVersion(major)) => {
                response[0..2].copy_from_slice(&major.to_le_bytes());
            }
            Some(QgsFault::WrongType(msg_type)) => {
                response[4..8].copy_from_slice(&msg_type.to_le_bytes());
            }
            _ => {}
        }
        let claimed = match &self.fault {
            Some(QgsFault::OversizeLength(claimed)) => *claimed,
            _ => u32::try_from(response.len()).unwrap_or(u32::MAX),
        };
        let mut framed = claimed.to_be_bytes().to_vec();
        framed.extend_from_slice(&response);
        if let Some(QgsFault::Truncate(n)) = &self.fault {
            framed.truncate(*n);
        }
        // Best effort, as in the service: a client that left early is not an error here.
        let _ = stream.write_all(&framed);
    }
}

impl QgsTransport for FakeQgs {
    type Stream = UnixStream;

    fn endpoint(&self) -> QgsEndpoint {
        self.endpoint
    }

    fn connect(&mut self, timeouts: &QgsTimeouts) -> io::Result<UnixStream> {
        self.lock().connections += 1;
        match self.fault {
            Some(QgsFault::Refuse) => {
                return Err(io::Error::from_raw_os_error(Errno::ECONNREFUSED as i32));
            }
            Some(QgsFault::Reset) => {
                return Err(io::Error::from_raw_os_error(Errno::ECONNRESET as i32));
            }
            _ => {}
        }
        let (client, server) = UnixStream::pair()?;
        // set_*_timeout refuses a zero duration.
        let exchange = timeouts.exchange.max(Duration::from_millis(1));
        client.set_read_timeout(Some(exchange))?;
        client.set_write_timeout(Some(exchange))?;
        server.set_read_timeout(Some(SERVICE_TIMEOUT))?;
        server.set_write_timeout(Some(SERVICE_TIMEOUT))?;
        let service = self.clone();
        let thread = thread::spawn(move || service.serve(server));
        self.lock().threads.push(thread);
        Ok(client)
    }
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `qgs_msg_inflate_get_quote_req`: the report, or `None` where the library fails.
fn inflate_get_quote_req(msg: &[u8]) -> Option<&[u8]> {
    if msg.len() < GET_QUOTE_LEN
        || le_u16(msg, 0) != MAJOR_VERSION
        || le_u32(msg, 4) != GET_QUOTE_REQ
        || le_u32(msg, 8) as usize != msg.len()
        || le_u32(msg, 12) != 0
    {
        return None;
    }
    let report_size = le_u32(msg, 16) as usize;
    let id_list_size = le_u32(msg, 20) as usize;
    if report_size == 0 || GET_QUOTE_LEN + report_size + id_list_size != msg.len() {
        return None;
    }
    msg.get(GET_QUOTE_LEN..GET_QUOTE_LEN + report_size)
}

fn resp_header(size: usize, error_code: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(size);
    m.extend_from_slice(&MAJOR_VERSION.to_le_bytes());
    m.extend_from_slice(&MINOR_VERSION.to_le_bytes());
    m.extend_from_slice(&GET_QUOTE_RESP.to_le_bytes());
    m.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_le_bytes());
    m.extend_from_slice(&error_code.to_le_bytes());
    m
}

/// `qgs_msg_gen_error_resp(code, GET_QUOTE_RESP)`.
fn error_resp(error_code: u32) -> Vec<u8> {
    let mut m = resp_header(GET_QUOTE_LEN, error_code);
    m.extend_from_slice(&[0; 8]);
    m
}

/// `qgs_msg_gen_get_quote_resp` (which itself refuses an empty quote; the fake does not, to
/// model a hostile host).
fn quote_resp(selected_id: &[u8], quote: &[u8]) -> Vec<u8> {
    let size = GET_QUOTE_LEN + selected_id.len() + quote.len();
    let mut m = resp_header(size, 0);
    m.extend_from_slice(
        &u32::try_from(selected_id.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    m.extend_from_slice(&u32::try_from(quote.len()).unwrap_or(u32::MAX).to_le_bytes());
    m.extend_from_slice(selected_id);
    m.extend_from_slice(quote);
    m
}

/// Intel's QE vendor id (`939a7233-f79c-4ca9-940a-0db3957f0607`), as real TDX quotes carry it.
pub use thimble_evidence::tdx::quote::INTEL_QE_VENDOR_ID;

/// Offset of `report_data` in a v4 quote (docs/formats.md §6.3).
pub const QUOTE_REPORT_DATA_OFFSET: usize = QUOTE_HEADER_LEN
    + match TdxBody::field("report_data") {
        Some(f) => f.offset,
        None => panic!("the quote body has report_data"),
    };

/// Length of [`sim_quote`]'s output: header, TD body, a zero `signature_data_len`.
pub const SIM_QUOTE_LEN: usize = QUOTE_HEADER_LEN + TD_REPORT10_BODY_LEN + 4;

/// An unsigned stand-in for the quote of `tdreport`: a v4 header (ECDSA-256 attestation key,
/// TEE type 0x81, Intel's QE vendor id) and the v4 TD body filled from the TDREPORT
/// (docs/formats.md §6.2 to §6.3), then an empty signature section. The report is read as the
/// service reads it, without checks: a short one is taken as zero-padded.
pub fn sim_quote(tdreport: &[u8]) -> Vec<u8> {
    let mut report = [0u8; TD_REPORT_LEN];
    for (d, s) in report.iter_mut().zip(tdreport) {
        *d = *s;
    }
    let unsigned = UnsignedQuote {
        header: QuoteHeader::tdx(4, [0; 20]),
        body: TdReportFields::decode(&report).quote_body(false),
    };
    let mut q = unsigned.signed_bytes();
    q.extend_from_slice(&0u32.to_le_bytes());
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_tdx_guest::{TdReportTemplate, build_td_report};

    #[test]
    fn sim_quote_carries_the_report() {
        let template = TdReportTemplate::default();
        let report = build_td_report(&template, &[0x42; 64]);
        let quote = sim_quote(&report);
        assert_eq!(quote.len(), SIM_QUOTE_LEN);
        assert_eq!(&quote[0..8], &[4, 0, 2, 0, 0x81, 0, 0, 0]);
        assert_eq!(&quote[184..232], &template.mr_td);
        assert_eq!(&quote[376 + 96..376 + 144], &template.rtmr[2]);
        assert_eq!(&quote[568..632], &[0x42; 64]);
        assert_eq!(&quote[632..636], &[0; 4]);
        // A short report leaves fields zero rather than panicking.
        assert_eq!(sim_quote(&[1; 10]).len(), SIM_QUOTE_LEN);
    }

    #[test]
    fn request_inflation_follows_the_library() {
        let mut msg = Vec::new();
        msg.extend(1u16.to_le_bytes());
        msg.extend(1u16.to_le_bytes());
        msg.extend(0u32.to_le_bytes());
        msg.extend(27u32.to_le_bytes());
        msg.extend(0u32.to_le_bytes());
        msg.extend(3u32.to_le_bytes());
        msg.extend(0u32.to_le_bytes());
        msg.extend([7, 8, 9]);
        assert_eq!(inflate_get_quote_req(&msg), Some(&[7u8, 8, 9][..]));
        let mut zero_report = msg.clone();
        zero_report[16] = 0;
        assert_eq!(inflate_get_quote_req(&zero_report), None);
        let mut with_error = msg.clone();
        with_error[12] = 1;
        assert_eq!(inflate_get_quote_req(&with_error), None);
        assert_eq!(inflate_get_quote_req(&msg[..26]), None);
    }

    #[test]
    fn error_response_shape() {
        let r = error_resp(0x12001);
        assert_eq!(r.len(), 24);
        assert_eq!(le_u32(&r, 8), 24);
        assert_eq!(le_u32(&r, 12), 0x12001);
    }
}
