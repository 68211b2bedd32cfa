// SPDX-License-Identifier: AGPL-3.0-or-later
//! Everything a verification depends on is a parameter: the roots, the time and the policy.
//! [`Options::strict`] gives the defaults: AMD's pinned roots and the default policy (debug
//! guests rejected, simulated evidence rejected).

use crate::roots::TrustedRoots;

/// Minimum SPLs; compared component by component with REPORTED_TCB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinTcb {
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
    pub fmc: u8,
}

/// What authentic evidence must also satisfy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Accept guests whose policy allows debugging (bit 19).
    pub allow_debug: bool,
    pub min_tcb: Option<MinTcb>,
    /// Expected MEASUREMENT (48 bytes).
    pub measurement: Option<Vec<u8>>,
    /// Expected HOST_DATA (32 bytes).
    pub host_data: Option<Vec<u8>>,
    /// Expected REPORT_DATA, from `--nonce` or `--report-data`; when absent the bundle's own
    /// nonce is checked against REPORT_DATA.
    pub report_data: Option<[u8; 64]>,
    /// Highest VMPL accepted.
    pub max_vmpl: Option<u32>,
}

/// Inputs of a verification.
#[derive(Debug, Clone)]
pub struct Options {
    /// The time to check validity at, seconds since the epoch.
    pub at: i64,
    pub roots: TrustedRoots,
    pub policy: Policy,
}

impl Options {
    /// Pinned AMD roots and the default policy, at `at`.
    pub fn strict(at: i64) -> Options {
        Options {
            at,
            roots: TrustedRoots::amd(),
            policy: Policy::default(),
        }
    }
}
