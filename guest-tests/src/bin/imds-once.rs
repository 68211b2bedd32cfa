// SPDX-License-Identifier: Apache-2.0
//! `imds-once`: answers one HTTP request on stdin/stdout as the simulated Azure IMDS (THIM), then
//! exits. QEMU's user networking runs it for every guest connection to 169.254.169.254:80
//! (`-netdev user,restrict=on,guestfwd=tcp:169.254.169.254:80-cmd:imds-once`), so the guest of
//! the boot tests reaches this emulator and nothing else. It serves the THIM body of the
//! simulation's test chain, the one `thimble collect --simulate snp` signs its report under, so a
//! bundle made in the guest verifies on the host with `--insecure-allow-simulated`.
//!
//! libslirp connects stdin, stdout *and stderr* to the guest's socket, so nothing may be written
//! to stderr: a diagnostic would reach the guest as part of the HTTP response. When
//! `THIMBLE_IMDS_LOG` names a file (QEMU passes its environment on), one line per connection is
//! appended there instead: the request line and the outcome, which the tests read to prove that
//! the guest really came here.

use std::io::{self, Read, Write};
use std::time::Duration;

use thimble_sim::emulator::{EmulatorConfig, serve_one_connection};
use thimble_sim::signer::sim_chain;

/// A guest that connects and never sends a full request must not leave a process behind for
/// ever; QEMU closing the socket ends it too, this is the backstop.
const LIFETIME: Duration = Duration::from_secs(60);

/// Only the start of the request is kept for the log: the request line is all the tests need.
const KEEP_BYTES: usize = 512;

/// A reader that keeps a copy of the first bytes it passes on.
struct Recording<R> {
    inner: R,
    seen: Vec<u8>,
}

impl<R: Read> Read for Recording<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let room = KEEP_BYTES.saturating_sub(self.seen.len());
        self.seen.extend_from_slice(&buf[..n.min(room)]);
        Ok(n)
    }
}

fn log(line: &str) {
    let Some(path) = std::env::var_os("THIMBLE_IMDS_LOG") else {
        return;
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        // One write per line, so that lines of concurrent connections do not interleave.
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

fn main() {
    std::thread::spawn(|| {
        std::thread::sleep(LIFETIME);
        log("imds-once: gave up: no complete request within the lifetime");
        std::process::exit(1);
    });
    let chain = sim_chain();
    let config = EmulatorConfig {
        thim_amd_body: Some(chain.thim_json.as_bytes().to_vec()),
        ..EmulatorConfig::default()
    };
    let mut input = Recording {
        inner: io::stdin().lock(),
        seen: Vec::new(),
    };
    let mut output = io::stdout().lock();
    // stdout is buffered; the response must be out before the process ends.
    let result =
        serve_one_connection(&config, &mut input, &mut output).and_then(|()| output.flush());
    let seen = String::from_utf8_lossy(&input.seen);
    let request_line = seen.lines().next().unwrap_or("");
    match result {
        Ok(()) => log(&format!("imds-once: served {request_line}")),
        Err(e) => {
            log(&format!("imds-once: error on {request_line:?}: {e}"));
            std::process::exit(1);
        }
    }
}
