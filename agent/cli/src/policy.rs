// SPDX-License-Identifier: Apache-2.0
//! The verifier's reference values, from `verify` flags and from a policy file
//! (`--policy FILE`, TOML; docs/policy.md): a relying party keeps them in one reviewed place, and
//! a flag given on the command line replaces the file's value for that setting (for repeatable
//! flags, the file's whole list).
//!
//! Both sources are read into the same shape ([`PolicyFile`], strings as typed), then each is
//! checked and turned into typed values with errors that name the flag or the file's key, and
//! only then merged. Unknown keys in the file are refused, so that a misspelt setting is never
//! silently ignored. Settings for another TEE than the bundle's are allowed in the file (one file
//! serves every TEE) but refused as flags (`verify` says which).

use std::path::Path;

use serde::Deserialize;
use thimble_evidence::snp::{TcbVersion, platform_info_bit};
use thimble_verify::Policy;
use thimble_verify::eventlog::EventLogPolicy;
use thimble_verify::options::{GuestPolicyRule, KeyPolicy, MinTcb, PlatformInfoRule};
use thimble_verify::tdx::{TcbStatus, TdxPolicy};

use crate::args::PolicyArgs;
use crate::error::CliError;
use crate::io::parse_hex;

/// `[snp]`: SEV-SNP reference values (also the hardware report of an Azure SEV-SNP bundle).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpSection {
    pub allow_debug: Option<bool>,
    pub min_tcb: Option<String>,
    pub min_launch_tcb: Option<String>,
    pub measurement: Option<String>,
    pub host_data: Option<String>,
    pub max_vmpl: Option<u32>,
    pub min_guest_svn: Option<u32>,
    pub min_build: Option<u8>,
    pub min_version: Option<String>,
    pub deny_provisional_firmware: Option<bool>,
    pub family_id: Option<String>,
    pub image_id: Option<String>,
    pub report_id: Option<String>,
    pub report_id_ma: Option<String>,
    pub chip_id: Option<String>,
    pub min_abi: Option<String>,
    pub deny_smt: Option<bool>,
    pub allow_migration_agent: Option<bool>,
    pub deny_cxl: Option<bool>,
    pub require_single_socket: Option<bool>,
    pub require_mem_aes_256_xts: Option<bool>,
    pub require_rapl_dis: Option<bool>,
    pub require_ciphertext_hiding: Option<bool>,
    pub require_page_swap_disable: Option<bool>,
    pub require_platform_info: Option<Vec<String>>,
    pub deny_platform_info: Option<Vec<String>>,
    pub require_id_block: Option<bool>,
    pub require_author_key: Option<bool>,
    pub trusted_id_key_digests: Option<Vec<String>>,
    pub trusted_author_key_digests: Option<Vec<String>>,
}

/// `[tdx]`: TDX reference values (also the TD of an Azure TDX bundle).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdxSection {
    pub allow_debug: Option<bool>,
    pub min_tcb_status: Option<String>,
    pub allow_stale_collateral: Option<bool>,
    pub allow_missing_crl: Option<bool>,
    pub require_sept_ve_disable: Option<bool>,
    pub mrtd: Option<Vec<String>>,
    pub mrconfigid: Option<String>,
    pub mrowner: Option<String>,
    pub mrownerconfig: Option<String>,
    pub mrseam: Option<String>,
    pub td_attributes: Option<String>,
    pub xfam: Option<String>,
    pub rtmr0: Option<String>,
    pub rtmr1: Option<String>,
    pub rtmr2: Option<String>,
    pub rtmr3: Option<String>,
    pub min_tee_tcb_svn: Option<String>,
    pub min_qe_svn: Option<u16>,
    pub min_pce_svn: Option<u16>,
}

