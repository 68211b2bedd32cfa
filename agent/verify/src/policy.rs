// SPDX-License-Identifier: Apache-2.0
//! SEV-SNP policy over authentic evidence. Every violation is reported, not only the first, so
//! that an operator sees all that is wrong with a guest at once.
//!
//! The checks follow go-sev-guest's `validate` package field by field (see [`crate::options`]),
//! with two deliberate differences: trusted ID and author key digests are checked whenever some
//! are given (go-sev-guest ignores them unless an ID block is also required), and provisional
//! firmware is accepted unless refused, because real reports often run firmware newer than the
//! committed one.

use thimble_evidence::report_data::{self, Derivation};
use thimble_evidence::snp::{Product, SnpReport, TcbVersion, platform_info_names};

use crate::options::{MinTcb, Policy};
use crate::outcome::{Code, VerifyError};

/// The nonce the bundle claims, for the REPORT_DATA check when the caller gave none.
#[derive(Debug, Clone)]
pub struct ClaimedNonce {
    /// `nonce.value`, decoded from hex.
    pub value: Vec<u8>,
    /// `nonce.report_data_derivation`.
    pub derivation: Derivation,
}

/// The REPORT_DATA check shared by every TEE: against the caller's expected value, else against
/// the bundle's own nonce. A bundle nonce that yields no REPORT_DATA (a `raw` value that is not
/// 64 bytes) is a mismatch, never a reason to skip the check.
pub fn check_report_data(
    actual: &[u8; 64],
    expected: Option<&[u8; 64]>,
    claimed: Option<&ClaimedNonce>,
) -> Option<VerifyError> {
    match (expected, claimed) {
        (Some(expected), _) if expected != actual => Some(VerifyError::new(
            Code::NonceMismatch,
            format!(
                "REPORT_DATA {} does not match the expected {}",
                hex::encode(actual),
                hex::encode(expected)
            ),
        )),
        (Some(_), _) | (None, None) => None,
        (None, Some(n)) => match report_data::derive(n.derivation, &n.value) {
            Some(rd) if &rd == actual => None,
            Some(_) => Some(VerifyError::new(
                Code::NonceMismatch,
                format!(
                    "REPORT_DATA {} does not match the bundle's nonce {} ({:?} derivation)",
                    hex::encode(actual),
                    hex::encode(&n.value),
                    n.derivation
                ),
            )),
            None => Some(VerifyError::new(
                Code::NonceMismatch,
                format!(
                    "the bundle's nonce {} with the {} derivation is {} bytes, which cannot make the 64 of REPORT_DATA {}",
                    hex::encode(&n.value),
                    n.derivation,
                    n.value.len(),
                    hex::encode(actual)
                ),
            )),
        },
    }
}

/// Components of `t` below `min`, as `name=have < want`.
fn below(t: &TcbVersion, min: &MinTcb, product: Product) -> Vec<String> {
    let min = min.for_product(product);
    [
        ("bl", t.bootloader, min.bootloader),
        ("tee", t.tee, min.tee),
        ("snp", t.snp, min.snp),
        ("ucode", t.microcode, min.microcode),
        (
            "fmc",
            t.fmc.unwrap_or(0),
            if product.turin_tcb_layout() {
                min.fmc
            } else {
                0
            },
        ),
    ]
    .iter()
    .filter(|(_, have, want)| have < want)
    .map(|(n, have, want)| format!("{n}={have} < {want}"))
    .collect()
}

/// Compares an optional expected value with the report's.
fn expect(
    errors: &mut Vec<VerifyError>,
    code: Code,
    name: &str,
    want: &Option<Vec<u8>>,
    have: &[u8],
) {
    if let Some(w) = want {
        if w.as_slice() != have {
            errors.push(VerifyError::new(
                code,
                format!(
                    "{name} {} is not the expected {}",
                    hex::encode(have),
                    hex::encode(w)
                ),
            ));
        }
    }
}

