// SPDX-License-Identifier: AGPL-3.0-or-later
//! Pieces several commands share: the clock, `--at`, reading bundles and certificate files, and
//! turning policy flags into a verification policy.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use thimble_evidence::bundle::Bundle;
use thimble_evidence::cert_file::{FileContent, recognise};
use thimble_evidence::snp::{AmdCert, Product, TcbVersion};
use thimble_evidence::time_fmt::parse_rfc3339;
use thimble_verify::bundle::VerifyOptions;
use thimble_verify::options::MinTcb;
use thimble_verify::roots::IntelRoots;
use thimble_verify::tdx::{TcbStatus, TdxPolicy};
use thimble_verify::{Policy, TrustedRoots};

use crate::args::PolicyArgs;
use crate::error::CliError;
use crate::io::{parse_hex, read_input};

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `--at` or now.
pub fn verification_time(at: Option<&str>) -> Result<i64, CliError> {
    match at {
        None => Ok(now()),
        Some(s) => parse_rfc3339(s).ok_or_else(|| {
            CliError::Usage(format!(
                "--at takes an RFC 3339 time like 2026-06-01T00:00:00Z, got {s:?}"
            ))
        }),
    }
}

/// Reads a file, or standard input for `-`.
pub fn read_path_or_stdin(path: &Path) -> Result<Vec<u8>, CliError> {
    if path.as_os_str() == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map_err(|source| {
            CliError::ReadInput {
                path: path.to_path_buf(),
                source,
            }
        })?;
        return Ok(v);
    }
    read_input(path)
}