/// `[azure]`: what Azure bundles need beyond their hardware's values.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureSection {
    pub allow_stale_report: Option<bool>,
    pub hcl_user_data: Option<String>,
    pub paravisor_id_key_digests: Option<Vec<String>>,
    pub paravisor_mrtds: Option<Vec<String>>,
    /// `false` trusts only the listed paravisors, not the pinned ones.
    pub pinned_paravisors: Option<bool>,
    pub allow_unknown_paravisor: Option<bool>,
}

/// `[event_log]`: what measured boot must show, judged on event logs that replay to signed
/// registers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventLogSection {
    pub require: Option<bool>,
    pub secure_boot: Option<bool>,
    pub kernel_cmdline: Option<String>,
    pub boot_digests: Option<Vec<String>>,
}

/// A policy file, or the flags in the same shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub require_revocation: Option<bool>,
    #[serde(default)]
    pub snp: SnpSection,
    #[serde(default)]
    pub tdx: TdxSection,
    #[serde(default)]
    pub azure: AzureSection,
    #[serde(default)]
    pub event_log: EventLogSection,
}

/// The largest policy file read: reference values fit in a few kilobytes.
const MAX_POLICY_FILE_LEN: u64 = 1 << 20;

impl PolicyFile {
    /// Reads and parses a policy file; a bad file is a usage error naming it.
    pub fn load(path: &Path) -> Result<PolicyFile, CliError> {
        // One byte past the limit is read, so that a longer file is refused rather than
        // truncated into a shorter policy that might still parse, without its later keys.
        let bytes = crate::io::read_input_limited(path, MAX_POLICY_FILE_LEN + 1)?;
        if bytes.len() as u64 > MAX_POLICY_FILE_LEN {
            return Err(CliError::Usage(format!(
                "{}: the policy file is larger than the {MAX_POLICY_FILE_LEN} bytes accepted; refused unread",
                path.display()
            )));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            CliError::Usage(format!(
                "{}: the policy file is not UTF-8 text",
                path.display()
            ))
        })?;
        toml::from_str(text).map_err(|e| {
            CliError::Usage(format!(
                "{}: not a valid policy file: {}",
                path.display(),
                e.to_string().trim_end()
            ))
        })
    }

    /// The flags in the file's shape.
    pub fn from_args(a: &PolicyArgs) -> Result<PolicyFile, CliError> {
        let flag = |b: bool| b.then_some(true);
        let list = |v: &[String]| (!v.is_empty()).then(|| v.to_vec());
        let mut rtmr: [Option<String>; 4] = Default::default();
        for spec in &a.tdx.rtmr {
            let bad = || {
                CliError::Usage(format!(
                    "--rtmr takes INDEX=HEX with INDEX 0 to 3, got {spec:?}"
                ))
            };
            let (i, v) = spec.split_once('=').ok_or_else(bad)?;
            let i: usize = i.trim().parse().map_err(|_| bad())?;
            *rtmr.get_mut(i).ok_or_else(bad)? = Some(v.to_string());
        }
        let [rtmr0, rtmr1, rtmr2, rtmr3] = rtmr;
        Ok(PolicyFile {
            require_revocation: flag(a.require_revocation),
            snp: SnpSection {
                allow_debug: flag(a.allow_debug),
                min_tcb: a.snp.min_tcb.clone(),
                min_launch_tcb: a.snp.min_launch_tcb.clone(),
                measurement: a.snp.measurement.clone(),
                host_data: a.snp.host_data.clone(),
                max_vmpl: a.snp.max_vmpl,
                min_guest_svn: a.snp.min_guest_svn,
                min_build: a.snp.min_build,
                min_version: a.snp.min_version.clone(),
                deny_provisional_firmware: flag(a.snp.deny_provisional_firmware),
                family_id: a.snp.family_id.clone(),
                image_id: a.snp.image_id.clone(),
                report_id: a.snp.report_id.clone(),
                report_id_ma: a.snp.report_id_ma.clone(),
                chip_id: a.snp.chip_id.clone(),
                min_abi: a.snp_guest.min_abi.clone(),
                deny_smt: flag(a.snp_guest.deny_smt),
                allow_migration_agent: flag(a.snp_guest.allow_migration_agent),
                deny_cxl: flag(a.snp_guest.deny_cxl),
                require_single_socket: flag(a.snp_guest.require_single_socket),
                require_mem_aes_256_xts: flag(a.snp_guest.require_mem_aes_256_xts),
                require_rapl_dis: flag(a.snp_guest.require_rapl_dis),
                require_ciphertext_hiding: flag(a.snp_guest.require_ciphertext_hiding),
                require_page_swap_disable: flag(a.snp_guest.require_page_swap_disable),
                require_platform_info: list(&a.snp_guest.require_platform_info),
                deny_platform_info: list(&a.snp_guest.deny_platform_info),
                require_id_block: flag(a.snp_guest.require_id_block),
                require_author_key: flag(a.snp_guest.require_author_key),
                trusted_id_key_digests: list(&a.snp_guest.trusted_id_key_digest),
                trusted_author_key_digests: list(&a.snp_guest.trusted_author_key_digest),
            },
            tdx: TdxSection {
                allow_debug: flag(a.allow_debug),
                min_tcb_status: a.tdx.min_tcb_status.clone(),
                allow_stale_collateral: flag(a.tdx.allow_stale_collateral),
                allow_missing_crl: flag(a.tdx.allow_missing_crl),
                require_sept_ve_disable: flag(a.tdx.require_sept_ve_disable),
                mrtd: list(&a.tdx.mrtd),
                mrconfigid: a.tdx.mrconfigid.clone(),
                mrowner: a.tdx.mrowner.clone(),
                mrownerconfig: a.tdx.mrownerconfig.clone(),
                mrseam: a.tdx.mrseam.clone(),
                td_attributes: a.tdx.td_attributes.clone(),
                xfam: a.tdx.xfam.clone(),
                rtmr0,
                rtmr1,
                rtmr2,
                rtmr3,
                min_tee_tcb_svn: a.tdx.min_tee_tcb_svn.clone(),
                min_qe_svn: a.tdx.min_qe_svn,
                min_pce_svn: a.tdx.min_pce_svn,
            },
            azure: AzureSection {
                allow_stale_report: flag(a.azure.allow_stale_report),
                hcl_user_data: a.azure.hcl_user_data.clone(),
                paravisor_id_key_digests: list(&a.azure.paravisor_id_key_digest),
                paravisor_mrtds: list(&a.azure.paravisor_mrtd),
                pinned_paravisors: a.azure.no_pinned_paravisors.then_some(false),
                allow_unknown_paravisor: flag(a.azure.allow_unknown_paravisor),
            },
            event_log: EventLogSection {
                require: flag(a.event_log.require_event_log),
                secure_boot: flag(a.event_log.expect_secure_boot),
                kernel_cmdline: a.event_log.expect_kernel_cmdline.clone(),
                boot_digests: list(&a.event_log.expect_boot_digest),
            },
        })
    }
}

