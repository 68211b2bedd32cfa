// SPDX-License-Identifier: Apache-2.0
//! TPM 2.0 command and response framing (TPM 2.0 Library Part 1, "Command/Response Structure"
//! and "Password Authorizations"): the 10-byte header, the handle area, the authorization area
//! of password sessions, the parameter area, and the response's authorization area.
//!
//! Both directions are here because both sides of thimble speak them: the vTPM client encodes
//! commands and decodes responses, the fake vTPM decodes commands and encodes responses. A
//! decoded command keeps its sessions as sent; deciding what they authorize is the TPM's (or
//! the fake's) business, not the codec's. No I/O.

use thiserror::Error;

use super::rc::ResponseCode;
use super::structures::{TpmsAuthCommand, TpmsAuthResponse};
use super::wire::{Malformed, Marshal, MarshalError, TpmReader, TpmWriter};
use super::{HEADER_LEN, st};

/// The header of a command or a response: `tag`, `commandSize`/`responseSize`, and
/// `commandCode`/`responseCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `TPM_ST_NO_SESSIONS` or `TPM_ST_SESSIONS` ([`st`]).
    pub tag: u16,
    /// Size of the whole command or response in bytes, header included.
    pub size: u32,
    /// `TPM_CC` of a command ([`cc`](super::cc)), `TPM_RC` of a response ([`rc`](super::rc)).
    pub code: u32,
}

impl Marshal for Header {
    const NAME: &'static str = "header";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u16(self.tag).u32(self.size).u32(self.code);
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(Header {
            tag: r.u16("tag")?,
            size: r.u32("size")?,
            code: r.u32("code")?,
        })
    }
}

/// The `commandSize`/`responseSize` field of a header, if that much of it has arrived: how a
/// transport knows how much more to read.
pub fn declared_size(bytes: &[u8]) -> Option<usize> {
    let mut r = TpmReader::new(bytes);
    r.u16("tag").ok()?;
    Some(r.u32("size").ok()? as usize)
}

/// The `commandCode` of a command, if its header has arrived (the fake vTPM files faults and
/// its log by it before anything else is checked).
pub fn command_code(bytes: &[u8]) -> Option<u32> {
    Header::unmarshal(&mut TpmReader::new(bytes))
        .ok()
        .map(|h| h.code)
}

/// `size` as the `u32` of a header or size field.
fn size_u32(what: &'static str, len: usize) -> Result<u32, MarshalError> {
    u32::try_from(len).map_err(|_| MarshalError::TooLarge {
        what,
        len,
        max: u32::MAX as usize,
    })
}

/// A command: its code, handle area, sessions and parameter area. The tag follows from the
/// sessions: `TPM_ST_SESSIONS` exactly when there is at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// `TPM_CC` ([`cc`](super::cc)).
    pub code: u32,
    /// The handle area, in order.
    pub handles: Vec<u32>,
    /// The authorization area's sessions, as sent (nothing here checks what they authorize).
    pub sessions: Vec<TpmsAuthCommand>,
    /// The parameter area, marshalled.
    pub params: Vec<u8>,
}

