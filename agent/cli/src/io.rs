// SPDX-License-Identifier: Apache-2.0
//! File input and output for the CLI: reading inputs with errors that name the path, and writing
//! outputs atomically, so that a reader never sees half a bundle and a failure leaves nothing
//! behind. The data goes into an unnamed file in the output's directory (`O_TMPFILE`), which
//! the kernel frees if the process dies, even by SIGKILL; only once it is complete and synced
//! does it get a name: the output's own when there is no file there yet, else one beside the
//! output, which then replaces it by `rename` (which replaces a symlink at the output rather than
//! following it). Then the directory is synced. Where the file system
//! has no `O_TMPFILE`, a named temporary file takes its place (removed on any failure the
//! process lives through).

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
    thimble_collect::env::read_at_most(f, limit).map_err(err)
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
    write_with_mode(path, data, 0o644)
}

/// As [`write_output`], for a secret (a KBS resource): the file is readable by its owner only
/// from the moment it exists.
pub fn write_secret(path: &Path, data: &[u8]) -> Result<(), CliError> {
    write_with_mode(path, data, 0o600)
}

fn write_with_mode(path: &Path, data: &[u8], mode: u32) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
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
    // Only a regular file (or a symlink, which is replaced, not followed) may be replaced: a
    // device, a FIFO or a directory at the output is a mistake, and as root a rename would
    // replace even /dev/null.
    if let Ok(meta) = fs::symlink_metadata(path) {
        let kind = meta.file_type();
        if !kind.is_file() && !kind.is_symlink() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "it exists and is not a regular file; thimble replaces only files",
            )));
        }
    }
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let sync_dir = || {
        // The rename is durable only once the directory is synced.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
    };
    // An unnamed file first: nothing to clean up if the process dies before it is complete.
    let unnamed = OpenOptions::new()
        .write(true)
        .mode(mode)
        .custom_flags(nix::libc::O_TMPFILE)
        .open(&dir);
    if let Ok(mut f) = unnamed {
        let result = (|| {
            f.write_all(data)?;
            f.sync_all()?;
            let fd_path = format!("/proc/self/fd/{}", f.as_raw_fd());
            let link = |to: &Path| {
                nix::unistd::linkat(
                    nix::fcntl::AT_FDCWD,
                    fd_path.as_str(),
                    nix::fcntl::AT_FDCWD,
                    to,
                    nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
                )
            };
            // A first write (the boot hook's, on a fresh /run) needs no temporary name: the file
            // is linked at the output itself, complete, in one step. `linkat` never replaces, so
            // an output that appeared meanwhile (EEXIST) takes the replacing path below.
            if fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
                match link(path) {
                    Ok(()) => {
                        sync_dir();
                        return Ok(());
                    }
                    Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let _ = fs::remove_file(&tmp);
            link(&tmp).map_err(std::io::Error::from)?;
            if let Err(e) = fs::rename(&tmp, path) {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
            sync_dir();
            Ok(())
        })();
        match result {
            Ok(()) => return Ok(()),
            // No /proc to name the file through: the named way below.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
    }
    let result = (|| {
        // `create_new` never follows a symlink planted at the temporary name; the mode is
        // applied at creation (then narrowed by the umask).
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir();
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
    use std::os::unix::fs::PermissionsExt;

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
    fn limited_reads_take_the_whole_file_or_exactly_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bundle.json");
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&f, &data).unwrap();
        assert_eq!(read_input_limited(&f, 1 << 20).unwrap(), data);
        assert_eq!(read_input_limited(&f, 20_000).unwrap(), data);
        assert_eq!(read_input_limited(&f, 19_999).unwrap(), data[..19_999]);
        assert_eq!(read_input_limited(&f, 0).unwrap(), b"");
        assert_eq!(read_input_at_most(&f, 20_000).unwrap(), data);
        assert!(matches!(
            read_input_at_most(&f, 19_999),
            Err(CliError::MalformedFile { .. })
        ));
        let empty = dir.path().join("empty");
        fs::write(&empty, b"").unwrap();
        assert_eq!(read_input_limited(&empty, 10).unwrap(), b"");
    }

    #[test]
    fn limited_reads_do_not_trust_a_zero_length() {
        // Files under /proc report a length of 0 and still have content: the length only sizes
        // the first buffer.
        let status = read_input_limited(Path::new("/proc/self/status"), 1 << 20).unwrap();
        assert!(status.starts_with(b"Name:"), "{status:?}");
        assert_eq!(
            read_input_limited(Path::new("/proc/self/status"), 5).unwrap(),
            b"Name:"
        );
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

    #[test]
    fn outputs_replace_atomically_and_leave_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("evidence.json");
        write_output(&out, b"one").unwrap();
        write_output(&out, b"two").unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"two");
        assert_eq!(names(dir.path()), ["evidence.json"]);
        let secret = dir.path().join("disk.key");
        write_secret(&secret, b"k").unwrap();
        let mode = fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    #[test]
    fn a_symlink_at_the_output_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        fs::write(&target, b"keep").unwrap();
        let out = dir.path().join("evidence.json");
        std::os::unix::fs::symlink(&target, &out).unwrap();
        write_output(&out, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert!(!fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&out).unwrap(), b"new");
    }

    #[test]
    fn a_dangling_symlink_at_the_output_is_replaced_not_followed() {
        // A first write links the file at the output's name only when nothing is there; a
        // symlink pointing nowhere is something, and must not lead the write to its target.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("nowhere");
        let out = dir.path().join("evidence.json");
        std::os::unix::fs::symlink(&target, &out).unwrap();
        write_output(&out, b"new").unwrap();
        assert!(!target.exists());
        assert!(fs::symlink_metadata(&out).unwrap().file_type().is_file());
        assert_eq!(fs::read(&out).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["evidence.json"]);
    }

    #[test]
    fn a_failed_write_leaves_the_previous_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("evidence.json");
        write_output(&out, b"previous").unwrap();
        // The output's place is taken by a directory: the rename fails after the data was
        // written, and what was written must not stay behind.
        let blocked = dir.path().join("blocked");
        fs::create_dir(blocked.join("")).unwrap();
        fs::write(blocked.join("inside"), b"x").unwrap();
        assert!(write_output(&blocked, b"data").is_err());
        assert_eq!(fs::read(&out).unwrap(), b"previous");
        assert_eq!(names(dir.path()), ["blocked", "evidence.json"]);
    }
}
