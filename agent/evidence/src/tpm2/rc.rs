// SPDX-License-Identifier: Apache-2.0
//! TPM 2.0 response codes (`TPM_RC`, TPM 2.0 Library Part 2 §6.6): the constants thimble names,
//! and [`ResponseCode`], which tells format-zero codes (`RC_VER1` errors, `RC_WARN` warnings,
//! TPM 1.2 and vendor codes) from format-one codes, whose bits 11:6 say which handle, parameter
//! or session the error is about. The fake vTPM builds codes with [`format_one`]; the client
//! decodes them for its messages. No I/O.

use std::fmt;

/// `TPM_RC_SUCCESS`.
pub const SUCCESS: u32 = 0x000;
/// `RC_FMT1`: bit 7 set marks a format-one code.
pub const FMT1: u32 = 0x080;
/// `RC_VER1`: the base of TPM 2.0 format-zero errors.
pub const VER1: u32 = 0x100;
/// `RC_WARN`: the base of format-zero warnings.
pub const WARN: u32 = 0x900;

/// `TPM_RC_BAD_TAG`: the reference implementation answers a bad command tag with this TPM 1.2
/// code, so that a TPM 1.2 stack recognises it.
pub const BAD_TAG: u32 = 0x01E;

// Format-one base codes, without their handle, parameter or session number.
/// `TPM_RC_ASYMMETRIC`: an asymmetric algorithm is not supported or not correct.
pub const ASYMMETRIC: u32 = FMT1 + 0x001;
/// `TPM_RC_ATTRIBUTES`: inconsistent attributes.
pub const ATTRIBUTES: u32 = FMT1 + 0x002;
/// `TPM_RC_HASH`: a hash algorithm is not supported or not appropriate.
pub const HASH: u32 = FMT1 + 0x003;
/// `TPM_RC_VALUE`: a value is out of range or not correct for the context.
pub const VALUE: u32 = FMT1 + 0x004;
/// `TPM_RC_HIERARCHY`: the hierarchy is not enabled or not correct for the use.
pub const HIERARCHY: u32 = FMT1 + 0x005;
/// `TPM_RC_KEY_SIZE`: the key size is not supported.
pub const KEY_SIZE: u32 = FMT1 + 0x007;
/// `TPM_RC_TYPE`: the type of a value is not appropriate for the use.
pub const TYPE: u32 = FMT1 + 0x00A;
/// `TPM_RC_HANDLE`: the handle is not correct for the use.
pub const HANDLE: u32 = FMT1 + 0x00B;
/// `TPM_RC_RANGE`: a value is out of the allowed range.
pub const RANGE: u32 = FMT1 + 0x00D;
/// `TPM_RC_AUTH_FAIL`: an authorization check failed and the dictionary-attack counter went up.
pub const AUTH_FAIL: u32 = FMT1 + 0x00E;
/// `TPM_RC_SCHEME`: an unsupported or incompatible scheme.
pub const SCHEME: u32 = FMT1 + 0x012;
/// `TPM_RC_SIZE`: a structure is the wrong size.
pub const SIZE: u32 = FMT1 + 0x015;
/// `TPM_RC_TAG`: an incorrect structure tag.
pub const TAG: u32 = FMT1 + 0x017;
/// `TPM_RC_SELECTOR`: a union selector is incorrect.
pub const SELECTOR: u32 = FMT1 + 0x018;
/// `TPM_RC_INSUFFICIENT`: the input ran out while a value was unmarshalled.
pub const INSUFFICIENT: u32 = FMT1 + 0x01A;
/// `TPM_RC_KEY`: the key's fields do not fit the use.
pub const KEY: u32 = FMT1 + 0x01C;
/// `TPM_RC_POLICY_FAIL`: a policy check failed.
pub const POLICY_FAIL: u32 = FMT1 + 0x01D;
/// `TPM_RC_BAD_AUTH`: an authorization failed without dictionary-attack consequences.
pub const BAD_AUTH: u32 = FMT1 + 0x022;

