// SPDX-License-Identifier: Apache-2.0
//! File input and output for the CLI: reading inputs with errors that name the path, and writing
//! outputs atomically (temporary file in the same directory, fsync, rename, fsync of the
//! directory) so that a reader never sees half a bundle and a failure leaves nothing behind.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// Reads a whole input file.
pub fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    fs::read(path).map_err(|source| CliError::ReadInput {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads at most `limit` bytes of an input file (the caller decides whether more is an error).
pub fn read_input_limited(path: &Path, limit: u64) -> Result<Vec<u8>, CliError> {
    let err = |source| CliError::ReadInput {
        path: path.to_path_buf(),
        source,
    };
    let f = File::open(path).map_err(err)?;
    let mut v = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, limit), &mut v).map_err(err)?;
    Ok(v)
}

/// Reads an input file of at most `max` bytes; a larger one is refused as malformed, naming the
/// limit, after reading no more than `max + 1` bytes of it.
pub fn read_input_at_most(path: &Path, max: u64) -> Result<Vec<u8>, CliError> {
    let bytes = read_input_limited(path, max.saturating_add(1))?;
    if bytes.len() as u64 > max {
        return Err(CliError::MalformedFile {
            path: path.to_path_buf(),
            reason: format!("larger than the {max} bytes accepted; refused unread"),
        });
    }
    Ok(bytes)
}

/// Writes `data` to `path` atomically, or to standard output when `path` is `-`.
pub fn write_output(path: &Path, data: &[u8]) -> Result<(), CliError> {
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(data)
            .and_then(|()| out.flush())
            .map_err(|source| CliError::Write {
                path: path.to_path_buf(),
                source,
            });
    }
    let err = |source| CliError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // The rename is durable only once the directory is synced.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Parses a hex argument, naming the flag on error.
pub fn parse_hex(flag: &str, s: &str) -> Result<Vec<u8>, CliError> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    let v = hex::decode(s)
        .map_err(|_| CliError::Usage(format!("{flag} takes hex digits, got {s:?}")))?;
    if v.is_empty() {
        return Err(CliError::Usage(format!("{flag} must not be empty")));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_write_leaves_exactly_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("evidence.json");
        write_output(&out, b"{}").unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"{}");
        // Replacing is atomic too: the old content until the rename, then the new.
        write_output(&out, b"{\"a\":1}").unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"{\"a\":1}");
        assert_eq!(names(dir.path()), ["evidence.json"]);
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        // The rename fails (the target is a non-empty directory) after the temporary file was
        // written and synced: the temporary file must be gone and the target untouched.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("evidence.json");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("keep"), b"x").unwrap();
        let err = write_output(&target, b"{}").unwrap_err();
        assert!(
            matches!(&err, CliError::Write { path, .. } if path == &target),
            "{err:?}"
        );
        assert_eq!(names(dir.path()), ["evidence.json"]);
        assert_eq!(names(&target), ["keep"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("no/such/dir/evidence.json");
        let err = write_output(&target, b"{}").unwrap_err();
        assert!(
            matches!(&err, CliError::Write { path, .. } if path == &target),
            "{err:?}"
        );
        assert_eq!(names(dir.path()), Vec::<String>::new());
    }
}
