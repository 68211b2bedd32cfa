// SPDX-License-Identifier: Apache-2.0
//! `tcp-relay 127.0.0.1:PORT`: joins one guest connection, on stdin and stdout, to a TCP server
//! on the host's loopback, then exits. QEMU's user networking runs it for every guest
//! connection to a forwarded address (`guestfwd=tcp:ADDR:PORT-cmd:tcp-relay 127.0.0.1:PORT`),
//! so that a server that keeps state across connections (the KBS emulator of the attest boot
//! test, with its sessions) can run once in the test process, where a per-connection program
//! like `imds-once` could not keep it.
//!
//! It copies stdin to the socket and the socket to stdout: the guest's end of input becomes a
//! half-close of the socket, and the server's end of output ends the relay (and so the guest's
//! connection). Only loopback targets are accepted: the guest must reach nothing but what the
//! test runs. libslirp connects stdin, stdout *and stderr* to the guest's socket, so nothing is
//! written to stderr; when `THIMBLE_IMDS_LOG` names a file (QEMU passes its environment on), one
//! line per connection is appended there: the target and the bytes relayed each way.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A connection that never ends must not leave a process behind for ever; QEMU closing the
/// socket ends it too, this is the backstop.
const LIFETIME: Duration = Duration::from_secs(120);

/// How long connecting to the host's server may take (it is on loopback).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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

/// The target from the only argument: a loopback socket address.
fn target() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let (Some(arg), None) = (args.next(), args.next()) else {
        return Err("usage: tcp-relay 127.0.0.1:PORT".into());
    };
    let addr: SocketAddr = arg
        .parse()
        .map_err(|e| format!("{arg:?} is not an address: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("{addr} is not on loopback"));
    }
    Ok(addr)
}

/// Copies `from` to `to` until `from` ends (or either fails), counting the bytes read in
/// `total`.
fn pump(mut from: impl Read, mut to: impl Write, total: &AtomicU64) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Counted before it is passed on: once the other side has it, the count is final.
        total.fetch_add(n as u64, Ordering::Relaxed);
        if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
            break;
        }
    }
}

fn main() {
    std::thread::spawn(|| {
        std::thread::sleep(LIFETIME);
        log("tcp-relay: gave up: the connection outlived the lifetime");
        std::process::exit(1);
    });
    let addr = match target() {
        Ok(a) => a,
        Err(e) => {
            log(&format!("tcp-relay: {e}"));
            std::process::exit(2);
        }
    };
    let socket = match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
        Ok(s) => s,
        Err(e) => {
            log(&format!("tcp-relay: {addr}: cannot connect: {e}"));
            std::process::exit(1);
        }
    };
    let Ok(to_server) = socket.try_clone() else {
        log(&format!("tcp-relay: {addr}: cannot duplicate the socket"));
        std::process::exit(1);
    };
    // Guest to server on a thread of its own; the guest's end of input half-closes the socket,
    // so that a server reading to the end of the request sees it.
    let up = Arc::new(AtomicU64::new(0));
    let up_count = Arc::clone(&up);
    std::thread::spawn(move || {
        pump(io::stdin().lock(), &to_server, &up_count);
        let _ = to_server.shutdown(Shutdown::Write);
    });
    // Server to guest here. When the server has said everything the relay is done, whether or
    // not the guest has closed its side yet (an HTTP client waits for the answer, and closes
    // once it has it): exiting closes stdin and stdout, which the guest sees as the end.
    let down = AtomicU64::new(0);
    pump(&socket, io::stdout().lock(), &down);
    log(&format!(
        "tcp-relay: {addr}: {} bytes from the guest, {} bytes to the guest",
        up.load(Ordering::Relaxed),
        down.load(Ordering::Relaxed)
    ));
    std::process::exit(0);
}
