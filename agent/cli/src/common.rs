// SPDX-License-Identifier: Apache-2.0
//! Pieces several commands share: the clock, `--at`, reading bundles and certificate files, and
//! turning policy flags into a verification policy.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use thimble_evidence::bundle::Bundle;
use thimble_evidence::cert_file::{FileContent, recognise};
use thimble_evidence::snp::{AmdCert, Product};
use thimble_evidence::time_fmt::parse_rfc3339;
use thimble_verify::TrustedRoots;
use thimble_verify::azure::{ParavisorPolicy, TrustedParavisor};
use thimble_verify::bundle::VerifyOptions;
use thimble_verify::roots::IntelRoots;

use crate::args::PolicyArgs;
use crate::error::CliError;
use crate::io::{parse_hex, read_input};
use crate::policy::{Origin, PolicyFile, Settings};

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

/// Reads and parses a bundle of at most `max_len` bytes (`--max-bundle-size`). Reading stops
/// one byte past the limit, so a huge input costs no more than the limit.
pub fn read_bundle(path: &Path, max_len: usize) -> Result<Bundle, CliError> {
    let limit = u64::try_from(max_len).unwrap_or(u64::MAX).saturating_add(1);
    let bytes = if path.as_os_str() == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(std::io::stdin(), limit), &mut v)
            .map_err(|source| CliError::ReadInput {
                path: path.to_path_buf(),
                source,
            })?;
        v
    } else {
        crate::io::read_input_limited(path, limit)?
    };
    if bytes.len() > max_len {
        return Err(CliError::MalformedFile {
            path: path.to_path_buf(),
            reason: format!(
                "the bundle is larger than {max_len} bytes (--max-bundle-size); refused unread"
            ),
        });
    }
    Bundle::parse_limited(&bytes, max_len).map_err(|e| CliError::MalformedFile {
        path: path.to_path_buf(),
        reason: crate::error::with_causes(&e),
    })
}

/// What an `--add` file or `verify-chain` argument held.
pub struct LoadedFile {
    pub content: FileContent,
}

/// Reads and recognises a certificate or THIM file; an unrecognised file is an error naming it.
pub fn load_cert_file(path: &Path) -> Result<LoadedFile, CliError> {
    load_cert_bytes(path, &read_input(path)?)
}

/// [`load_cert_file`] for bytes already read, named `path` in errors (a file inside another
/// tool's output, `import --from`).
pub fn load_cert_bytes(path: &Path, bytes: &[u8]) -> Result<LoadedFile, CliError> {
    let content = recognise(bytes).map_err(|e| CliError::MalformedFile {
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

/// The trusted roots, with the simulation root when asked for (only a build with the
/// `simulate` feature has one, and only such a build has the flag that asks).
pub fn roots(insecure_allow_simulated: bool) -> TrustedRoots {
    let roots = TrustedRoots::amd();
    match test_identities::amd_root() {
        Some(ark_der) if insecure_allow_simulated => {
            roots.insecure_add_simulated(Product::Milan, ark_der)
        }
        _ => roots,
    }
}

/// The simulator's test identities, which `--insecure-allow-simulated` adds to what a
/// verification trusts. A production build (`--no-default-features`) has none of them: its
/// functions return nothing, and the flag does not exist there.
mod test_identities {
    #[cfg(feature = "simulate")]
    pub fn amd_root() -> Option<&'static [u8]> {
        Some(thimble_sim::signer::sim_chain().ark_der)
    }

    #[cfg(feature = "simulate")]
    pub fn intel_root() -> Option<&'static [u8]> {
        Some(thimble_sim::tdx_signer::sim_tdx_pki().root_ca_der)
    }

    /// The simulated paravisor's SEV-SNP ID key digest and TDX MRTD.
    #[cfg(feature = "simulate")]
    pub fn paravisor() -> Option<([u8; 48], [u8; 48])> {
        use thimble_sim::azure_sim::{SIM_PARAVISOR_ID_KEY_DIGEST, SIM_PARAVISOR_MRTD};
        Some((SIM_PARAVISOR_ID_KEY_DIGEST, SIM_PARAVISOR_MRTD))
    }

    #[cfg(not(feature = "simulate"))]
    pub fn amd_root() -> Option<&'static [u8]> {
        None
    }

    #[cfg(not(feature = "simulate"))]
    pub fn intel_root() -> Option<&'static [u8]> {
        None
    }

    #[cfg(not(feature = "simulate"))]
    pub fn paravisor() -> Option<([u8; 48], [u8; 48])> {
        None
    }
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
        let v = crate::policy::fixed_len("--report-data", rd, 64)?;
        let mut a = [0u8; 64];
        a.copy_from_slice(&v);
        return Ok(Some(a));
    }
    Ok(None)
}

/// The verification options: the policy file (if any) under the flags, the nonce, the roots
/// and the paravisors trusted.
pub fn verify_options(at: i64, a: &PolicyArgs) -> Result<VerifyOptions, CliError> {
    let report_data = expected_report_data(a.nonce.as_deref(), a.report_data.as_deref())?;
    let flags = Settings::from_file(&PolicyFile::from_args(a)?, Origin::Flags)?;
    let mut settings = match &a.policy {
        Some(path) => flags.over(Settings::from_file(
            &PolicyFile::load(path)?,
            Origin::File(path),
        )?),
        None => flags,
    };
    settings.snp.report_data = report_data;
    settings.tdx.report_data = report_data;
    if settings.require_revocation && settings.tdx.allow_missing_crl {
        return Err(CliError::Usage(
            "require_revocation and allow_missing_crl cannot both be set (one in the policy file, one as a flag?)".into(),
        ));
    }
    let nonce = a
        .nonce
        .as_deref()
        .map(|n| parse_hex("--nonce", n))
        .transpose()?;
    let mut paravisor = if settings.no_pinned_paravisors {
        ParavisorPolicy::empty()
    } else {
        ParavisorPolicy::pinned()
    };
    let given = |v: [u8; 48]| TrustedParavisor {
        value: v,
        label: "given by the verifier".into(),
    };
    paravisor
        .snp_keys
        .extend(settings.paravisor_keys.iter().copied().map(given));
    paravisor
        .tdx_mrtds
        .extend(settings.paravisor_mrtds.iter().copied().map(given));
    paravisor.allow_unknown = settings.allow_unknown_paravisor;
    if let (true, Some((snp_key, tdx_mrtd))) =
        (a.insecure_allow_simulated, test_identities::paravisor())
    {
        let test = |v: [u8; 48]| TrustedParavisor {
            value: v,
            label: "thimble simulation (test identity)".into(),
        };
        paravisor.snp_keys.push(test(snp_key));
        paravisor.tdx_mrtds.push(test(tdx_mrtd));
    }
    Ok(VerifyOptions {
        nonce,
        hcl_user_data: settings.hcl_user_data,
        allow_stale_report: settings.allow_stale_report,
        at,
        amd_roots: roots(a.insecure_allow_simulated),
        intel_roots: IntelRoots::intel(),
        intel_simulated_roots: intel_simulated_roots(a.insecure_allow_simulated),
        allow_simulated: a.insecure_allow_simulated,
        snp: settings.snp,
        tdx: settings.tdx,
        paravisor,
        require_revocation: settings.require_revocation,
        event_log: settings.event_log,
    })
}

/// The Intel simulation root, when asked for.
pub fn intel_simulated_roots(insecure_allow_simulated: bool) -> Option<IntelRoots> {
    test_identities::intel_root()
        .filter(|_| insecure_allow_simulated)
        .map(IntelRoots::insecure_custom)
}
