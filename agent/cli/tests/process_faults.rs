// SPDX-License-Identifier: Apache-2.0
//! Process faults while an output is written: `collect` killed by SIGKILL or SIGTERM at varying
//! moments leaves the previous bundle whole (or the new one, complete) and no temporary file; an
//! output that cannot be written (a read-only directory, a path under a file, a device node or a
//! directory in its place) is a write error (exit 1) that leaves nothing behind and replaces
//! nothing but a regular file.

#![expect(clippy::unwrap_used, reason = "test assertions")]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{p, run};

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn is_whole_bundle(path: &Path) -> bool {
    thimble_evidence::bundle::Bundle::parse(&std::fs::read(path).unwrap()).is_ok()
}

#[test]
fn killed_during_collect_leaves_the_previous_bundle_and_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("evidence.json");
    let r = run(&["collect", "--simulate", "snp", "-o", p(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for i in 0..24u64 {
        let mut child = common::bin()
            .args(["collect", "--simulate", "snp", "-o", p(&out)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Spread the kills over the run: start-up, collection, the write.
        std::thread::sleep(Duration::from_millis(i * 7 % 90));
        if i % 2 == 0 {
            child.kill().unwrap();
        } else {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success() || child.try_wait().unwrap().is_some());
        }
        let _ = child.wait().unwrap();
        assert!(is_whole_bundle(&out), "round {i}: the bundle is not whole");
        assert_eq!(names(dir.path()), ["evidence.json"], "round {i}");
    }
}

#[test]
fn a_read_only_directory_is_a_write_error_that_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(&ro, perms).unwrap();
    // As root, permissions do not stop a write; a read-only bind mount would, but needs
    // privileges a test should not take. The check then is only that nothing is left over.
    let out = ro.join("evidence.json");
    let r = run(&["collect", "--simulate", "snp", "-o", p(&out)]);
    if r.code != 0 {
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.stderr.contains("cannot write"), "{}", r.stderr);
        assert!(names(&ro).is_empty(), "{:?}", names(&ro));
    } else {
        assert_eq!(names(&ro), ["evidence.json"]);
    }
}

#[test]
fn an_output_that_is_not_a_regular_file_is_refused_and_kept() {
    // As root a rename would replace even a device node; thimble must refuse instead. A FIFO
    // stands for the special files here, so that a regression cannot damage /dev.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let r = run(&["collect", "--simulate", "snp", "-o", p(&fifo)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &std::fs::symlink_metadata(&fifo).unwrap().file_type()
    ));
    assert_eq!(names(dir.path()), ["fifo"]);
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("a-directory");
    std::fs::create_dir(&sub).unwrap();
    let r = run(&["collect", "--simulate", "snp", "-o", p(&sub)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(names(dir.path()), ["a-directory"]);
}

#[test]
fn a_full_disk_is_a_write_error_that_leaves_nothing() {
    // A path under a regular file cannot be created: the class of failure a full or read-only
    // file system gives, without needing one.
    let dir = tempfile::tempdir().unwrap();
    let under_file = dir.path().join("file");
    std::fs::write(&under_file, b"x").unwrap();
    let r = run(&[
        "collect",
        "--simulate",
        "snp",
        "-o",
        p(&under_file.join("evidence.json")),
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(names(dir.path()), ["file"]);
}