// Format-zero errors.
/// `TPM_RC_INITIALIZE`: the TPM has not been initialized by `TPM2_Startup` (or already was).
pub const INITIALIZE: u32 = VER1;
/// `TPM_RC_FAILURE`: the TPM is in failure mode and accepts few commands.
pub const FAILURE: u32 = VER1 + 0x001;
/// `TPM_RC_DISABLED`: the command is disabled.
pub const DISABLED: u32 = VER1 + 0x020;
/// `TPM_RC_AUTH_MISSING`: a handle needs an authorization session and there is none.
pub const AUTH_MISSING: u32 = VER1 + 0x025;
/// `TPM_RC_COMMAND_SIZE`: `commandSize` does not match the command.
pub const COMMAND_SIZE: u32 = VER1 + 0x042;
/// `TPM_RC_COMMAND_CODE`: the command code is not supported.
pub const COMMAND_CODE: u32 = VER1 + 0x043;
/// `TPM_RC_AUTHSIZE`: `authorizationSize` is out of range or larger than the sessions need.
pub const AUTHSIZE: u32 = VER1 + 0x044;
/// `TPM_RC_AUTH_CONTEXT`: a session on a command that takes none.
pub const AUTH_CONTEXT: u32 = VER1 + 0x045;
/// `TPM_RC_NV_RANGE`: the NV offset plus size is out of range.
pub const NV_RANGE: u32 = VER1 + 0x046;
/// `TPM_RC_NV_SIZE`: the requested NV size is larger than allowed.
pub const NV_SIZE: u32 = VER1 + 0x047;
/// `TPM_RC_NV_LOCKED`: the NV index is locked for this access.
pub const NV_LOCKED: u32 = VER1 + 0x048;
/// `TPM_RC_NV_AUTHORIZATION`: the authorization given may not access the NV index this way.
pub const NV_AUTHORIZATION: u32 = VER1 + 0x049;
/// `TPM_RC_NV_UNINITIALIZED`: the NV index is read before it was written.
pub const NV_UNINITIALIZED: u32 = VER1 + 0x04A;
/// `TPM_RC_NV_SPACE`: not enough NV space for the allocation.
pub const NV_SPACE: u32 = VER1 + 0x04B;
/// `TPM_RC_NV_DEFINED`: the NV index or persistent object is already defined.
pub const NV_DEFINED: u32 = VER1 + 0x04C;

// Format-zero warnings.
/// `TPM_RC_OBJECT_MEMORY`: out of memory for object contexts.
pub const OBJECT_MEMORY: u32 = WARN + 0x002;
/// `TPM_RC_SESSION_MEMORY`: out of memory for session contexts.
pub const SESSION_MEMORY: u32 = WARN + 0x003;
/// `TPM_RC_MEMORY`: out of memory for objects, sessions or internal operations.
pub const MEMORY: u32 = WARN + 0x004;
/// `TPM_RC_YIELDED`: the TPM suspended the command; it may be sent again.
pub const YIELDED: u32 = WARN + 0x008;
/// `TPM_RC_CANCELED`: the command was canceled.
pub const CANCELED: u32 = WARN + 0x009;
/// `TPM_RC_TESTING`: the TPM is running self-tests.
pub const TESTING: u32 = WARN + 0x00A;
/// `TPM_RC_NV_RATE`: the TPM is rate-limiting NV writes to prevent wear.
pub const NV_RATE: u32 = WARN + 0x020;
/// `TPM_RC_LOCKOUT`: the TPM is in dictionary-attack lockout.
pub const LOCKOUT: u32 = WARN + 0x021;
/// `TPM_RC_RETRY`: the TPM could not start the command; send it again.
pub const RETRY: u32 = WARN + 0x022;
/// `TPM_RC_NV_UNAVAILABLE`: NV is not accessible at the moment.
pub const NV_UNAVAILABLE: u32 = WARN + 0x023;

/// `TPM_RC_P`: the number in a format-one code is a parameter's.
const P: u32 = 0x040;
/// `TPM_RC_S`: the number is a session's (bit 11 of the 4-bit number field).
const S: u32 = 0x800;

/// Where a format-one response code points (Part 2 §6.6.3: bits 11:8 with the P bit), numbered
/// from 1 as the specification numbers handles, parameters and sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcPosition {
    /// The handle area's handle number `n`.
    Handle(u8),
    /// The parameter area's parameter number `n`.
    Parameter(u8),
    /// The authorization area's session number `n`.
    Session(u8),
}

impl fmt::Display for RcPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handle(n) => write!(f, "handle {n}"),
            Self::Parameter(n) => write!(f, "parameter {n}"),
            Self::Session(n) => write!(f, "session {n}"),
        }
    }
}