/// Checks `report` against `policy`; `product` decodes the TCB.
pub fn check(
    report: &SnpReport,
    product: Product,
    policy: &Policy,
    claimed: Option<&ClaimedNonce>,
) -> Vec<VerifyError> {
    let mut errors = Vec::new();
    if report.policy.debug_allowed && !policy.allow_debug {
        errors.push(VerifyError::new(
            Code::PolicyDebug,
            format!(
                "guest policy {:#x} allows debugging (bit 19): the host can read and change guest memory; pass --allow-debug to accept it",
                report.policy.raw
            ),
        ));
    }
    errors.extend(check_report_data(
        &report.report_data,
        policy.report_data.as_ref(),
        claimed,
    ));
    if let Some(min) = &policy.min_tcb {
        let t = report.reported_tcb(product);
        let low = below(&t, min, product);
        if !low.is_empty() {
            errors.push(VerifyError::new(
                Code::PolicyTcb,
                format!(
                    "REPORTED_TCB ({t}) is below the minimum: {}",
                    low.join(", ")
                ),
            ));
        }
    }
    if let Some(min) = &policy.min_launch_tcb {
        let t = TcbVersion::decode(report.launch_tcb, product);
        let low = below(&t, min, product);
        if !low.is_empty() {
            errors.push(VerifyError::new(
                Code::PolicyLaunchTcb,
                format!("LAUNCH_TCB ({t}) is below the minimum: {}", low.join(", ")),
            ));
        }
    }
    expect(
        &mut errors,
        Code::PolicyMeasurement,
        "MEASUREMENT",
        &policy.measurement,
        &report.measurement,
    );
    expect(
        &mut errors,
        Code::PolicyHostData,
        "HOST_DATA",
        &policy.host_data,
        &report.host_data,
    );
    if let Some(max) = policy.max_vmpl {
        if report.vmpl > max {
            errors.push(VerifyError::new(
                Code::PolicyVmpl,
                format!("VMPL {} is above the maximum {max}", report.vmpl),
            ));
        }
    }
    if let Some(min) = policy.min_guest_svn {
        if report.guest_svn < min {
            errors.push(VerifyError::new(
                Code::PolicyGuestSvn,
                format!("GUEST_SVN {} is below the minimum {min}", report.guest_svn),
            ));
        }
    }
    check_firmware(report, product, policy, &mut errors);
    expect(
        &mut errors,
        Code::PolicyFamilyId,
        "FAMILY_ID",
        &policy.family_id,
        &report.family_id,
    );
    expect(
        &mut errors,
        Code::PolicyImageId,
        "IMAGE_ID",
        &policy.image_id,
        &report.image_id,
    );
    expect(
        &mut errors,
        Code::PolicyReportId,
        "REPORT_ID",
        &policy.report_id,
        &report.report_id,
    );
    expect(
        &mut errors,
        Code::PolicyReportId,
        "REPORT_ID_MA",
        &policy.report_id_ma,
        &report.report_id_ma,
    );
    expect(
        &mut errors,
        Code::PolicyChipId,
        "CHIP_ID",
        &policy.chip_id,
        &report.chip_id,
    );
    check_guest_policy(report, policy, &mut errors);
    check_platform_info(report, policy, &mut errors);
    errors.extend(check_keys(report, &policy.keys));
    errors
}

/// Firmware build, version and provisional firmware (go-sev-guest `validateVersion`).
fn check_firmware(
    report: &SnpReport,
    product: Product,
    policy: &Policy,
    errors: &mut Vec<VerifyError>,
) {
    let (build, minor, major) = report.current_version;
    let mut problems = Vec::new();
    if let Some(min) = policy.min_build {
        if build < min {
            problems.push(format!("firmware build {build} is below the minimum {min}"));
        }
    }
    if let Some((min_major, min_minor)) = policy.min_version {
        if (major, minor) < (min_major, min_minor) {
            problems.push(format!(
                "firmware version {major}.{minor} is below the minimum {min_major}.{min_minor}"
            ));
        }
    }
    if policy.deny_provisional_firmware {
        if report.committed_tcb != report.current_tcb {
            problems.push(format!(
                "the firmware is provisional: CURRENT_TCB ({}) is not COMMITTED_TCB ({})",
                TcbVersion::decode(report.current_tcb, product),
                TcbVersion::decode(report.committed_tcb, product)
            ));
        }
        if report.committed_version != report.current_version {
            let (cb, cmi, cma) = report.committed_version;
            problems.push(format!(
                "the firmware is provisional: version {major}.{minor} build {build} is not the committed {cma}.{cmi} build {cb}"
            ));
        }
    }
    for p in problems {
        errors.push(VerifyError::new(Code::PolicyFirmware, p));
    }
}