/// Where settings came from, to name them in errors.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    Flags,
    File(&'a Path),
}

impl Origin<'_> {
    /// The name of a setting: its flag, or the file and key.
    fn name(&self, key: &str, flag: &str) -> String {
        match self {
            Origin::Flags => flag.to_string(),
            Origin::File(p) => format!("{}: {key}", p.display()),
        }
    }
}

/// Typed settings from one source.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub snp: Policy,
    pub tdx: TdxPolicy,
    pub require_revocation: bool,
    pub allow_stale_report: bool,
    pub hcl_user_data: Option<Vec<u8>>,
    pub paravisor_keys: Vec<[u8; 48]>,
    pub paravisor_mrtds: Vec<[u8; 48]>,
    pub no_pinned_paravisors: bool,
    pub allow_unknown_paravisor: bool,
    pub event_log: EventLogPolicy,
}

fn usage(name: &str, what: &str, got: &str) -> CliError {
    CliError::Usage(format!("{name} takes {what}, got {got:?}"))
}

/// Exactly `len` bytes of hex.
pub fn fixed_len(name: &str, s: &str, len: usize) -> Result<Vec<u8>, CliError> {
    let v = parse_hex(name, s)?;
    if v.len() != len {
        return Err(CliError::Usage(format!(
            "{name} takes exactly {len} bytes ({} hex digits), got {}",
            len * 2,
            v.len()
        )));
    }
    Ok(v)
}