/// The format-one code `base` about `position` (`TPM_RC_H`/`TPM_RC_P`/`TPM_RC_S` plus
/// `TPM_RC_1`…): what a TPM returns, e.g. `TPM_RC_HANDLE + TPM_RC_H + TPM_RC_1` = `0x18b`.
/// Handles and sessions take 1-7, parameters 1-15; larger numbers are cut to those bits.
pub const fn format_one(base: u32, position: RcPosition) -> u32 {
    let base = FMT1 | (base & 0x3F);
    match position {
        RcPosition::Handle(n) => base | ((n as u32 & 0x7) << 8),
        RcPosition::Parameter(n) => base | P | ((n as u32 & 0xF) << 8),
        RcPosition::Session(n) => base | S | ((n as u32 & 0x7) << 8),
    }
}

/// A TPM 2.0 response code (`TPM_RC`), decoded on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseCode(pub u32);

impl ResponseCode {
    /// The code as the TPM sent it.
    pub fn raw(self) -> u32 {
        self.0
    }

    fn is_format_one(self) -> bool {
        self.0 & FMT1 != 0
    }

    /// The code without its position, to compare with the constants in this module.
    pub fn base(self) -> u32 {
        if self.is_format_one() {
            FMT1 | (self.0 & 0x3F)
        } else {
            self.0 & 0xFFF
        }
    }

    /// The handle, parameter or session a format-one code refers to (numbered from 1).
    pub fn position(self) -> Option<RcPosition> {
        if !self.is_format_one() {
            return None;
        }
        let n = ((self.0 >> 8) & 0xF) as u8;
        if self.0 & P != 0 {
            Some(RcPosition::Parameter(n))
        } else if n & 0x8 != 0 {
            Some(RcPosition::Session(n & 0x7))
        } else if n != 0 {
            Some(RcPosition::Handle(n))
        } else {
            None
        }
    }

    /// A warning: the command may succeed if sent again (`RC_WARN`).
    pub fn is_warning(self) -> bool {
        !self.is_format_one() && self.0 & WARN == WARN
    }