/// The guest POLICY bits (go-sev-guest `validatePolicy`).
fn check_guest_policy(report: &SnpReport, policy: &Policy, errors: &mut Vec<VerifyError>) {
    let p = &report.policy;
    let rule = &policy.guest_policy;
    let mut problems = Vec::new();
    if let Some((major, minor)) = rule.min_abi {
        if (p.abi_major, p.abi_minor) < (major, minor) {
            problems.push(format!(
                "it names firmware ABI {}.{}, below the minimum {major}.{minor}",
                p.abi_major, p.abi_minor
            ));
        }
    }
    for (set, refused, what) in [
        (p.smt_allowed, rule.deny_smt, "allows SMT (bit 16)"),
        (
            p.migrate_ma_allowed,
            !rule.allow_migration_agent,
            "allows a migration agent (bit 18), which can export the guest's memory",
        ),
        (
            p.cxl_allowed,
            rule.deny_cxl,
            "allows CXL-attached memory (bit 21)",
        ),
    ] {
        if set && refused {
            problems.push(what.to_string());
        }
    }
    for (set, required, what) in [
        (
            p.single_socket_required,
            rule.require_single_socket,
            "SINGLE_SOCKET (bit 20)",
        ),
        (
            p.mem_aes_256_xts_required,
            rule.require_mem_aes_256_xts,
            "MEM_AES_256_XTS (bit 22)",
        ),
        (p.rapl_disabled, rule.require_rapl_dis, "RAPL_DIS (bit 23)"),
        (
            p.ciphertext_hiding_required,
            rule.require_ciphertext_hiding,
            "CIPHERTEXT_HIDING_DRAM (bit 24)",
        ),
        (
            p.page_swap_disabled,
            rule.require_page_swap_disable,
            "PAGE_SWAP_DISABLE (bit 25)",
        ),
    ] {
        if required && !set {
            problems.push(format!("lacks {what}, which the policy requires"));
        }
    }
    for what in problems {
        errors.push(VerifyError::new(
            Code::PolicyGuestPolicy,
            format!("guest policy {:#x} {what}", p.raw),
        ));
    }
}

/// PLATFORM_INFO bits that must be set or clear.
fn check_platform_info(report: &SnpReport, policy: &Policy, errors: &mut Vec<VerifyError>) {
    let rule = &policy.platform_info;
    let v = report.platform_info;
    let missing = rule.required & !v;
    let present = rule.forbidden & v;
    if missing != 0 {
        errors.push(VerifyError::new(
            Code::PolicyPlatformInfo,
            format!(
                "PLATFORM_INFO {v:#x} lacks {}, which the policy requires",
                platform_info_names(missing).join(", ")
            ),
        ));
    }
    if present != 0 {
        errors.push(VerifyError::new(
            Code::PolicyPlatformInfo,
            format!(
                "PLATFORM_INFO {v:#x} has {} set, which the policy refuses",
                platform_info_names(present).join(", ")
            ),
        ));
    }
}

/// Whether `digest` is one of `trusted`.
pub fn digest_in(digest: &[u8; 48], trusted: &[[u8; 48]]) -> bool {
    trusted.iter().any(|t| t == digest)
}

