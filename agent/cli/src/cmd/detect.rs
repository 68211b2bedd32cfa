// SPDX-License-Identifier: AGPL-3.0-or-later
//! `thimble detect`: every evidence source thimble knows, whether it is usable here and why not.
//! Exit 0 when at least one SEV-SNP source is usable, 3 otherwise.

use serde::Serialize;
use thimble_collect::tsm::{Provider, RealConfigFs, TsmClient};

use crate::args::DetectArgs;
use crate::error::CliError;
use crate::exit;
use crate::output::print_stdout;

#[derive(Serialize)]
struct SourceStatus {
    source: &'static str,
    path: String,
    usable: bool,
    detail: String,
}

pub fn run(a: DetectArgs) -> Result<u8, CliError> {
    let mut sources = Vec::new();

    let tsm = TsmClient::new(RealConfigFs, &a.location.tsm_root);
    let (usable, detail) = match tsm.probe() {
        Ok(Provider::SevGuest) => (true, "provider sev_guest".to_string()),
        Ok(p) => (
            false,
            format!("provider is {p}; this thimble collects SEV-SNP evidence only"),
        ),
        Err(e) => (false, e.to_string()),
    };
    sources.push(SourceStatus {
        source: "configfs-tsm",
        path: a.location.tsm_root.display().to_string(),
        usable,
        detail,
    });

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
        path: dev.display().to_string(),
        usable,
        detail,
    });

    for (source, path, detail) in [
        (
            "tdx-guest",
            "/dev/tdx_guest",
            "Intel TDX guest device; TDX collection is not in this version",
        ),
        (
            "vtpm",
            "/dev/tpmrm0",
            "TPM present; Azure paravisor (HCL report) collection is not in this version",
        ),
    ] {
        if std::path::Path::new(path).exists() {
            sources.push(SourceStatus {
                source,
                path: path.into(),
                usable: false,
                detail: detail.into(),
            });
        } else {
            sources.push(SourceStatus {
                source,
                path: path.into(),
                usable: false,
                detail: "not present".into(),
            });
        }
    }

    let any = sources.iter().any(|s| s.usable);
    if a.json {
        let v = serde_json::json!({ "usable": any, "sources": sources });
        let mut s = serde_json::to_string_pretty(&v).map_err(|e| CliError::Other(e.to_string()))?;
        s.push('\n');
        print_stdout(&s);
    } else {
        let mut s = String::new();
        for src in &sources {
            s.push_str(&format!(
                "{:<13} {:<32} {}  {}\n",
                src.source,
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
            s.push_str("no usable SEV-SNP evidence source on this machine\n");
        }
        print_stdout(&s);
    }
    Ok(if any { exit::OK } else { exit::NO_TEE })
}