/// Why bytes are not a command, in the order a TPM checks (Part 1 §18.2-18.4; the reference
/// implementation's `ExecuteCommand`), so that a fake can answer each with the TPM's code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Shorter than the header.
    #[error("the command is shorter than its 10-byte header")]
    Header(#[source] Malformed),
    /// `commandSize` is not the number of bytes received.
    #[error("the header declares {declared} bytes but the command is {actual}")]
    Size {
        /// `commandSize`.
        declared: u32,
        /// Bytes received.
        actual: usize,
    },
    /// The tag is neither `TPM_ST_NO_SESSIONS` nor `TPM_ST_SESSIONS`.
    #[error("tag {tag:#06x} is neither TPM_ST_NO_SESSIONS nor TPM_ST_SESSIONS")]
    Tag {
        /// As read.
        tag: u16,
    },
    /// A command code the caller's `handle_count` does not know.
    #[error("command code {code:#010x} is not one whose handle area is known")]
    CommandCode {
        /// As read.
        code: u32,
    },
    /// The handle area is cut short.
    #[error("the handle area is truncated")]
    Handles(#[source] Malformed),
    /// `authorizationSize` or a session does not fit, or the sessions do not fill the area.
    #[error("the authorization area is malformed")]
    AuthArea(#[source] Malformed),
    /// `TPM_ST_SESSIONS` with an empty authorization area.
    #[error("TPM_ST_SESSIONS with no session in the authorization area")]
    NoSessions,
}

impl Command {
    /// Marshals the command: header, handles, then, with sessions, `authorizationSize` and the
    /// sessions, then the parameters.
    pub fn encode(&self) -> Result<Vec<u8>, MarshalError> {
        let mut body = TpmWriter::new();
        for &h in &self.handles {
            body.u32(h);
        }
        if !self.sessions.is_empty() {
            let mut auth = TpmWriter::new();
            for s in &self.sessions {
                auth.marshal(s)?;
            }
            body.u32(size_u32("authorization area", auth.len())?)
                .bytes(auth.as_bytes());
        }
        body.bytes(&self.params);
        let tag = if self.sessions.is_empty() {
            st::NO_SESSIONS
        } else {
            st::SESSIONS
        };
        let size = size_u32("command", HEADER_LEN + body.len())?;
        let mut out = TpmWriter::new();
        out.marshal(&Header {
            tag,
            size,
            code: self.code,
        })?
        .bytes(body.as_bytes());
        Ok(out.into_bytes())
    }

    /// Unmarshals a command whose handle area `handle_count` knows the size of (`None`: a
    /// command the caller does not implement, [`CommandError::CommandCode`]).
    pub fn decode(
        bytes: &[u8],
        handle_count: impl Fn(u32) -> Option<usize>,
    ) -> Result<Command, CommandError> {
        let mut r = TpmReader::new(bytes);
        let header = Header::unmarshal(&mut r).map_err(CommandError::Header)?;
        if header.size as usize != bytes.len() {
            return Err(CommandError::Size {
                declared: header.size,
                actual: bytes.len(),
            });
        }
        if header.tag != st::NO_SESSIONS && header.tag != st::SESSIONS {
            return Err(CommandError::Tag { tag: header.tag });
        }
        let count =
            handle_count(header.code).ok_or(CommandError::CommandCode { code: header.code })?;
        let mut handles = Vec::with_capacity(count);
        for _ in 0..count {
            handles.push(r.u32("handle").map_err(CommandError::Handles)?);
        }
        let mut sessions = Vec::new();
        if header.tag == st::SESSIONS {
            let size = r.u32("authorizationSize").map_err(CommandError::AuthArea)?;
            let area = r
                .take(size as usize, "authorization")
                .map_err(CommandError::AuthArea)?;
            let mut a = TpmReader::new(area);
            while a.remaining() > 0 {
                sessions.push(a.unmarshal().map_err(CommandError::AuthArea)?);
            }
            if sessions.is_empty() {
                return Err(CommandError::NoSessions);
            }
        }
        Ok(Command {
            code: header.code,
            handles,
            sessions,
            params: r.rest().to_vec(),
        })
    }
}

/// Marshals a command with one password session per entry of `passwords` (none: no
/// authorization area, `TPM_ST_NO_SESSIONS`).
pub fn encode_command(
    code: u32,
    handles: &[u32],
    passwords: &[&[u8]],
    params: &[u8],
) -> Result<Vec<u8>, MarshalError> {
    Command {
        code,
        handles: handles.to_vec(),
        sessions: passwords
            .iter()
            .map(|p| TpmsAuthCommand::password(p))
            .collect(),
        params: params.to_vec(),
    }
    .encode()
}

/// A successful response's handle area and parameter area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseBody {
    /// The response handle area (a handle the command created or loaded).
    pub handles: Vec<u32>,
    /// The parameter area, marshalled.
    pub params: Vec<u8>,
}

/// Why a response is not a successful one. Exhaustive on purpose, unlike the other error
/// enums: a response either carries a TPM error code or does not decode, and callers map each
/// of the two to their own error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResponseError {
    /// The bytes are not a well-formed response.
    #[error("the response is malformed")]
    Malformed(#[source] Malformed),
    /// The TPM answered with a response code other than `TPM_RC_SUCCESS`.
    #[error("the TPM answered {0}")]
    Tpm(ResponseCode),
}

impl From<Malformed> for ResponseError {
    fn from(reason: Malformed) -> Self {
        ResponseError::Malformed(reason)
    }
}

/// Marshals a successful response: with `sessions`, `parameterSize` before the parameters and
/// one `TPMS_AUTH_RESPONSE` per session after them (a TPM answers each session of the command).
pub fn encode_response(
    body: &ResponseBody,
    sessions: &[TpmsAuthResponse],
) -> Result<Vec<u8>, MarshalError> {
    let mut w = TpmWriter::new();
    for &h in &body.handles {
        w.u32(h);
    }
    if sessions.is_empty() {
        w.bytes(&body.params);
    } else {
        w.u32(size_u32("parameters", body.params.len())?)
            .bytes(&body.params);
        for s in sessions {
            w.marshal(s)?;
        }
    }
    let tag = if sessions.is_empty() {
        st::NO_SESSIONS
    } else {
        st::SESSIONS
    };
    let size = size_u32("response", HEADER_LEN + w.len())?;
    let mut out = TpmWriter::new();
    out.marshal(&Header {
        tag,
        size,
        code: super::rc::SUCCESS,
    })?
    .bytes(w.as_bytes());
    Ok(out.into_bytes())
}

/// An error response: the header alone, tagged `TPM_ST_NO_SESSIONS` whatever the command's
/// tag (Part 1 §18.4: a failed command returns no parameters and no sessions).
pub fn encode_error_response(code: u32) -> Vec<u8> {
    let mut w = TpmWriter::new();
    w.u16(st::NO_SESSIONS).u32(HEADER_LEN as u32).u32(code);
    w.into_bytes()
}

/// Unmarshals a response: checks the header, turns a non-zero response code into
/// [`ResponseError::Tpm`], and splits the body. With `sessions` (the command had some) the body
/// is the handles, `parameterSize`, the parameters, then one `TPMS_AUTH_RESPONSE` per session:
/// at least one, and nothing after the last.
pub fn decode_response(
    bytes: &[u8],
    response_handles: usize,
    sessions: bool,
) -> Result<ResponseBody, ResponseError> {
    if bytes.len() < HEADER_LEN {
        return Err(Malformed::ShortHeader { len: bytes.len() }.into());
    }
    let mut r = TpmReader::new(bytes);
    let header = r.unmarshal::<Header>()?;
    if header.size as usize != bytes.len() {
        return Err(Malformed::SizeMismatch {
            declared: header.size,
            actual: bytes.len(),
        }
        .into());
    }
    // A failed command answers with the bare header whatever the tag of the request.
    if header.code != super::rc::SUCCESS {
        return Err(ResponseError::Tpm(ResponseCode(header.code)));
    }
    let expected_tag = if sessions {
        st::SESSIONS
    } else {
        st::NO_SESSIONS
    };
    if header.tag != expected_tag {
        return Err(Malformed::Unexpected {
            what: "tag",
            found: u64::from(header.tag),
            expected: u64::from(expected_tag),
        }
        .into());
    }
    let mut handles = Vec::with_capacity(response_handles);
    for _ in 0..response_handles {
        handles.push(r.u32("handle")?);
    }
    let params = if sessions {
        let n = r.u32("parameterSize")?;
        let params = r.take(n as usize, "parameters")?.to_vec();
        loop {
            r.unmarshal::<TpmsAuthResponse>()?;
            if r.remaining() == 0 {
                break;
            }
        }
        params
    } else {
        r.rest().to_vec()
    };
    Ok(ResponseBody { handles, params })
}