/// The ID block and author key (go-sev-guest `validateKeys`).
fn check_keys(report: &SnpReport, keys: &crate::options::KeyPolicy) -> Vec<VerifyError> {
    let mut errors = Vec::new();
    if !keys.is_active() {
        return errors;
    }
    let author_trusted = report.author_key_en
        && digest_in(&report.author_key_digest, &keys.trusted_author_key_digests);
    if keys.require_author_key && !author_trusted {
        errors.push(VerifyError::new(
            Code::PolicyAuthorKey,
            if report.author_key_en {
                format!(
                    "AUTHOR_KEY_DIGEST {} is not a trusted author key",
                    hex::encode(report.author_key_digest)
                )
            } else {
                "the guest was launched without an author key (AUTHOR_KEY_EN is 0), which the policy requires".into()
            },
        ));
        return errors;
    }
    if report.id_key_digest == [0u8; 48] {
        errors.push(VerifyError::new(
            Code::PolicyIdKey,
            "the guest was launched without an ID block (ID_KEY_DIGEST is zero), which the policy requires",
        ));
        return errors;
    }
    let lists_given =
        !keys.trusted_id_key_digests.is_empty() || !keys.trusted_author_key_digests.is_empty();
    if lists_given
        && !author_trusted
        && !digest_in(&report.id_key_digest, &keys.trusted_id_key_digests)
    {
        errors.push(VerifyError::new(
            Code::PolicyIdKey,
            format!(
                "ID_KEY_DIGEST {} is not a trusted ID key{}",
                hex::encode(report.id_key_digest),
                if report.author_key_en {
                    format!(
                        ", and AUTHOR_KEY_DIGEST {} is not a trusted author key",
                        hex::encode(report.author_key_digest)
                    )
                } else {
                    String::new()
                }
            ),
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{GuestPolicyRule, KeyPolicy, PlatformInfoRule};

    /// A parseable version 3 Milan report with the given fields (signature all zero: the policy
    /// does not look at it).
    fn report(edit: impl FnOnce(&mut [u8])) -> SnpReport {
        let mut b = vec![0u8; thimble_evidence::snp::report::SNP_REPORT_LEN];
        b[0] = 3;
        b[0x08..0x10].copy_from_slice(&0x3_0000u64.to_le_bytes());
        b[0x34] = 1;
        b[0x188] = 0x19; // Milan
        edit(&mut b);
        SnpReport::parse(&b).unwrap()
    }

    fn codes(report: &SnpReport, policy: &Policy) -> Vec<&'static str> {
        check(report, Product::Milan, policy, None)
            .iter()
            .map(|e| e.code.as_str())
            .collect()
    }

    /// A minimum given as a tcbm is read with the layout of the report's product: the same 16
    /// digits name different SPLs on Turin (FMC, boot loader, TEE and SNP in the low bytes) than
    /// on Milan and Genoa (SNP in byte 6).
    #[test]
    fn a_tcbm_minimum_is_read_with_the_reports_layout() {
        let tcbm = |s: &str| MinTcb {
            tcbm: TcbVersion::raw_from_tcbm(s),
            ..MinTcb::default()
        };
        let fails = |r: &SnpReport, product, min: MinTcb| {
            let policy = Policy {
                min_tcb: Some(min),
                ..Policy::default()
            };
            check(r, product, &policy, None)
                .iter()
                .map(|e| e.code.as_str())
                .collect::<Vec<_>>()
                == ["policy-tcb"]
        };
        // Turin: fmc=1 bl=2 tee=3 snp=4 ucode=5, tcbm 0500000004030201.
        let turin = report(|b| b[0x180..0x188].copy_from_slice(&[1, 2, 3, 4, 0, 0, 0, 5]));
        assert!(!fails(&turin, Product::Turin, tcbm("0500000004030201")));
        assert!(!fails(&turin, Product::Turin, tcbm("0400000003020100")));
        // One SPL above the report's, each in its Turin place (read as Milan, the last three
        // would name bl=1,tee=2 and bl=2,tee=2 and pass).
        for above in [
            "0600000004030201",
            "0500000005030201",
            "0500000004040201",
            "0500000004030301",
            "0500000004030202",
        ] {
            assert!(fails(&turin, Product::Turin, tcbm(above)), "{above}");
        }
        // Milan: bl=2 tee=3 snp=4 ucode=5, tcbm 0504000000000302.
        let milan = report(|b| b[0x180..0x188].copy_from_slice(&[2, 3, 0, 0, 0, 0, 4, 5]));
        assert!(!fails(&milan, Product::Milan, tcbm("0504000000000302")));
        assert!(fails(&milan, Product::Milan, tcbm("0505000000000302")));
        assert!(fails(&milan, Product::Genoa, tcbm("0504000000000303")));
        // Given as SPLs, the minimum is the same on every product (FMC counts on Turin only).
        let spls = MinTcb {
            snp: 4,
            fmc: 2,
            ..MinTcb::default()
        };
        assert!(!fails(&milan, Product::Milan, spls));
        assert!(fails(&turin, Product::Turin, spls));
    }

    #[test]
    fn default_policy_accepts_smt_and_refuses_a_migration_agent() {
        let r = report(|_| {});
        assert!(codes(&r, &Policy::default()).is_empty());
        let ma = report(|b| b[0x0a] |= 1 << 2); // policy bit 18
        assert_eq!(codes(&ma, &Policy::default()), ["policy-guest-policy"]);
        let allow = Policy {
            guest_policy: GuestPolicyRule {
                allow_migration_agent: true,
                ..GuestPolicyRule::default()
            },
            ..Policy::default()
        };
        assert!(codes(&ma, &allow).is_empty());
    }

    #[test]
    fn every_go_sev_guest_option_has_its_check() {
        let r = report(|b| {
            b[0x04] = 5; // GUEST_SVN
            b[0x08] = 0x33; // ABI 0.51
            b[0x40] = 0b101; // PLATFORM_INFO: smt, ecc
            b[0x1e0..0x1e8].copy_from_slice(&[3, 0, 0, 0, 0, 0, 8, 115]); // COMMITTED_TCB
            b[0x38..0x40].copy_from_slice(&[3, 0, 0, 0, 0, 0, 8, 116]); // CURRENT_TCB
            b[0x1e8..0x1eb].copy_from_slice(&[4, 52, 1]); // CURRENT build 4, 1.52
            b[0x1ec..0x1ef].copy_from_slice(&[3, 52, 1]); // COMMITTED build 3
            b[0x1f0..0x1f8].copy_from_slice(&[2, 0, 0, 0, 0, 0, 8, 115]); // LAUNCH_TCB
            b[0xe0..0x110].copy_from_slice(&[7; 48]); // ID_KEY_DIGEST
        });
        let strict = Policy {
            min_launch_tcb: Some(MinTcb {
                bootloader: 3,
                ..MinTcb::default()
            }),
            min_guest_svn: Some(6),
            min_build: Some(5),
            min_version: Some((1, 55)),
            deny_provisional_firmware: true,
            family_id: Some(vec![1; 16]),
            image_id: Some(vec![1; 16]),
            report_id: Some(vec![1; 32]),
            report_id_ma: Some(vec![1; 32]),
            chip_id: Some(vec![1; 64]),
            guest_policy: GuestPolicyRule {
                min_abi: Some((1, 0)),
                deny_smt: true,
                require_single_socket: true,
                ..GuestPolicyRule::default()
            },
            platform_info: PlatformInfoRule {
                required: 1 << 5,
                forbidden: 1,
            },
            keys: KeyPolicy {
                trusted_id_key_digests: vec![[8; 48]],
                ..KeyPolicy::default()
            },
            ..Policy::default()
        };
        assert_eq!(
            codes(&r, &strict),
            [
                "policy-launch-tcb",
                "policy-guest-svn",
                "policy-firmware",
                "policy-firmware",
                "policy-firmware",
                "policy-firmware",
                "policy-family-id",
                "policy-image-id",
                "policy-report-id",
                "policy-report-id",
                "policy-chip-id",
                "policy-guest-policy",
                "policy-guest-policy",
                "policy-guest-policy",
                "policy-platform-info",
                "policy-platform-info",
                "policy-id-key",
            ]
        );
        // The same report with matching values passes.
        let matching = Policy {
            min_launch_tcb: Some(MinTcb {
                bootloader: 2,
                snp: 8,
                microcode: 115,
                ..MinTcb::default()
            }),
            min_guest_svn: Some(5),
            min_build: Some(4),
            min_version: Some((1, 52)),
            family_id: Some(vec![0; 16]),
            chip_id: Some(vec![0; 64]),
            guest_policy: GuestPolicyRule {
                min_abi: Some((0, 51)),
                ..GuestPolicyRule::default()
            },
            platform_info: PlatformInfoRule {
                required: 0b101,
                forbidden: 1 << 1,
            },
            keys: KeyPolicy {
                require_id_block: true,
                trusted_id_key_digests: vec![[8; 48], [7; 48]],
                ..KeyPolicy::default()
            },
            ..Policy::default()
        };
        assert!(
            codes(&r, &matching).is_empty(),
            "{:?}",
            codes(&r, &matching)
        );
    }

    #[test]
    fn id_block_and_author_key() {
        let no_block = report(|_| {});
        let require = Policy {
            keys: KeyPolicy {
                require_id_block: true,
                ..KeyPolicy::default()
            },
            ..Policy::default()
        };
        assert_eq!(codes(&no_block, &require), ["policy-id-key"]);
        // An author key vouches for any ID key, but only with AUTHOR_KEY_EN.
        let with_author = |en: bool| {
            report(|b| {
                b[0x48] = u8::from(en);
                b[0xe0..0x110].copy_from_slice(&[7; 48]);
                b[0x110..0x140].copy_from_slice(&[9; 48]);
            })
        };
        let trust_author = Policy {
            keys: KeyPolicy {
                require_author_key: true,
                trusted_author_key_digests: vec![[9; 48]],
                ..KeyPolicy::default()
            },
            ..Policy::default()
        };
        assert!(codes(&with_author(true), &trust_author).is_empty());
        assert_eq!(
            codes(&with_author(false), &trust_author),
            ["policy-author-key"]
        );
    }

    #[test]
    fn a_raw_bundle_nonce_that_is_not_64_bytes_is_a_mismatch() {
        let r = report(|_| {});
        let claimed = ClaimedNonce {
            value: vec![1, 2],
            derivation: Derivation::Raw,
        };
        let errors = check(&r, Product::Milan, &Policy::default(), Some(&claimed));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, Code::NonceMismatch);
    }
}