/// Reads and parses a bundle.
pub fn read_bundle(path: &Path) -> Result<Bundle, CliError> {
    let bytes = read_path_or_stdin(path)?;
    Bundle::parse(&bytes).map_err(|e| CliError::MalformedFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// What an `--add` file or `verify-chain` argument held.
pub struct LoadedFile {
    pub content: FileContent,
}

/// Reads and recognises a certificate or THIM file; an unrecognised file is an error naming it.
pub fn load_cert_file(path: &Path) -> Result<LoadedFile, CliError> {
    let bytes = read_input(path)?;
    let content = recognise(&bytes).map_err(|e| CliError::MalformedFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    // Every certificate must parse, so that a damaged file is named now and not at verify time.
    let ders: Vec<&Vec<u8>> = match &content {
        FileContent::Certificates(c) => c.iter().collect(),
        FileContent::ThimAmd(t) => std::iter::once(&t.vcek).chain(t.chain.iter()).collect(),
        FileContent::TcbInfo(_) | FileContent::QeIdentity(_) | FileContent::Crl { .. } => {
            Vec::new()
        }
    };
    for (i, der) in ders.iter().enumerate() {
        AmdCert::parse_der(der).map_err(|e| CliError::MalformedFile {
            path: path.to_path_buf(),
            reason: format!("certificate {i}: {e}"),
        })?;
    }
    Ok(LoadedFile { content })
}

/// The trusted roots, with the simulation root when asked for.
pub fn roots(insecure_allow_simulated: bool) -> TrustedRoots {
    let roots = TrustedRoots::amd();
    if insecure_allow_simulated {
        let chain = thimble_sim::signer::sim_chain();
        roots.insecure_add_simulated(Product::Milan, chain.ark_der)
    } else {
        roots
    }
}

fn fixed_len(flag: &str, s: &str, len: usize) -> Result<Vec<u8>, CliError> {
    let v = parse_hex(flag, s)?;
    if v.len() != len {
        return Err(CliError::Usage(format!(
            "{flag} takes exactly {len} bytes ({} hex digits), got {}",
            len * 2,
            v.len()
        )));
    }
    Ok(v)
}

/// REPORT_DATA from `--nonce` / `--report-data`.
pub fn expected_report_data(
    nonce: Option<&str>,
    report_data: Option<&str>,
) -> Result<Option<[u8; 64]>, CliError> {
    if let Some(n) = nonce {
        let n = parse_hex("--nonce", n)?;
        return Ok(Some(thimble_evidence::report_data::from_nonce(&n)));
    }
    if let Some(rd) = report_data {
        let v = fixed_len("--report-data", rd, 64)?;
        let mut a = [0u8; 64];
        a.copy_from_slice(&v);
        return Ok(Some(a));
    }
    Ok(None)
}

fn parse_min_tcb(s: &str) -> Result<MinTcb, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "--min-tcb takes a tcbm (16 hex digits, Milan/Genoa layout) or bl=N,tee=N,snp=N,ucode=N[,fmc=N]; got {s:?}"
        ))
    };
    if !s.contains('=') {
        let raw = TcbVersion::raw_from_tcbm(s).ok_or_else(bad)?;
        let t = TcbVersion::decode(raw, Product::Milan);
        return Ok(MinTcb {
            bootloader: t.bootloader,
            tee: t.tee,
            snp: t.snp,
            microcode: t.microcode,
            fmc: 0,
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

/// The verification options from the flags.
pub fn verify_options(at: i64, a: &PolicyArgs) -> Result<VerifyOptions, CliError> {
    let report_data = expected_report_data(a.nonce.as_deref(), a.report_data.as_deref())?;
    let snp = Policy {
        allow_debug: a.allow_debug,
        min_tcb: a.min_tcb.as_deref().map(parse_min_tcb).transpose()?,
        measurement: a
            .measurement
            .as_deref()
            .map(|m| fixed_len("--measurement", m, 48))
            .transpose()?,
        host_data: a
            .host_data
            .as_deref()
            .map(|h| fixed_len("--host-data", h, 32))
            .transpose()?,
        report_data,
        max_vmpl: a.max_vmpl,
    };
    let mut rtmrs: [Option<Vec<u8>>; 4] = Default::default();
    for spec in &a.rtmr {
        let bad = || {
            CliError::Usage(format!(
                "--rtmr takes INDEX=HEX with INDEX 0 to 3, got {spec:?}"
            ))
        };
        let (i, v) = spec.split_once('=').ok_or_else(bad)?;
        let i: usize = i.trim().parse().map_err(|_| bad())?;
        let slot = rtmrs.get_mut(i).ok_or_else(bad)?;
        *slot = Some(fixed_len("--rtmr", v, 48)?);
    }
    let tdx = TdxPolicy {
        allow_debug: a.allow_debug,
        require_sept_ve_disable: a.require_sept_ve_disable,
        allow_stale_collateral: a.allow_stale_collateral,
        min_tcb_status: a
            .min_tcb_status
            .as_deref()
            .map(|s| {
                s.parse::<TcbStatus>()
                    .map_err(|e| CliError::Usage(format!("--min-tcb-status: {e}")))
            })
            .transpose()?,
        mrtd: a
            .mrtd
            .as_deref()
            .map(|m| fixed_len("--mrtd", m, 48))
            .transpose()?,
        mrconfigid: a
            .mrconfigid
            .as_deref()
            .map(|m| fixed_len("--mrconfigid", m, 48))
            .transpose()?,
        mrowner: a
            .mrowner
            .as_deref()
            .map(|m| fixed_len("--mrowner", m, 48))
            .transpose()?,
        rtmrs,
        report_data,
    };
    let nonce = a
        .nonce
        .as_deref()
        .map(|n| parse_hex("--nonce", n))
        .transpose()?;
    Ok(VerifyOptions {
        nonce,
        allow_stale_report: a.allow_stale_report,
        at,
        amd_roots: roots(a.insecure_allow_simulated),
        intel_roots: IntelRoots::intel(),
        intel_simulated_roots: intel_simulated_roots(a.insecure_allow_simulated),
        snp,
        tdx,
    })
}

/// The Intel simulation root, when asked for.
pub fn intel_simulated_roots(insecure_allow_simulated: bool) -> Option<IntelRoots> {
    insecure_allow_simulated
        .then(|| IntelRoots::insecure_custom(thimble_sim::tdx_signer::sim_tdx_pki().root_ca_der))
}
