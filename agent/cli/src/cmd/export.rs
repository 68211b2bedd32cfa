// SPDX-License-Identifier: Apache-2.0
//! `thimble export`: a stored bundle's evidence in another tool's or verifier's form
//! (`thimble_evidence::interop`). The conversion is pure; this module reads the bundle, maps
//! the form's refusals to exit codes, and writes the result atomically: a file, or for a
//! directory form a new directory that appears whole or not at all.

use std::path::Path;

use thimble_evidence::interop::{self, ExportError, Exported, Format};

use crate::args::ExportArgs;
use crate::common;
use crate::error::CliError;
use crate::io::{read_input, write_output};

pub fn run(a: ExportArgs) -> Result<u8, CliError> {
    if a.json && a.output.as_os_str() == "-" {
        return Err(CliError::Usage(
            "--json prints on standard output, where -o - puts the export; give -o FILE".into(),
        ));
    }
    let bundle = common::read_bundle(&a.bundle, a.max_bundle_size)?;
    if a.runtime_data.is_some() && a.format != Format::Maa {
        return Err(CliError::Usage(format!(
            "--runtime-data is for --format maa, not {}",
            a.format
        )));
    }
    let exported = match a.format {
        Format::Snpguest => interop::snpguest::export(&bundle),
        Format::GoSevGuest => interop::go_sev_guest::export(&bundle),
        Format::TsmReport => interop::tsm_report::export(&bundle),
        Format::Cmw => interop::tsm_report::export_cmw(&bundle),
        Format::Maa => match &a.runtime_data {
            Some(path) => interop::maa::export_with_runtime_data(&bundle, &read_input(path)?),
            None => interop::maa::export(&bundle),
        },
        Format::Trustee => interop::trustee::export(&bundle),
        other => Err(ExportError::NotForTee {
            format: other,
            tee: bundle.tee(),
        }),
    }
    .map_err(|e| match e {
        // A bundle member that does not decode is malformed input; anything else is a form
        // that does not fit this bundle, which the user chose.
        ExportError::Malformed { .. } => CliError::MalformedFile {
            path: a.bundle.clone(),
            reason: e.to_string(),
        },
        _ => CliError::Usage(format!("cannot export {}: {e}", a.bundle.display())),
    })?;
    let written = match &exported {
        Exported::File(bytes) => {
            write_output(&a.output, bytes)?;
            serde_json::json!({ "kind": "file", "bytes": bytes.len() })
        }
        Exported::Directory(files) => {
            write_directory(&a.output, files)?;
            let files: Vec<_> = files
                .iter()
                .map(|(name, bytes)| serde_json::json!({ "name": name, "bytes": bytes.len() }))
                .collect();
            serde_json::json!({ "kind": "directory", "files": files })
        }
    };
    if a.json {
        let mut summary = serde_json::json!({
            "path": a.output.to_string_lossy(),
            "format": a.format.as_str(),
            "tee": bundle.tee().as_str(),
        });
        if let (Some(summary), serde_json::Value::Object(written)) =
            (summary.as_object_mut(), written)
        {
            summary.extend(written);
        }
        crate::output::print_json(&summary);
    }
    Ok(crate::exit::OK)
}

/// Writes `files` into a new directory `dir`: first into a temporary sibling, then renamed into
/// place, so that a failure leaves nothing behind and an existing directory is never mixed with.
fn write_directory(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), CliError> {
    if dir.as_os_str() == "-" {
        return Err(CliError::Usage(
            "this form is a directory; -o - is not possible".into(),
        ));
    }
    if dir.exists() {
        return Err(CliError::Usage(format!(
            "{} exists; give a directory that does not exist yet",
            dir.display()
        )));
    }
    let write_err = |source| CliError::Write {
        path: dir.to_path_buf(),
        source,
    };
    let name = dir
        .file_name()
        .ok_or_else(|| CliError::Usage(format!("{} is not a directory name", dir.display())))?;
    let tmp = dir.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::create_dir(&tmp).map_err(write_err)?;
    let written =
        write_files(&tmp, files).and_then(|()| std::fs::rename(&tmp, dir).map_err(write_err));
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    written
}

fn write_files(tmp: &Path, files: &[(String, Vec<u8>)]) -> Result<(), CliError> {
    let write_err = |source| CliError::Write {
        path: tmp.to_path_buf(),
        source,
    };
    for (name, bytes) in files {
        // Names come from the conversion, never from the bundle; still, nothing may leave the
        // directory.
        let rel = Path::new(name);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(CliError::Other(format!("refusing to write {name:?}")));
        }
        let path = tmp.join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(write_err)?;
        }
        std::fs::write(&path, bytes).map_err(write_err)?;
    }
    Ok(())
}
