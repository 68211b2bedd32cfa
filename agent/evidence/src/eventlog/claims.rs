// SPDX-License-Identifier: Apache-2.0
//! What a measured-boot log says, for people and for policy: the Secure Boot state and which of
//! PK, KEK, db and dbx were measured, the boot applications, the kernel command line, the kernel
//! and initrd digests where the log has them, and the separators. Facts and sources:
//! docs/formats.md §8.4 and §8.5.
//!
//! Nothing here makes the log believable: only a replay that matches signed registers does
//! (`thimble-verify`'s `eventlog`). Even then, a replay vouches for the digests, not for the event
//! data beside them, so every claim read from event data says whether the event's digest is the
//! hash of that data (`data_verified`). That holds for the Secure Boot variables, separators,
//! actions and GRUB's command lines; it cannot hold for images and files (boot applications,
//! kernels, initrds), whose digests are of what was loaded and whose data only describes it, so
//! those claims give the digests and a description that is information only.
//!
//! Pure and bounded: one pass over the events, at most one claim per event.

use std::collections::BTreeMap;

use crate::digest::{Sha256, Sha384, Sha512};
use serde::Serialize;

use super::log::{Event, EventLog};
use super::types::{EventType, HashAlg};
use super::uefi::{Guid, ImageLoadEvent, TaggedEvent, UefiVariableData};

/// Digests by algorithm name (`sha256`), lower-case hex.
pub type Digests = BTreeMap<String, String>;

/// The claims of a log, decoded from its events (see the module documentation for what they
/// are worth).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventLogClaims {
    /// The digest algorithms of the log (its banks), from the Spec ID event.
    pub algorithms: Vec<HashAlg>,
    /// The number of events after the Spec ID header.
    pub events: usize,
    /// The StartupLocality of PCR 0, when the log records one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_locality: Option<u8>,
    /// The `SecureBoot` variable as measured (`EV_EFI_VARIABLE_DRIVER_CONFIG`): true for 1,
    /// false for 0. `None` when it was not measured, is not one byte, or its event's digest does
    /// not vouch for its data.
    pub secure_boot: Option<bool>,
    /// Every `EV_EFI_VARIABLE_DRIVER_CONFIG` variable: SecureBoot, PK, KEK, db, dbx, …
    pub secure_boot_variables: Vec<VariableMeasurement>,
    /// Every `EV_EFI_VARIABLE_AUTHORITY` event: the db entry or shim authority that allowed an
    /// image.
    pub authorities: Vec<VariableMeasurement>,
    /// Every `EV_EFI_BOOT_SERVICES_APPLICATION` event, in boot order.
    pub boot_applications: Vec<BootApplication>,
    /// The kernel command lines the boot loader measured (GRUB).
    pub kernel_cmdlines: Vec<CommandLine>,
    /// The kernels the boot loader measured (GRUB).
    pub kernels: Vec<BootFile>,
    /// The initrds measured by the boot loader (GRUB) or by the Linux EFI stub.
    pub initrds: Vec<BootFile>,
    /// The Linux EFI stub's measurements of its load options (the command line as given to the
    /// kernel image); the log holds only their digest.
    pub load_options: Vec<BootFile>,
    /// Every `EV_SEPARATOR`.
    pub separators: Vec<Separator>,
    /// Events whose data does not decode as their type says it should.
    pub undecodable: Vec<Undecodable>,
}

/// A UEFI variable measured with `UEFI_VARIABLE_DATA`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VariableMeasurement {
    /// The event's position in the log.
    pub event: usize,
    /// The register it extended.
    pub register: u32,
    /// The variable's vendor GUID.
    pub vendor_guid: Guid,
    /// The variable's name.
    pub name: String,
    /// The size of its data.
    pub data_len: usize,
    /// The event's digests.
    pub digests: Digests,
    /// Whether the digests are the hash of the event data (see [`data_verified`]).
    pub data_verified: Option<bool>,
}

/// A boot application (`UEFI_IMAGE_LOAD_EVENT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootApplication {
    /// The event's position in the log.
    pub event: usize,
    /// The register it extended.
    pub register: u32,
    /// The digests of the image (its Authenticode hash, as firmware measures PE images).
    pub digests: Digests,
    /// `ImageLengthInMemory`.
    pub image_length: u64,
    /// The file it was loaded from, when the device path says so simply (information only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
}