    /// The specification's name, e.g. `TPM_RC_NV_UNINITIALIZED`.
    pub fn name(self) -> &'static str {
        if !self.is_format_one() {
            if self.0 & VER1 == 0 {
                return "TPM 1.2 response code";
            }
            // Bit 10 (`RC_VENDOR`) marks codes the TPM vendor defines.
            if self.0 & 0x400 != 0 {
                return "vendor-defined response code";
            }
        }
        match self.base() {
            SUCCESS => "TPM_RC_SUCCESS",
            ASYMMETRIC => "TPM_RC_ASYMMETRIC",
            ATTRIBUTES => "TPM_RC_ATTRIBUTES",
            HASH => "TPM_RC_HASH",
            VALUE => "TPM_RC_VALUE",
            HIERARCHY => "TPM_RC_HIERARCHY",
            KEY_SIZE => "TPM_RC_KEY_SIZE",
            TYPE => "TPM_RC_TYPE",
            HANDLE => "TPM_RC_HANDLE",
            RANGE => "TPM_RC_RANGE",
            AUTH_FAIL => "TPM_RC_AUTH_FAIL",
            SCHEME => "TPM_RC_SCHEME",
            SIZE => "TPM_RC_SIZE",
            TAG => "TPM_RC_TAG",
            SELECTOR => "TPM_RC_SELECTOR",
            INSUFFICIENT => "TPM_RC_INSUFFICIENT",
            KEY => "TPM_RC_KEY",
            POLICY_FAIL => "TPM_RC_POLICY_FAIL",
            BAD_AUTH => "TPM_RC_BAD_AUTH",
            INITIALIZE => "TPM_RC_INITIALIZE",
            FAILURE => "TPM_RC_FAILURE",
            DISABLED => "TPM_RC_DISABLED",
            AUTH_MISSING => "TPM_RC_AUTH_MISSING",
            COMMAND_SIZE => "TPM_RC_COMMAND_SIZE",
            COMMAND_CODE => "TPM_RC_COMMAND_CODE",
            AUTHSIZE => "TPM_RC_AUTHSIZE",
            NV_RANGE => "TPM_RC_NV_RANGE",
            NV_SIZE => "TPM_RC_NV_SIZE",
            NV_LOCKED => "TPM_RC_NV_LOCKED",
            NV_AUTHORIZATION => "TPM_RC_NV_AUTHORIZATION",
            NV_UNINITIALIZED => "TPM_RC_NV_UNINITIALIZED",
            NV_SPACE => "TPM_RC_NV_SPACE",
            NV_DEFINED => "TPM_RC_NV_DEFINED",
            OBJECT_MEMORY => "TPM_RC_OBJECT_MEMORY",
            SESSION_MEMORY => "TPM_RC_SESSION_MEMORY",
            MEMORY => "TPM_RC_MEMORY",
            YIELDED => "TPM_RC_YIELDED",
            CANCELED => "TPM_RC_CANCELED",
            TESTING => "TPM_RC_TESTING",
            NV_RATE => "TPM_RC_NV_RATE",
            LOCKOUT => "TPM_RC_LOCKOUT",
            RETRY => "TPM_RC_RETRY",
            NV_UNAVAILABLE => "TPM_RC_NV_UNAVAILABLE",
            _ if self.is_format_one() => "format-one TPM error",
            _ if self.is_warning() => "TPM warning",
            _ => "TPM error",
        }
    }

    /// What the code means for thimble's commands, in words.
    pub fn meaning(self) -> &'static str {
        match self.base() {
            HANDLE => "the handle does not refer to a loaded object or defined NV index",
            NV_UNINITIALIZED => "the NV index is defined but was never written",
            NV_RANGE => "the read or write goes past the end of the NV index",
            NV_SIZE => "the NV index size is larger than this TPM allows",
            NV_LOCKED => "the NV index is read- or write-locked",
            NV_AUTHORIZATION => "this authorization may not read or write the NV index",
            NV_SPACE => "the TPM has no NV space left",
            NV_DEFINED => "the NV index is already defined",
            NV_RATE | LOCKOUT => "the TPM is rate-limiting or in dictionary-attack lockout",
            AUTH_FAIL | BAD_AUTH => {
                "authorization failed: the owner hierarchy or the index has a password"
            }
            HIERARCHY | DISABLED => "the hierarchy is disabled",
            INITIALIZE => "the TPM has not been started (TPM2_Startup)",
            FAILURE => "the TPM is in failure mode",
            COMMAND_CODE => "the TPM does not implement this command",
            KEY | SCHEME | ATTRIBUTES => {
                "the key cannot sign this quote (not a restricted RSASSA signing key)"
            }
            VALUE | SIZE | SELECTOR => "the TPM rejected a parameter's value",
            RETRY | YIELDED | TESTING | CANCELED => {
                "the TPM asked for the command to be sent again later"
            }
            OBJECT_MEMORY | SESSION_MEMORY | MEMORY => "the TPM is out of object or session memory",
            _ => "see TPM 2.0 Library Part 2, TPM_RC",
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#05x}", self.name(), self.0)?;
        if let Some(p) = self.position() {
            write!(f, ", {p}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_codes_decode() {
        let missing = ResponseCode(0x18b);
        assert_eq!(missing.base(), HANDLE);
        assert_eq!(missing.position(), Some(RcPosition::Handle(1)));
        assert_eq!(missing.to_string(), "TPM_RC_HANDLE (0x18b, handle 1)");
        let uninit = ResponseCode(0x14a);
        assert_eq!(uninit.base(), NV_UNINITIALIZED);
        assert_eq!(uninit.position(), None);
        assert_eq!(uninit.name(), "TPM_RC_NV_UNINITIALIZED");
        let auth = ResponseCode(0x98e);
        assert_eq!(auth.base(), AUTH_FAIL);
        assert_eq!(auth.position(), Some(RcPosition::Session(1)));
        let param = ResponseCode(0x2c4);
        assert_eq!(param.base(), VALUE);
        assert_eq!(param.position(), Some(RcPosition::Parameter(2)));
        assert!(ResponseCode(RETRY).is_warning());
        assert!(!ResponseCode(NV_LOCKED).is_warning());
        assert_eq!(ResponseCode(BAD_TAG).name(), "TPM 1.2 response code");
        assert_eq!(ResponseCode(0x500).name(), "vendor-defined response code");
    }

    #[test]
    fn format_one_codes_decode_to_their_base_and_position() {
        // The codes swtpm answers thimble's commands with (`vtpm_swtpm.rs`).
        assert_eq!(format_one(HANDLE, RcPosition::Handle(1)), 0x18b);
        assert_eq!(format_one(BAD_AUTH, RcPosition::Session(1)), 0x9a2);
        assert_eq!(format_one(VALUE, RcPosition::Parameter(1)), 0x1c4);
        for position in [
            RcPosition::Handle(1),
            RcPosition::Handle(7),
            RcPosition::Parameter(1),
            RcPosition::Parameter(15),
            RcPosition::Session(1),
            RcPosition::Session(7),
        ] {
            for base in [HANDLE, SIZE, SCHEME, BAD_AUTH, INSUFFICIENT] {
                let code = ResponseCode(format_one(base, position));
                assert_eq!(code.base(), base);
                assert_eq!(code.position(), Some(position));
            }
        }
    }
}