fn array<const N: usize>(name: &str, s: &str) -> Result<[u8; N], CliError> {
    let v = fixed_len(name, s, N)?;
    let mut a = [0u8; N];
    a.copy_from_slice(&v);
    Ok(a)
}

fn opt_fixed(name: &str, s: &Option<String>, len: usize) -> Result<Option<Vec<u8>>, CliError> {
    s.as_deref().map(|v| fixed_len(name, v, len)).transpose()
}

fn list48(name: &str, v: &Option<Vec<String>>) -> Result<Vec<[u8; 48]>, CliError> {
    v.iter().flatten().map(|s| array::<48>(name, s)).collect()
}

/// Digests of a boot component: SHA-256, SHA-384 or SHA-512, hex.
fn boot_digests(name: &str, v: &Option<Vec<String>>) -> Result<Vec<Vec<u8>>, CliError> {
    v.iter()
        .flatten()
        .map(|s| {
            let d = parse_hex(name, s)?;
            if ![32, 48, 64].contains(&d.len()) {
                return Err(usage(
                    name,
                    "a SHA-256, SHA-384 or SHA-512 digest (64, 96 or 128 hex digits)",
                    s,
                ));
            }
            Ok(d)
        })
        .collect()
}

/// `MAJOR.MINOR`, each 0 to 255.
fn major_minor(name: &str, s: &str) -> Result<(u8, u8), CliError> {
    let bad = || usage(name, "MAJOR.MINOR (such as 1.55)", s);
    let (a, b) = s.trim().split_once('.').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

/// A minimum TCB: a tcbm (16 hex digits, read with the layout of the product of the report it is
/// compared with) or `bl=N,tee=N,snp=N,ucode=N[,fmc=N]`.
pub fn parse_min_tcb(name: &str, s: &str) -> Result<MinTcb, CliError> {
    let bad = || {
        usage(
            name,
            "a tcbm (16 hex digits) or bl=N,tee=N,snp=N,ucode=N[,fmc=N]",
            s,
        )
    };
    if !s.contains('=') {
        let raw = TcbVersion::raw_from_tcbm(s).ok_or_else(bad)?;
        return Ok(MinTcb {
            tcbm: Some(raw),
            ..MinTcb::default()
        });
    }
    let mut m = MinTcb::default();
    for part in s.split(',') {
        let (k, v) = part.split_once('=').ok_or_else(bad)?;
        let v: u8 = v.trim().parse().map_err(|_| bad())?;
        match k.trim() {
            "bl" | "bootloader" => m.bootloader = v,
            "tee" => m.tee = v,
            "snp" => m.snp = v,
            "ucode" | "microcode" => m.microcode = v,
            "fmc" => m.fmc = v,
            _ => return Err(bad()),
        }
    }
    Ok(m)
}

fn platform_mask(name: &str, names: &Option<Vec<String>>) -> Result<u64, CliError> {
    let mut mask = 0;
    for n in names.iter().flatten() {
        mask |= platform_info_bit(n).ok_or_else(|| {
            usage(
                name,
                "PLATFORM_INFO bit names (smt, tsme, ecc, rapl_dis, ciphertext_hiding, alias_check_complete, tio)",
                n,
            )
        })?;
    }
    Ok(mask)
}

impl Settings {
    /// Checks and types every setting of `f`.
    pub fn from_file(f: &PolicyFile, o: Origin<'_>) -> Result<Settings, CliError> {
        let s = &f.snp;
        let t = &f.tdx;
        let az = &f.azure;
        let n = |key: &str, flag: &str| o.name(key, flag);
        let yes = |b: Option<bool>| b.unwrap_or(false);
        let snp = Policy {
            allow_debug: yes(s.allow_debug),
            min_tcb: s
                .min_tcb
                .as_deref()
                .map(|v| parse_min_tcb(&n("snp.min_tcb", "--min-tcb"), v))
                .transpose()?,
            min_launch_tcb: s
                .min_launch_tcb
                .as_deref()
                .map(|v| parse_min_tcb(&n("snp.min_launch_tcb", "--min-launch-tcb"), v))
                .transpose()?,
            measurement: opt_fixed(&n("snp.measurement", "--measurement"), &s.measurement, 48)?,
            host_data: opt_fixed(&n("snp.host_data", "--host-data"), &s.host_data, 32)?,
            report_data: None,
            max_vmpl: s.max_vmpl,
            min_guest_svn: s.min_guest_svn,
            min_build: s.min_build,
            min_version: s
                .min_version
                .as_deref()
                .map(|v| major_minor(&n("snp.min_version", "--min-version"), v))
                .transpose()?,
            deny_provisional_firmware: yes(s.deny_provisional_firmware),
            family_id: opt_fixed(&n("snp.family_id", "--family-id"), &s.family_id, 16)?,
            image_id: opt_fixed(&n("snp.image_id", "--image-id"), &s.image_id, 16)?,
            report_id: opt_fixed(&n("snp.report_id", "--report-id"), &s.report_id, 32)?,
            report_id_ma: opt_fixed(
                &n("snp.report_id_ma", "--report-id-ma"),
                &s.report_id_ma,
                32,
            )?,
            chip_id: opt_fixed(&n("snp.chip_id", "--chip-id"), &s.chip_id, 64)?,
            guest_policy: GuestPolicyRule {
                min_abi: s
                    .min_abi
                    .as_deref()
                    .map(|v| major_minor(&n("snp.min_abi", "--min-abi"), v))
                    .transpose()?,
                deny_smt: yes(s.deny_smt),
                allow_migration_agent: yes(s.allow_migration_agent),
                deny_cxl: yes(s.deny_cxl),
                require_single_socket: yes(s.require_single_socket),
                require_mem_aes_256_xts: yes(s.require_mem_aes_256_xts),
                require_rapl_dis: yes(s.require_rapl_dis),
                require_ciphertext_hiding: yes(s.require_ciphertext_hiding),
                require_page_swap_disable: yes(s.require_page_swap_disable),
            },
            platform_info: PlatformInfoRule {
                required: platform_mask(
                    &n("snp.require_platform_info", "--require-platform-info"),
                    &s.require_platform_info,
                )?,
                forbidden: platform_mask(
                    &n("snp.deny_platform_info", "--deny-platform-info"),
                    &s.deny_platform_info,
                )?,
            },
            keys: KeyPolicy {
                require_id_block: yes(s.require_id_block),
                require_author_key: yes(s.require_author_key),
                trusted_id_key_digests: list48(
                    &n("snp.trusted_id_key_digests", "--trusted-id-key-digest"),
                    &s.trusted_id_key_digests,
                )?,
                trusted_author_key_digests: list48(
                    &n(
                        "snp.trusted_author_key_digests",
                        "--trusted-author-key-digest",
                    ),
                    &s.trusted_author_key_digests,
                )?,
            },
            require_revocation: yes(f.require_revocation),
        };
        let rtmr = |v: &Option<String>, i: usize| -> Result<Option<Vec<u8>>, CliError> {
            opt_fixed(&n(&format!("tdx.rtmr{i}"), "--rtmr"), v, 48)
        };
        let tdx = TdxPolicy {
            allow_debug: yes(t.allow_debug),
            require_sept_ve_disable: yes(t.require_sept_ve_disable),
            allow_stale_collateral: yes(t.allow_stale_collateral),
            allow_missing_crl: yes(t.allow_missing_crl),
            min_tcb_status: t
                .min_tcb_status
                .as_deref()
                .map(|v| {
                    v.parse::<TcbStatus>().map_err(|e| {
                        CliError::Usage(format!(
                            "{}: {e}",
                            n("tdx.min_tcb_status", "--min-tcb-status")
                        ))
                    })
                })
                .transpose()?,
            mrtd: list48(&n("tdx.mrtd", "--mrtd"), &t.mrtd)?
                .into_iter()
                .map(|m| m.to_vec())
                .collect(),
            mrconfigid: opt_fixed(&n("tdx.mrconfigid", "--mrconfigid"), &t.mrconfigid, 48)?,
            mrowner: opt_fixed(&n("tdx.mrowner", "--mrowner"), &t.mrowner, 48)?,
            mrownerconfig: opt_fixed(
                &n("tdx.mrownerconfig", "--mrownerconfig"),
                &t.mrownerconfig,
                48,
            )?,
            mrseam: opt_fixed(&n("tdx.mrseam", "--mrseam"), &t.mrseam, 48)?,
            td_attributes: opt_fixed(
                &n("tdx.td_attributes", "--td-attributes"),
                &t.td_attributes,
                8,
            )?,
            xfam: opt_fixed(&n("tdx.xfam", "--xfam"), &t.xfam, 8)?,
            rtmrs: [
                rtmr(&t.rtmr0, 0)?,
                rtmr(&t.rtmr1, 1)?,
                rtmr(&t.rtmr2, 2)?,
                rtmr(&t.rtmr3, 3)?,
            ],
            min_tee_tcb_svn: t
                .min_tee_tcb_svn
                .as_deref()
                .map(|v| array::<16>(&n("tdx.min_tee_tcb_svn", "--min-tee-tcb-svn"), v))
                .transpose()?,
            min_qe_svn: t.min_qe_svn,
            min_pce_svn: t.min_pce_svn,
            report_data: None,
        };
        let hcl_user_data = match &az.hcl_user_data {
            None => None,
            Some(v) => {
                let name = n("azure.hcl_user_data", "--hcl-user-data");
                let b = parse_hex(&name, v)?;
                if b.len() > 64 {
                    return Err(CliError::Usage(format!(
                        "{name} takes at most 64 bytes (the size of the user-data), got {}",
                        b.len()
                    )));
                }
                Some(b)
            }
        };
        Ok(Settings {
            snp,
            tdx,
            require_revocation: yes(f.require_revocation),
            allow_stale_report: yes(az.allow_stale_report),
            hcl_user_data,
            paravisor_keys: list48(
                &n(
                    "azure.paravisor_id_key_digests",
                    "--paravisor-id-key-digest",
                ),
                &az.paravisor_id_key_digests,
            )?,
            paravisor_mrtds: list48(
                &n("azure.paravisor_mrtds", "--paravisor-mrtd"),
                &az.paravisor_mrtds,
            )?,
            no_pinned_paravisors: az.pinned_paravisors == Some(false),
            allow_unknown_paravisor: yes(az.allow_unknown_paravisor),
            event_log: EventLogPolicy {
                require: yes(f.event_log.require),
                secure_boot: f.event_log.secure_boot,
                kernel_cmdline: f.event_log.kernel_cmdline.clone(),
                boot_digests: boot_digests(
                    &n("event_log.boot_digests", "--expect-boot-digest"),
                    &f.event_log.boot_digests,
                )?,
            },
        })
    }

    /// `self` (the flags) over `file`: a setting the flags give wins; flags that only switch
    /// something on add to the file's; repeatable flags replace the file's list.
    pub fn over(self, file: Settings) -> Settings {
        fn list<T>(flag: Vec<T>, file: Vec<T>) -> Vec<T> {
            if flag.is_empty() { file } else { flag }
        }
        let (a, b) = (self.snp, file.snp);
        let snp = Policy {
            allow_debug: a.allow_debug || b.allow_debug,
            min_tcb: a.min_tcb.or(b.min_tcb),
            min_launch_tcb: a.min_launch_tcb.or(b.min_launch_tcb),
            measurement: a.measurement.or(b.measurement),
            host_data: a.host_data.or(b.host_data),
            report_data: a.report_data.or(b.report_data),
            max_vmpl: a.max_vmpl.or(b.max_vmpl),
            min_guest_svn: a.min_guest_svn.or(b.min_guest_svn),
            min_build: a.min_build.or(b.min_build),
            min_version: a.min_version.or(b.min_version),
            deny_provisional_firmware: a.deny_provisional_firmware || b.deny_provisional_firmware,
            family_id: a.family_id.or(b.family_id),
            image_id: a.image_id.or(b.image_id),
            report_id: a.report_id.or(b.report_id),
            report_id_ma: a.report_id_ma.or(b.report_id_ma),
            chip_id: a.chip_id.or(b.chip_id),
            guest_policy: GuestPolicyRule {
                min_abi: a.guest_policy.min_abi.or(b.guest_policy.min_abi),
                deny_smt: a.guest_policy.deny_smt || b.guest_policy.deny_smt,
                allow_migration_agent: a.guest_policy.allow_migration_agent
                    || b.guest_policy.allow_migration_agent,
                deny_cxl: a.guest_policy.deny_cxl || b.guest_policy.deny_cxl,
                require_single_socket: a.guest_policy.require_single_socket
                    || b.guest_policy.require_single_socket,
                require_mem_aes_256_xts: a.guest_policy.require_mem_aes_256_xts
                    || b.guest_policy.require_mem_aes_256_xts,
                require_rapl_dis: a.guest_policy.require_rapl_dis
                    || b.guest_policy.require_rapl_dis,
                require_ciphertext_hiding: a.guest_policy.require_ciphertext_hiding
                    || b.guest_policy.require_ciphertext_hiding,
                require_page_swap_disable: a.guest_policy.require_page_swap_disable
                    || b.guest_policy.require_page_swap_disable,
            },
            platform_info: PlatformInfoRule {
                required: a.platform_info.required | b.platform_info.required,
                forbidden: a.platform_info.forbidden | b.platform_info.forbidden,
            },
            keys: KeyPolicy {
                require_id_block: a.keys.require_id_block || b.keys.require_id_block,
                require_author_key: a.keys.require_author_key || b.keys.require_author_key,
                trusted_id_key_digests: list(
                    a.keys.trusted_id_key_digests,
                    b.keys.trusted_id_key_digests,
                ),
                trusted_author_key_digests: list(
                    a.keys.trusted_author_key_digests,
                    b.keys.trusted_author_key_digests,
                ),
            },
            require_revocation: a.require_revocation || b.require_revocation,
        };
        let (a, b) = (self.tdx, file.tdx);
        let [a0, a1, a2, a3] = a.rtmrs;
        let [b0, b1, b2, b3] = b.rtmrs;
        let tdx = TdxPolicy {
            allow_debug: a.allow_debug || b.allow_debug,
            require_sept_ve_disable: a.require_sept_ve_disable || b.require_sept_ve_disable,
            allow_stale_collateral: a.allow_stale_collateral || b.allow_stale_collateral,
            allow_missing_crl: a.allow_missing_crl || b.allow_missing_crl,
            min_tcb_status: a.min_tcb_status.or(b.min_tcb_status),
            mrtd: list(a.mrtd, b.mrtd),
            mrconfigid: a.mrconfigid.or(b.mrconfigid),
            mrowner: a.mrowner.or(b.mrowner),
            mrownerconfig: a.mrownerconfig.or(b.mrownerconfig),
            mrseam: a.mrseam.or(b.mrseam),
            td_attributes: a.td_attributes.or(b.td_attributes),
            xfam: a.xfam.or(b.xfam),
            rtmrs: [a0.or(b0), a1.or(b1), a2.or(b2), a3.or(b3)],
            min_tee_tcb_svn: a.min_tee_tcb_svn.or(b.min_tee_tcb_svn),
            min_qe_svn: a.min_qe_svn.or(b.min_qe_svn),
            min_pce_svn: a.min_pce_svn.or(b.min_pce_svn),
            report_data: a.report_data.or(b.report_data),
        };
        Settings {
            snp,
            tdx,
            require_revocation: self.require_revocation || file.require_revocation,
            allow_stale_report: self.allow_stale_report || file.allow_stale_report,
            hcl_user_data: self.hcl_user_data.or(file.hcl_user_data),
            paravisor_keys: list(self.paravisor_keys, file.paravisor_keys),
            paravisor_mrtds: list(self.paravisor_mrtds, file.paravisor_mrtds),
            no_pinned_paravisors: self.no_pinned_paravisors || file.no_pinned_paravisors,
            allow_unknown_paravisor: self.allow_unknown_paravisor || file.allow_unknown_paravisor,
            event_log: EventLogPolicy {
                require: self.event_log.require || file.event_log.require,
                secure_boot: self.event_log.secure_boot.or(file.event_log.secure_boot),
                kernel_cmdline: self
                    .event_log
                    .kernel_cmdline
                    .or(file.event_log.kernel_cmdline),
                boot_digests: list(self.event_log.boot_digests, file.event_log.boot_digests),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Group, SnpPolicyArgs};

    #[test]
    fn a_file_with_every_section_parses_and_flags_win() {
        let text = r#"
            require_revocation = true
            [snp]
            measurement = "aa"
            min_tcb = "bl=3,tee=0,snp=8,ucode=115"
            min_version = "1.55"
            require_platform_info = ["ecc"]
            [tdx]
            mrtd = ["00"]
            min_qe_svn = 8
            [azure]
            pinned_paravisors = false
        "#;
        let f: PolicyFile = toml::from_str(text).unwrap();
        let path = Path::new("p.toml");
        // The file's measurement is one byte: the error names the file and the key.
        let e = Settings::from_file(&f, Origin::File(path)).unwrap_err();
        assert!(e.to_string().contains("p.toml: snp.measurement"), "{e}");

        let text = text
            .replace("\"aa\"", &format!("\"{}\"", "aa".repeat(48)))
            .replace("[\"00\"]", &format!("[\"{}\"]", "11".repeat(48)));
        let f: PolicyFile = toml::from_str(&text).unwrap();
        let file = Settings::from_file(&f, Origin::File(path)).unwrap();
        assert!(file.require_revocation && file.no_pinned_paravisors);
        assert_eq!(file.snp.min_version, Some((1, 55)));
        assert_eq!(file.snp.platform_info.required, 1 << 2);
        assert_eq!(file.tdx.min_qe_svn, Some(8));
        let flags = PolicyArgs {
            snp: Group(SnpPolicyArgs {
                measurement: Some("bb".repeat(48)),
                ..SnpPolicyArgs::default()
            }),
            ..PolicyArgs::default()
        };
        let flags =
            Settings::from_file(&PolicyFile::from_args(&flags).unwrap(), Origin::Flags).unwrap();
        let merged = flags.over(file);
        assert_eq!(merged.snp.measurement, Some(vec![0xbb; 48]));
        assert_eq!(merged.tdx.mrtd, vec![vec![0x11; 48]]);
        assert!(merged.require_revocation);
    }

    #[test]
    fn unknown_keys_are_refused() {
        for text in [
            "[snp]\nmeasurment = \"aa\"",
            "nonce = \"aa\"",
            "[sgx]\nx = 1",
        ] {
            assert!(toml::from_str::<PolicyFile>(text).is_err(), "{text}");
        }
    }
}