/// A kernel command line a boot loader measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandLine {
    /// The event's position in the log.
    pub event: usize,
    /// The register it extended.
    pub register: u32,
    /// Who measured it: `grub`.
    pub source: &'static str,
    /// The command line (GRUB's starts with the kernel's path).
    pub text: String,
    /// Whether the digests are the hash of `text` (GRUB measures the text after its
    /// `kernel_cmdline: ` prefix, without the final NUL).
    pub data_verified: Option<bool>,
}

/// A file a boot loader or the kernel's EFI stub measured: only the digests count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootFile {
    /// The event's position in the log.
    pub event: usize,
    /// The register it extended.
    pub register: u32,
    /// Who measured it: `grub` or `linux-efi-stub`.
    pub source: &'static str,
    /// Its path, as the boot loader's commands give it (information only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The digests of its contents.
    pub digests: Digests,
}

/// An `EV_SEPARATOR` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Separator {
    /// The event's position in the log.
    pub event: usize,
    /// The register it extended.
    pub register: u32,
    /// Its event data, hex (`00000000` normally).
    pub value: String,
    /// Whether the digests are the hash of the event data.
    pub data_verified: Option<bool>,
}

/// An event whose data does not decode as its type calls for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undecodable {
    /// The event's position in the log.
    pub event: usize,
    /// Its type.
    pub event_type: EventType,
    /// Why.
    pub reason: String,
}

