// SPDX-License-Identifier: Apache-2.0
//! Everything a verification depends on is a parameter: the roots, the time and the policy.
//! [`Options::strict`] gives the defaults: AMD's pinned roots and the default policy (debug
//! guests rejected, simulated evidence rejected).
//!
//! The SEV-SNP policy covers what go-sev-guest's `validate.Options` covers, so a relying party
//! moving from its `check` tool finds every reference value it used: expected identities
//! (measurement, host data, family, image, report and chip IDs), minimum TCBs, firmware and
//! guest SVN, the guest policy bits, PLATFORM_INFO, and the ID and author keys. Every field's
//! default accepts what a default-configured guest produces, except debugging and a migration
//! agent, which are refused unless allowed.

use thimble_evidence::snp::{Product, TcbVersion};

use crate::roots::TrustedRoots;

/// Minimum SPLs; compared component by component with a TCB_VERSION.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinTcb {
    /// Minimum boot loader SPL.
    pub bootloader: u8,
    /// Minimum TEE SPL.
    pub tee: u8,
    /// Minimum SNP firmware SPL.
    pub snp: u8,
    /// Minimum microcode SPL.
    pub microcode: u8,
    /// Minimum FMC SPL; applied on Turin only.
    pub fmc: u8,
    /// The minimum as a raw TCB_VERSION (the 8 bytes of a tcbm), when it was given that way.
    /// Where each SPL sits in those bytes depends on the product (Turin moves them and adds the
    /// FMC SPL), so the bytes are read with the layout of the report they are compared with,
    /// and the SPLs read replace the fields above ([`MinTcb::for_product`]).
    pub tcbm: Option<[u8; 8]>,
}

impl MinTcb {
    /// The minimum SPLs for a TCB_VERSION of `product`: the fields as given, or the `tcbm`'s
    /// bytes read with `product`'s layout.
    pub fn for_product(&self, product: Product) -> MinTcb {
        match self.tcbm {
            None => *self,
            Some(raw) => {
                let t = TcbVersion::decode(raw, product);
                MinTcb {
                    bootloader: t.bootloader,
                    tee: t.tee,
                    snp: t.snp,
                    microcode: t.microcode,
                    fmc: t.fmc.unwrap_or(0),
                    tcbm: None,
                }
            }
        }
    }
}

/// Rules for the guest POLICY word the guest was launched with (go-sev-guest `validatePolicy`).
/// A bit that grants the host or another party a capability is refused when set unless allowed;
/// a bit that restricts the platform is required only when asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuestPolicyRule {
    /// The lowest firmware ABI version (major, minor) the policy may name.
    pub min_abi: Option<(u8, u8)>,
    /// Refuse a guest that allows simultaneous multithreading (bit 16).
    pub deny_smt: bool,
    /// Accept a guest that allows a migration agent (bit 18), which can export its memory.
    pub allow_migration_agent: bool,
    /// Refuse a guest that allows CXL-attached memory (bit 21).
    pub deny_cxl: bool,
    /// Require SINGLE_SOCKET (bit 20).
    pub require_single_socket: bool,
    /// Require MEM_AES_256_XTS (bit 22).
    pub require_mem_aes_256_xts: bool,
    /// Require RAPL_DIS (bit 23).
    pub require_rapl_dis: bool,
    /// Require CIPHERTEXT_HIDING_DRAM (bit 24).
    pub require_ciphertext_hiding: bool,
    /// Require PAGE_SWAP_DISABLE (bit 25).
    pub require_page_swap_disable: bool,
}

/// Rules for PLATFORM_INFO: bits that must be set and bits that must be clear (see
/// `thimble_evidence::snp::PLATFORM_INFO_BITS` for their names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlatformInfoRule {
    /// Bits that must be set.
    pub required: u64,
    /// Bits that must be clear.
    pub forbidden: u64,
}

/// Rules for the ID block and author key the guest was launched with (go-sev-guest
/// `validateKeys`, made stricter: trusted digests given are always checked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The guest must have been launched with an ID block (ID_KEY_DIGEST not zero).
    pub require_id_block: bool,
    /// The ID block must have been signed with an author key (AUTHOR_KEY_EN), one of
    /// `trusted_author_key_digests`. Implies `require_id_block`.
    pub require_author_key: bool,
    /// SHA-384 digests of trusted ID keys. When this or `trusted_author_key_digests` is not
    /// empty, ID_KEY_DIGEST must be one of them or the author key must be a trusted one.
    pub trusted_id_key_digests: Vec<[u8; 48]>,
    /// SHA-384 digests of trusted author keys; an author key counts only with AUTHOR_KEY_EN.
    pub trusted_author_key_digests: Vec<[u8; 48]>,
}

impl KeyPolicy {
    /// Whether any check is asked for.
    pub fn is_active(&self) -> bool {
        self.require_id_block
            || self.require_author_key
            || !self.trusted_id_key_digests.is_empty()
            || !self.trusted_author_key_digests.is_empty()
    }
}

/// What authentic SEV-SNP evidence must also satisfy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Accept guests whose policy allows debugging (bit 19).
    pub allow_debug: bool,
    /// Minimum REPORTED_TCB.
    pub min_tcb: Option<MinTcb>,
    /// Minimum LAUNCH_TCB (the TCB when the guest was launched).
    pub min_launch_tcb: Option<MinTcb>,
    /// Expected MEASUREMENT (48 bytes).
    pub measurement: Option<Vec<u8>>,
    /// Expected HOST_DATA (32 bytes).
    pub host_data: Option<Vec<u8>>,
    /// Expected REPORT_DATA, from `--nonce` or `--report-data`; when absent the bundle's own
    /// nonce is checked against REPORT_DATA.
    pub report_data: Option<[u8; 64]>,
    /// Highest VMPL accepted.
    pub max_vmpl: Option<u32>,
    /// Minimum GUEST_SVN.
    pub min_guest_svn: Option<u32>,
    /// Minimum firmware build (CURRENT_BUILD).
    pub min_build: Option<u8>,
    /// Minimum firmware version (CURRENT_MAJOR, CURRENT_MINOR).
    pub min_version: Option<(u8, u8)>,
    /// Refuse provisional firmware: the committed TCB, build and version must equal the current
    /// ones (the firmware running can then not be rolled back).
    pub deny_provisional_firmware: bool,
    /// Expected FAMILY_ID (16 bytes).
    pub family_id: Option<Vec<u8>>,
    /// Expected IMAGE_ID (16 bytes).
    pub image_id: Option<Vec<u8>>,
    /// Expected REPORT_ID (32 bytes).
    pub report_id: Option<Vec<u8>>,
    /// Expected REPORT_ID_MA (32 bytes).
    pub report_id_ma: Option<Vec<u8>>,
    /// Expected CHIP_ID (64 bytes).
    pub chip_id: Option<Vec<u8>>,
    /// Rules for the guest POLICY word.
    pub guest_policy: GuestPolicyRule,
    /// Rules for PLATFORM_INFO.
    pub platform_info: PlatformInfoRule,
    /// Rules for the ID block and author key.
    pub keys: KeyPolicy,
    /// Require a current AMD CRL that does not list the chain's ASK or ASVK. Without this, a
    /// missing or stale CRL is a warning (a listed intermediate always fails).
    pub require_revocation: bool,
}

/// Inputs of a verification.
#[derive(Debug, Clone)]
pub struct Options {
    /// The time to check validity at, seconds since the epoch.
    pub at: i64,
    /// The AMD roots a chain may end at.
    pub roots: TrustedRoots,
    /// What authentic evidence must also satisfy.
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
