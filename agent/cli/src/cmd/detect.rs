// SPDX-License-Identifier: Apache-2.0
//! `thimble detect`: every evidence source thimble knows, whether it is usable here and why not.
//! Exit 0 when at least one source is usable, 3 otherwise. Nothing is sent anywhere: the QGS
//! check only creates a vsock socket, and configfs-tsm is probed with an entry that is removed.

use serde::Serialize;
use thimble_collect::qgs;
use thimble_collect::tdx_guest;
use thimble_collect::tsm::{Provider, RealConfigFs, TsmClient};
use thimble_collect::vtpm::{DeviceTransport, VtpmClient};
use thimble_evidence::azure::HclReport;

use crate::args::DetectArgs;
use crate::error::CliError;
use crate::exit;
use crate::output::print_stdout;

#[derive(Serialize)]
struct SourceStatus {
    source: &'static str,
    /// `sev-snp`, `tdx` or `azure` (what the source yields).
    tee: &'static str,
    path: String,
    usable: bool,
    detail: String,
}

pub fn run(a: DetectArgs) -> Result<u8, CliError> {
    let mut sources = Vec::new();

    let tsm = TsmClient::new(RealConfigFs, &a.location.tsm_root);
    let tsm_path = a.location.tsm_root.display().to_string();
    match tsm.probe() {
        Ok(Provider::SevGuest) => sources.push(SourceStatus {
            source: "configfs-tsm",
            tee: "sev-snp",
            path: tsm_path,
            usable: true,
            detail: "provider sev_guest".into(),
        }),
        Ok(Provider::TdxGuest) => sources.push(SourceStatus {
            source: "configfs-tsm",
            tee: "tdx",
            path: tsm_path,
            usable: true,
            detail: "provider tdx_guest (quotes come from the host's Quote Generation Service)"
                .into(),
        }),
        Ok(p) => sources.push(SourceStatus {
            source: "configfs-tsm",
            tee: "-",
            path: tsm_path,
            usable: false,
            detail: format!("provider is {p}, which this thimble does not collect"),
        }),
        Err(e) => sources.push(SourceStatus {
            source: "configfs-tsm",
            tee: "-",
            path: tsm_path,
            usable: false,
            detail: e.to_string(),
        }),
    }

    let dev = &a.location.device;
    let (usable, detail) = match std::fs::OpenOptions::new().read(true).open(dev) {
        Ok(_) => (true, "device opens".to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
            false,
            "not present (no sev-guest driver, or not an SEV-SNP guest)".into(),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            (false, "present but not readable: run as root".into())
        }
        Err(e) => (false, format!("cannot open: {e}")),
    };
    sources.push(SourceStatus {
        source: "sev-guest",
        tee: "sev-snp",
        path: dev.display().to_string(),
        usable,
        detail,
    });

    let tdx_dev = &a.tdx_device;
    let device = tdx_guest::probe(tdx_dev);
    let port = if std::path::Path::new(qgs::DEFAULT_CONF_PATH).exists() {
        qgs::configured_port(std::path::Path::new(qgs::DEFAULT_CONF_PATH)).ok()
    } else {
        Some(qgs::DEFAULT_PORT)
    };
    let (usable, detail) = match (&device, port.map(qgs::probe)) {
        (Ok(()), Some(Ok(()))) => (
            true,
            format!(
                "device opens; quotes from the Quote Generation Service on vsock CID 2 port {}",
                port.unwrap_or(qgs::DEFAULT_PORT)
            ),
        ),
        (Ok(()), Some(Err(e))) => (
            false,
            format!("device opens, but no way to the Quote Generation Service: {e}"),
        ),
        (Ok(()), None) => (
            false,
            format!(
                "device opens, but {} cannot be read",
                qgs::DEFAULT_CONF_PATH
            ),
        ),
        (Err(e), _) => (false, e.clone()),
    };
    sources.push(SourceStatus {
        source: "tdx-guest+qgs",
        tee: "tdx",
        path: tdx_dev.display().to_string(),
        usable,
        detail,
    });

    let tpm = ["/dev/tpmrm0", "/dev/tpm0"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let (usable, detail) = match tpm {
        None => (false, "not present".to_string()),
        Some(path) => match DeviceTransport::open(path) {
            Err(e) => (false, e.to_string()),
            Ok(dev) => match VtpmClient::new(dev).hcl_report() {
                Err(e) => (
                    false,
                    format!("TPM present, but no Azure HCL report in NV 0x01400001: {e}"),
                ),
                Ok(bytes) => match HclReport::parse(&bytes) {
                    Ok(h) => (
                        true,
                        format!("Azure paravisor HCL report ({:?})", h.report_type()),
                    ),
                    Err(e) => (false, format!("NV 0x01400001 holds no HCL report: {e}")),
                },
            },
        },
    };
    sources.push(SourceStatus {
        source: "vtpm",
        tee: "azure",
        path: tpm.unwrap_or("/dev/tpmrm0").into(),
        usable,
        detail,
    });

    let any = sources.iter().any(|s| s.usable);
    if a.json {
        let v = serde_json::json!({ "usable": any, "sources": sources });
        let mut s = serde_json::to_string_pretty(&v).map_err(|e| CliError::Other(e.to_string()))?;
        s.push('\n');
        print_stdout(&s);
    } else {
        let mut s = format!(
            "{:<14} {:<8} {:<32} {:<10}  {}\n",
            "SOURCE", "TEE", "PATH", "USABLE", "DETAIL"
        );
        for src in &sources {
            s.push_str(&format!(
                "{:<14} {:<8} {:<32} {}  {}\n",
                src.source,
                src.tee,
                src.path,
                if src.usable {
                    "usable    "
                } else {
                    "not usable"
                },
                src.detail
            ));
        }
        if !any {
            s.push_str("no usable evidence source on this machine\n");
        }
        print_stdout(&s);
    }
    Ok(if any { exit::OK } else { exit::NO_TEE })
}