/// The hash of `data` with `alg`, for the algorithms this crate can compute (SHA-256, SHA-384,
/// SHA-512).
pub fn hash(alg: HashAlg, data: &[u8]) -> Option<Vec<u8>> {
    Some(match alg {
        HashAlg::SHA256 => Sha256::digest(data).to_vec(),
        HashAlg::SHA384 => Sha384::digest(data).to_vec(),
        HashAlg::SHA512 => Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

/// Whether `event`'s digests are the hash of `data`: `Some(true)` when every digest of an
/// algorithm [`hash`] computes matches, `Some(false)` when one does not, `None` when the event
/// has none of those algorithms (a SHA-1-only log).
pub fn data_verified(event: &Event, data: &[u8]) -> Option<bool> {
    let mut checked = false;
    for d in &event.digests {
        if let Some(h) = hash(d.alg, data) {
            if h != d.digest {
                return Some(false);
            }
            checked = true;
        }
    }
    checked.then_some(true)
}

fn digests(event: &Event) -> Digests {
    event
        .digests
        .iter()
        .map(|d| (d.alg.to_string(), hex::encode(&d.digest)))
        .collect()
}

/// Event data as text: UTF-8 (lossy) without trailing NULs.
fn text(data: &[u8]) -> String {
    let end = data.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&data[..end]).into_owned()
}

/// A path without GRUB's leading device, `(hd0,gpt2)/boot/x` -> `/boot/x`.
fn without_device(path: &str) -> &str {
    match path.strip_prefix('(').and_then(|p| p.split_once(')')) {
        Some((_, rest)) => rest,
        None => path,
    }
}

/// GRUB's file roles, from its `linux` and `initrd` commands.
#[derive(Default)]
struct GrubState {
    kernel: Option<String>,
    initrds: Vec<String>,
}

impl GrubState {
    /// Notes the paths a `linux` or `initrd` command is about to load.
    fn command(&mut self, cmd: &str) {
        let mut words = cmd.split_whitespace();
        match words.next() {
            Some("linux" | "linuxefi" | "linux16") => {
                self.kernel = words.next().map(str::to_string);
            }
            Some("initrd" | "initrdefi" | "initrd16") => {
                self.initrds = words.map(str::to_string).collect();
            }
            _ => {}
        }
    }
}

impl EventLogClaims {
    /// Decodes the claims of `log`.
    pub fn from_log(log: &EventLog) -> EventLogClaims {
        EventLogClaims::from_log_where(log, |_| true)
    }

    /// Decodes the claims of the events of `log` whose register `keep` accepts: a verifier
    /// passes the registers the log was replayed to and matched, so that no claim rests on an
    /// event nothing signed vouches for. `events` still counts every event of the log.
    pub fn from_log_where(log: &EventLog, keep: impl Fn(u32) -> bool) -> EventLogClaims {
        let mut c = EventLogClaims {
            algorithms: log.spec_id.algorithms.iter().map(|a| a.alg).collect(),
            events: log.events.len(),
            startup_locality: log.startup_locality(),
            secure_boot: None,
            secure_boot_variables: Vec::new(),
            authorities: Vec::new(),
            boot_applications: Vec::new(),
            kernel_cmdlines: Vec::new(),
            kernels: Vec::new(),
            initrds: Vec::new(),
            load_options: Vec::new(),
            separators: Vec::new(),
            undecodable: Vec::new(),
        };
        let mut grub = GrubState::default();
        for e in log.events.iter().filter(|e| keep(e.register)) {
            c.add(e, &mut grub);
        }
        c
    }

    fn undecodable(&mut self, e: &Event, reason: impl ToString) {
        self.undecodable.push(Undecodable {
            event: e.index,
            event_type: e.event_type,
            reason: reason.to_string(),
        });
    }

    fn add(&mut self, e: &Event, grub: &mut GrubState) {
        match e.event_type {
            EventType::EV_EFI_VARIABLE_DRIVER_CONFIG | EventType::EV_EFI_VARIABLE_AUTHORITY => {
                let v = match UefiVariableData::parse(&e.data) {
                    Ok(v) => v,
                    Err(err) => return self.undecodable(e, err),
                };
                let m = VariableMeasurement {
                    event: e.index,
                    register: e.register,
                    vendor_guid: v.variable_name,
                    name: v.unicode_name,
                    data_len: v.variable_data.len(),
                    digests: digests(e),
                    data_verified: data_verified(e, &e.data),
                };
                if e.event_type == EventType::EV_EFI_VARIABLE_AUTHORITY {
                    self.authorities.push(m);
                    return;
                }
                let is_secure_boot =
                    m.vendor_guid == Guid::EFI_GLOBAL_VARIABLE && m.name == "SecureBoot";
                if is_secure_boot && self.secure_boot.is_none() && m.data_verified == Some(true) {
                    self.secure_boot = match v.variable_data.as_slice() {
                        [1] => Some(true),
                        [0] => Some(false),
                        _ => None,
                    };
                }
                self.secure_boot_variables.push(m);
            }
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION => match ImageLoadEvent::parse(&e.data) {
                Ok(img) => self.boot_applications.push(BootApplication {
                    event: e.index,
                    register: e.register,
                    digests: digests(e),
                    image_length: img.image_length_in_memory,
                    file_path: img.file_path(),
                }),
                Err(err) => self.undecodable(e, err),
            },
            EventType::EV_SEPARATOR => self.separators.push(Separator {
                event: e.index,
                register: e.register,
                value: hex::encode(&e.data),
                data_verified: data_verified(e, &e.data),
            }),
            EventType::EV_EVENT_TAG => match TaggedEvent::parse(&e.data) {
                Ok(t) if t.tagged_event_id == TaggedEvent::LINUX_INITRD => {
                    self.initrds.push(stub_file(e));
                }
                Ok(t) if t.tagged_event_id == TaggedEvent::LINUX_LOAD_OPTIONS => {
                    self.load_options.push(stub_file(e));
                }
                Ok(_) => {}
                Err(err) => self.undecodable(e, err),
            },
            EventType::EV_IPL => self.add_ipl(e, grub),
            _ => {}
        }
    }

    /// GRUB's `EV_IPL` events: its commands (`grub_cmd: …`, RHEL's `grub_cmd …`), the kernel
    /// command line (`kernel_cmdline: …`, RHEL's `grub_kernel_cmdline …`) and the files it reads
    /// (their path; RHEL's `grub_linuxefi Kernel` / `Initrd`). Anything else is not GRUB's.
    fn add_ipl(&mut self, e: &Event, grub: &mut GrubState) {
        let t = text(&e.data);
        if let Some(cmd) = t
            .strip_prefix("grub_cmd: ")
            .or_else(|| t.strip_prefix("grub_cmd "))
        {
            grub.command(cmd);
            return;
        }
        if let Some(cmdline) = t
            .strip_prefix("kernel_cmdline: ")
            .or_else(|| t.strip_prefix("grub_kernel_cmdline "))
        {
            self.kernel_cmdlines.push(CommandLine {
                event: e.index,
                register: e.register,
                source: "grub",
                text: cmdline.to_string(),
                data_verified: data_verified(e, cmdline.as_bytes()),
            });
            return;
        }
        let file = |path: Option<String>| BootFile {
            event: e.index,
            register: e.register,
            source: "grub",
            path,
            digests: digests(e),
        };
        match t.as_str() {
            "grub_linuxefi Kernel" => self.kernels.push(file(grub.kernel.clone())),
            "grub_linuxefi Initrd" => {
                let paths = (!grub.initrds.is_empty()).then(|| grub.initrds.join(" "));
                self.initrds.push(file(paths));
            }
            path if path.starts_with('/') || path.starts_with('(') => {
                let p = without_device(path);
                if grub.kernel.as_deref().map(without_device) == Some(p) {
                    self.kernels.push(file(Some(path.to_string())));
                } else if grub.initrds.iter().any(|i| without_device(i) == p) {
                    self.initrds.push(file(Some(path.to_string())));
                }
            }
            _ => {}
        }
    }
}

fn stub_file(e: &Event) -> BootFile {
    BootFile {
        event: e.index,
        register: e.register,
        source: "linux-efi-stub",
        path: None,
        digests: digests(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COS113: &[u8] =
        include_bytes!("../../../../tests/vectors/eventlog/tdx-gcp-cos113/ccel_data.bin");
    const RHEL8: &[u8] =
        include_bytes!("../../../../tests/vectors/eventlog/tpm-gce-rhel8/event_log.bin");

    #[test]
    fn a_gce_tdx_log_says_secure_boot_grub_and_its_kernel() {
        let log = EventLog::parse(COS113).unwrap();
        let c = EventLogClaims::from_log(&log);
        assert_eq!(c.algorithms, [HashAlg::SHA384]);
        // This TD booted shim and GRUB with Secure Boot off.
        assert_eq!(c.secure_boot, Some(false));
        let names: Vec<&str> = c
            .secure_boot_variables
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(names, ["SecureBoot", "PK", "KEK", "db", "dbx"]);
        assert!(
            c.secure_boot_variables
                .iter()
                .all(|v| v.data_verified == Some(true))
        );
        assert_eq!(c.boot_applications.len(), 2);
        assert_eq!(
            c.boot_applications[1].file_path.as_deref(),
            Some("\\EFI\\BOOT\\grub-lakitu.efi")
        );
        assert_eq!(c.kernel_cmdlines.len(), 1);
        assert!(
            c.kernel_cmdlines[0]
                .text
                .starts_with("/syslinux/vmlinuz.A init=/usr/lib/systemd/systemd")
        );
        assert_eq!(c.kernel_cmdlines[0].data_verified, Some(true));
        assert_eq!(c.kernels.len(), 1);
        assert_eq!(c.kernels[0].path.as_deref(), Some("/syslinux/vmlinuz.A"));
        assert_eq!(c.kernels[0].register, 3);
        assert!(c.initrds.is_empty());
        assert_eq!(c.separators.len(), 2);
        assert!(c.separators.iter().all(|s| s.value == "00000000"));
        assert!(c.undecodable.is_empty(), "{:?}", c.undecodable);
    }

    #[test]
    fn rhel_grub_names_kernel_and_initrd_by_description() {
        let c = EventLogClaims::from_log(&EventLog::parse(RHEL8).unwrap());
        assert_eq!(c.kernels.len(), 1);
        assert_eq!(
            c.kernels[0].path.as_deref(),
            Some("(hd0,gpt2)/boot/vmlinuz-4.18.0-240.22.1.el8_3.x86_64")
        );
        assert_eq!(c.initrds.len(), 1);
        assert!(c.initrds[0].path.as_deref().unwrap().contains("initramfs"));
        assert_eq!(c.kernel_cmdlines.len(), 1);
        assert_eq!(c.kernel_cmdlines[0].data_verified, Some(true));
        assert_eq!(c.secure_boot, Some(true));
        assert_eq!(c.authorities.len(), 2);
    }

    #[test]
    fn a_secure_boot_variable_whose_digest_does_not_cover_it_gives_no_state() {
        let mut log = EventLog::parse(COS113).unwrap();
        let sb = log
            .events
            .iter_mut()
            .find(|e| e.event_type == EventType::EV_EFI_VARIABLE_DRIVER_CONFIG)
            .unwrap();
        let last = sb.data.len() - 1;
        sb.data[last] ^= 1;
        let c = EventLogClaims::from_log(&log);
        assert_eq!(c.secure_boot, None);
        assert_eq!(c.secure_boot_variables[0].data_verified, Some(false));
    }

    #[test]
    fn claims_serialise() {
        let c = EventLogClaims::from_log(&EventLog::parse(COS113).unwrap());
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["algorithms"][0], "sha384");
        assert_eq!(
            json["secure_boot_variables"][0]["vendor_guid"],
            "8be4df61-93ca-11d2-aa0d-00e098032b8c"
        );
    }
}
