// SPDX-License-Identifier: Apache-2.0
//! In-memory configfs-tsm report group that follows the Linux kernel's contract
//! (`drivers/virt/coco/guest/report.c`, earlier `drivers/virt/coco/tsm.c`, and configfs's own
//! attribute handling), for driving `thimble_collect::tsm::TsmClient` in tests and `--simulate`
//! runs.
//!
//! What it reproduces: entries made with `mkdir` and removed with `rmdir`; attributes visible per
//! kernel release and provider; `generation` as the kernel's `write_generation`, advanced by every
//! accepted write and refusing to wrap past `read_generation`; `outblob`/`auxblob` regenerated on
//! read only when the write generation moved, cached otherwise; the errno values of the ABI
//! (`ENXIO`, `EBUSY`, `EINVAL`, `EFBIG`, `ETIMEDOUT`, `EACCES`, `ENOENT`, `EEXIST`). Fault knobs
//! inject the failures a real guest produces only under a slow or hostile host. The report bytes
//! themselves come from a caller-supplied generator; this module does not sign anything.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use thimble_collect::tsm::{
    ConfigFs, DEFAULT_TSM_ROOT, Errno, INBLOB_LEN, PRIVLEVEL_MAX, Provider, attr,
};

/// Which kernel release's attribute set to present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelProfile {
    /// v6.7: `inblob`, `outblob`, `provider`, `generation`; for `sev_guest` also `auxblob`,
    /// `privlevel` and `privlevel_floor`.
    Linux6_7,
    /// v6.10: adds `manifestblob`, `service_provider`, `service_guid` and
    /// `service_manifest_version`. `sev_guest` shows them only under an SVSM, which the fake
    /// models as `privlevel_floor > 0` (the kernel keys both on the guest's VMPL).
    Linux6_10,
}

/// Produces `(outblob, auxblob)` for an `inblob` and `privlevel`, or fails with an errno, as the
/// provider's `report_new` does. Called with the fake's lock held: it must not call back into the
/// fake.
pub type ReportGenerator =
    Box<dyn Fn(&[u8; INBLOB_LEN], u32) -> Result<(Vec<u8>, Vec<u8>), i32> + Send + Sync>;

type SharedGenerator =
    Arc<dyn Fn(&[u8; INBLOB_LEN], u32) -> Result<(Vec<u8>, Vec<u8>), i32> + Send + Sync>;

/// One `write` that reached an attribute of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeWrite {
    /// Entry name.
    pub entry: String,
    /// Attribute name.
    pub attribute: String,
    /// The bytes written.
    pub data: Vec<u8>,
    /// Whether the simulated racing writer made it rather than the code under test.
    pub racer: bool,
    /// The errno the write failed with, if it failed.
    pub errno: Option<i32>,
}

/// `TSM_REPORT_OUTBLOB_MAX` (include/linux/tsm.h) from v6.7 on: `SZ_32K`, the `cb_max_size` of
/// the `outblob`, `auxblob` and `manifestblob` attributes. Later trees raised it to `SZ_16M`.
pub const TSM_REPORT_OUTBLOB_MAX: usize = 32 * 1024;

/// The `inblob` the simulated racing writer writes.
pub const RACER_INBLOB: [u8; INBLOB_LEN] = [0xa5; INBLOB_LEN];

/// In-memory configfs-tsm report group. Clones share state, so a test can keep one clone for
/// inspection and hand another to the client.
#[derive(Clone)]
pub struct FakeTsm {
    root: PathBuf,
    generator: SharedGenerator,
    state: Arc<Mutex<State>>,
}

struct State {
    profile: KernelProfile,
    provider: Provider,
    registered: bool,
    mounted: bool,
    privlevel_floor: u32,
    manifestblob: Vec<u8>,
    busy_remaining: u32,
    empty_outblob: bool,
    efbig: bool,
    blob_max: usize,
    etimedout: bool,
    racing_writer: bool,
    entries: BTreeMap<String, Entry>,
    writes: Vec<FakeWrite>,
    mkdir_count: usize,
    report_new_count: usize,
}

/// `struct tsm_report_state` plus the attributes configfs populated at `mkdir`.
struct Entry {
    visible: Vec<&'static str>,
    write_generation: u64,
    read_generation: u64,
    inblob: Vec<u8>,
    privlevel: u32,
    service_provider: Option<String>,
    service_guid: Option<String>,
    service_manifest_version: u32,
    blobs: Option<Blobs>,
}

struct Blobs {
    outblob: Vec<u8>,
    auxblob: Vec<u8>,
    manifestblob: Vec<u8>,
}

enum Node<'a> {
    /// An ancestor of the report root (`/sys/kernel/config/tsm`).
    Ancestor,
    Root,
    Entry(&'a str),
    Attribute(&'a str, &'a str),
    Outside,
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl FakeTsm {
    /// A report group at [`DEFAULT_TSM_ROOT`] served by `provider`, presenting `profile`'s
    /// attributes, with reports made by `generator`.
    pub fn new(profile: KernelProfile, provider: Provider, generator: ReportGenerator) -> Self {
        Self {
            root: PathBuf::from(DEFAULT_TSM_ROOT),
            generator: Arc::from(generator),
            state: Arc::new(Mutex::new(State {
                profile,
                provider,
                registered: true,
                mounted: true,
                privlevel_floor: 0,
                manifestblob: Vec::new(),
                busy_remaining: 0,
                empty_outblob: false,
                efbig: false,
                blob_max: TSM_REPORT_OUTBLOB_MAX,
                etimedout: false,
                racing_writer: false,
                entries: BTreeMap::new(),
                writes: Vec::new(),
                mkdir_count: 0,
                report_new_count: 0,
            })),
        }
    }

    /// Serves the group at `root` instead of [`DEFAULT_TSM_ROOT`].
    pub fn with_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = root.into();
        self
    }

    /// The report group's path, to pass to the client.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The next `n` report generations (outblob reads that need a new report) fail with `EBUSY`,
    /// as `tdx_guest` does while a GetQuote is still in flight.
    pub fn busy_times(self, n: u32) -> Self {
        self.lock().busy_remaining = n;
        self
    }

    /// No provider is registered (guest driver not loaded): `mkdir` fails with `ENXIO`.
    pub fn fail_mkdir_enxio(self) -> Self {
        self.lock().registered = false;
        self
    }

    /// configfs is not mounted or has no `tsm` subsystem: the root does not exist.
    pub fn unmounted(self) -> Self {
        self.lock().mounted = false;
        self
    }

    /// Reports are generated with an empty `outblob` (the firmware or the host's quote service
    /// returned nothing).
    pub fn empty_outblob(self) -> Self {
        self.lock().empty_outblob = true;
        self
    }

    /// Reading `outblob` fails with `EFBIG`: the report exceeds `TSM_REPORT_OUTBLOB_MAX`.
    pub fn efbig(self) -> Self {
        self.lock().efbig = true;
        self
    }

    /// The largest blob a read returns (default [`TSM_REPORT_OUTBLOB_MAX`]); reading a larger
    /// `outblob`, `auxblob` or `manifestblob` fails with `EFBIG`, as configfs does for a binary
    /// attribute over its `cb_max_size`.
    pub fn blob_max(self, max: usize) -> Self {
        self.lock().blob_max = max;
        self
    }

    /// Report generation fails with `ETIMEDOUT` (TDX GetQuote not done in 30 s, or SEV host
    /// throttling that lasted more than 60 s).
    pub fn etimedout(self) -> Self {
        self.lock().etimedout = true;
        self
    }

    /// Once, right after the next `inblob` write, another process writes [`RACER_INBLOB`] to the
    /// same entry, so the report read next is for its data and `generation` is one too high.
    pub fn racing_writer(self) -> Self {
        self.lock().racing_writer = true;
        self
    }

    /// The provider's `privlevel_floor` (the guest's VMPL for `sev_guest`).
    pub fn privlevel_floor(self, floor: u32) -> Self {
        self.lock().privlevel_floor = floor;
        self
    }

    /// The SVSM manifest returned in `manifestblob` when `service_provider` is `svsm`.
    pub fn manifestblob(self, manifest: Vec<u8>) -> Self {
        self.lock().manifestblob = manifest;
        self
    }

    /// Names of the entries that currently exist.
    pub fn entries(&self) -> Vec<String> {
        self.lock().entries.keys().cloned().collect()
    }

    /// Every write that reached an entry's attribute, in order.
    pub fn writes(&self) -> Vec<FakeWrite> {
        self.lock().writes.clone()
    }

    /// How many `mkdir` calls were made under the root (successful or not).
    pub fn mkdir_count(&self) -> usize {
        self.lock().mkdir_count
    }

    /// How many times a report was (re)generated, i.e. the provider's `report_new` ran.
    pub fn report_new_count(&self) -> usize {
        self.lock().report_new_count
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in a generator poisons the lock; the state itself stays consistent because
        // every mutation completes before the generator runs or after it returns.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn classify<'p>(&self, path: &'p Path) -> Node<'p> {
        let Ok(rest) = path.strip_prefix(&self.root) else {
            return if self.root.starts_with(path) {
                Node::Ancestor
            } else {
                Node::Outside
            };
        };
        let mut names = Vec::new();
        for component in rest.components() {
            match component {
                Component::Normal(name) => match name.to_str() {
                    Some(name) => names.push(name),
                    None => return Node::Outside,
                },
                Component::CurDir => {}
                _ => return Node::Outside,
            }
        }
        match names.as_slice() {
            [] => Node::Root,
            [entry] => Node::Entry(entry),
            [entry, attribute] => Node::Attribute(entry, attribute),
            _ => Node::Outside,
        }
    }
}

impl fmt::Debug for FakeTsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("FakeTsm")
            .field("root", &self.root)
            .field("profile", &state.profile)
            .field("provider", &state.provider)
            .field("entries", &state.entries.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Attributes configfs populates in a new entry. Since v6.10 the kernel asks the provider's
/// `report_(bin_)attr_visible`; in v6.7 `sev_guest` registered the "extra" type and everyone else
/// the default type, which comes to the same sets.
fn visible_attributes(
    profile: KernelProfile,
    provider: &Provider,
    floor: u32,
) -> Vec<&'static str> {
    let mut visible = vec![
        attr::INBLOB,
        attr::OUTBLOB,
        attr::PROVIDER,
        attr::GENERATION,
    ];
    let svsm_attributes = [
        attr::MANIFESTBLOB,
        attr::SERVICE_PROVIDER,
        attr::SERVICE_GUID,
        attr::SERVICE_MANIFEST_VERSION,
    ];
    match provider {
        Provider::SevGuest => {
            visible.extend([attr::AUXBLOB, attr::PRIVLEVEL, attr::PRIVLEVEL_FLOOR]);
            if profile == KernelProfile::Linux6_10 && floor > 0 {
                visible.extend(svsm_attributes);
            }
        }
        Provider::TdxGuest => {}
        // A provider without visibility callbacks gets every attribute of its release.
        Provider::Other(_) => {
            if profile == KernelProfile::Linux6_10 {
                visible.extend([attr::AUXBLOB, attr::PRIVLEVEL, attr::PRIVLEVEL_FLOOR]);
                visible.extend(svsm_attributes);
            }
        }
    }
    visible
}

fn is_writable(attribute: &str) -> bool {
    matches!(
        attribute,
        attr::INBLOB
            | attr::PRIVLEVEL
            | attr::SERVICE_PROVIDER
            | attr::SERVICE_GUID
            | attr::SERVICE_MANIFEST_VERSION
    )
}

/// The kernel's `kstrtouint(buf, 0, ..)`: optional `+`, radix from the prefix (`0x` hex, `0`
/// octal, else decimal), at most one trailing newline; `EINVAL` for anything else and `ERANGE`
/// on overflow.
fn kstrtouint(buf: &[u8]) -> Result<u32, Errno> {
    let buf = buf.strip_suffix(b"\n").unwrap_or(buf);
    let buf = buf.strip_prefix(b"+").unwrap_or(buf);
    let (radix, digits) = if let Some(hex) = buf
        .strip_prefix(b"0x")
        .or_else(|| buf.strip_prefix(b"0X"))
        .filter(|d| !d.is_empty())
    {
        (16, hex)
    } else if buf.len() > 1 && buf[0] == b'0' {
        (8, &buf[1..])
    } else {
        (10, buf)
    };
    if digits.is_empty() {
        return Err(Errno::EINVAL);
    }
    let mut value: u32 = 0;
    for &byte in digits {
        let digit = char::from(byte).to_digit(radix).ok_or(Errno::EINVAL)?;
        value = value
            .checked_mul(radix)
            .and_then(|v| v.checked_add(digit))
            .ok_or(Errno::ERANGE)?;
    }
    Ok(value)
}

/// `guid_parse`: the kernel checks the 36-character `8-4-4-4-12` form and ignores what follows.
fn guid_is_valid(buf: &[u8]) -> bool {
    buf.len() >= 36
        && buf[..36].iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

impl Entry {
    /// `try_advance_write_generation`: refuses a write that would make the write generation
    /// catch up with the read generation by wrapping, which would pass off a stale report as
    /// fresh.
    fn try_advance_write_generation(&mut self) -> Result<(), Errno> {
        if self.write_generation == self.read_generation.wrapping_sub(1) {
            return Err(Errno::EBUSY);
        }
        self.write_generation = self.write_generation.wrapping_add(1);
        Ok(())
    }
}

impl State {
    fn write_attribute(
        &mut self,
        entry_name: &str,
        attribute: &str,
        data: &[u8],
    ) -> Result<(), Errno> {
        let registered = self.registered;
        let floor = self.privlevel_floor;
        let entry = self.entries.get_mut(entry_name).ok_or(Errno::ENOENT)?;
        if !entry.visible.contains(&attribute) {
            return Err(Errno::ENOENT);
        }
        if !is_writable(attribute) {
            return Err(Errno::EACCES);
        }
        match attribute {
            attr::INBLOB => {
                // configfs buffers binary attributes up to their maximum size and hands them to
                // the kernel when the file is released; the release result is discarded, so a
                // refused generation advance leaves the old inblob in place without an error.
                if data.len() > INBLOB_LEN {
                    return Err(Errno::EFBIG);
                }
                if entry.try_advance_write_generation().is_ok() {
                    entry.inblob = data.to_vec();
                }
                Ok(())
            }
            attr::PRIVLEVEL => {
                let value = kstrtouint(data)?;
                if !registered {
                    return Err(Errno::ENXIO);
                }
                if value < floor || value > PRIVLEVEL_MAX {
                    return Err(Errno::EINVAL);
                }
                entry.try_advance_write_generation()?;
                entry.privlevel = value;
                Ok(())
            }
            attr::SERVICE_PROVIDER => {
                entry.try_advance_write_generation()?;
                let text = data.strip_suffix(b"\n").unwrap_or(data);
                entry.service_provider = Some(String::from_utf8_lossy(text).into_owned());
                Ok(())
            }
            attr::SERVICE_GUID => {
                // The kernel advances the generation and resets the GUID before parsing, so a bad
                // GUID still counts as a write.
                entry.try_advance_write_generation()?;
                entry.service_guid = None;
                if !guid_is_valid(data) {
                    return Err(Errno::EINVAL);
                }
                entry.service_guid = Some(String::from_utf8_lossy(&data[..36]).into_owned());
                Ok(())
            }
            attr::SERVICE_MANIFEST_VERSION => {
                let value = kstrtouint(data)?;
                entry.try_advance_write_generation()?;
                entry.service_manifest_version = value;
                Ok(())
            }
            _ => Err(Errno::EACCES),
        }
    }

    /// `tsm_report_read`: serve the cached report if no write happened since it was made,
    /// otherwise run the provider's `report_new`.
    fn read_blob(
        &mut self,
        generator: &SharedGenerator,
        entry_name: &str,
        attribute: &str,
    ) -> Result<Vec<u8>, Errno> {
        let registered = self.registered;
        let provider = self.provider.clone();
        let entry = self.entries.get_mut(entry_name).ok_or(Errno::ENOENT)?;
        if entry.inblob.is_empty() {
            return Err(Errno::EINVAL);
        }
        let fresh = entry.blobs.is_some() && entry.read_generation == entry.write_generation;
        if !fresh {
            if !registered {
                return Err(Errno::ENXIO);
            }
            entry.blobs = None;
            self.report_new_count += 1;
            let inblob: [u8; INBLOB_LEN] = entry
                .inblob
                .as_slice()
                .try_into()
                .map_err(|_| Errno::EINVAL)?;
            if provider == Provider::SevGuest {
                if let Some(sp) = &entry.service_provider {
                    if sp != "svsm" {
                        return Err(Errno::EINVAL);
                    }
                }
            }
            if self.etimedout {
                return Err(Errno::ETIMEDOUT);
            }
            if self.busy_remaining > 0 {
                self.busy_remaining -= 1;
                return Err(Errno::EBUSY);
            }
            let (mut outblob, auxblob) =
                generator(&inblob, entry.privlevel).map_err(Errno::from_raw)?;
            if self.empty_outblob {
                outblob.clear();
            }
            let manifestblob = match &entry.service_provider {
                Some(sp) if sp == "svsm" => self.manifestblob.clone(),
                _ => Vec::new(),
            };
            entry.blobs = Some(Blobs {
                outblob,
                auxblob,
                manifestblob,
            });
            entry.read_generation = entry.write_generation;
        }
        // configfs sizes the read buffer before copying and refuses a blob over the attribute's
        // maximum, after the report was already made.
        if attribute == attr::OUTBLOB && self.efbig {
            return Err(Errno::EFBIG);
        }
        let blobs = entry.blobs.as_ref().ok_or(Errno::EINVAL)?;
        let blob = match attribute {
            attr::OUTBLOB => &blobs.outblob,
            attr::AUXBLOB => &blobs.auxblob,
            _ => &blobs.manifestblob,
        };
        if blob.len() > self.blob_max {
            return Err(Errno::EFBIG);
        }
        Ok(blob.clone())
    }
}

impl ConfigFs for FakeTsm {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if !state.mounted {
            return Err(errno(Errno::ENOENT));
        }
        match self.classify(path) {
            Node::Ancestor | Node::Root => Err(errno(Errno::EEXIST)),
            Node::Entry(name) => {
                state.mkdir_count += 1;
                if !state.registered {
                    return Err(errno(Errno::ENXIO));
                }
                if state.entries.contains_key(name) {
                    return Err(errno(Errno::EEXIST));
                }
                let visible =
                    visible_attributes(state.profile, &state.provider, state.privlevel_floor);
                state.entries.insert(
                    name.to_owned(),
                    Entry {
                        visible,
                        write_generation: 0,
                        read_generation: 0,
                        inblob: Vec::new(),
                        privlevel: 0,
                        service_provider: None,
                        service_guid: None,
                        service_manifest_version: 0,
                        blobs: None,
                    },
                );
                Ok(())
            }
            // A report entry is a config_item, not a group: it cannot hold directories.
            Node::Attribute(entry, _) if state.entries.contains_key(entry) => {
                Err(errno(Errno::EPERM))
            }
            Node::Attribute(..) | Node::Outside => Err(errno(Errno::ENOENT)),
        }
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut state = self.lock();
        if !state.mounted {
            return Err(errno(Errno::ENOENT));
        }
        let (entry_name, attribute) = match self.classify(path) {
            Node::Ancestor | Node::Root => return Err(errno(Errno::EISDIR)),
            Node::Entry(name) if state.entries.contains_key(name) => {
                return Err(errno(Errno::EISDIR));
            }
            Node::Attribute(entry, attribute) => (entry, attribute),
            Node::Entry(_) | Node::Outside => return Err(errno(Errno::ENOENT)),
        };
        let entry = state
            .entries
            .get(entry_name)
            .ok_or_else(|| errno(Errno::ENOENT))?;
        if !entry.visible.contains(&attribute) {
            return Err(errno(Errno::ENOENT));
        }
        if is_writable(attribute) {
            return Err(errno(Errno::EACCES));
        }
        let registered = state.registered;
        match attribute {
            attr::PROVIDER if !registered => Err(errno(Errno::ENXIO)),
            attr::PROVIDER => Ok(format!("{}\n", state.provider).into_bytes()),
            attr::GENERATION => Ok(format!("{}\n", entry.write_generation).into_bytes()),
            attr::PRIVLEVEL_FLOOR if !registered => Err(errno(Errno::ENXIO)),
            attr::PRIVLEVEL_FLOOR => Ok(format!("{}\n", state.privlevel_floor).into_bytes()),
            attr::OUTBLOB | attr::AUXBLOB | attr::MANIFESTBLOB => {
                let generator = Arc::clone(&self.generator);
                state
                    .read_blob(&generator, entry_name, attribute)
                    .map_err(errno)
            }
            _ => Err(errno(Errno::EACCES)),
        }
    }

    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        if !state.mounted {
            return Err(errno(Errno::ENOENT));
        }
        let (entry_name, attribute) = match self.classify(path) {
            Node::Ancestor | Node::Root => return Err(errno(Errno::EISDIR)),
            Node::Entry(name) if state.entries.contains_key(name) => {
                return Err(errno(Errno::EISDIR));
            }
            Node::Attribute(entry, attribute) if state.entries.contains_key(entry) => {
                (entry, attribute)
            }
            _ => return Err(errno(Errno::ENOENT)),
        };
        let result = state.write_attribute(entry_name, attribute, data);
        state.writes.push(FakeWrite {
            entry: entry_name.to_owned(),
            attribute: attribute.to_owned(),
            data: data.to_vec(),
            racer: false,
            errno: result.err().map(|e| e as i32),
        });
        if result.is_ok() && attribute == attr::INBLOB && state.racing_writer {
            state.racing_writer = false;
            let racer = state.write_attribute(entry_name, attr::INBLOB, &RACER_INBLOB);
            state.writes.push(FakeWrite {
                entry: entry_name.to_owned(),
                attribute: attr::INBLOB.to_owned(),
                data: RACER_INBLOB.to_vec(),
                racer: true,
                errno: racer.err().map(|e| e as i32),
            });
        }
        result.map_err(errno)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if !state.mounted {
            return Err(errno(Errno::ENOENT));
        }
        match self.classify(path) {
            // The report group is a default group of the subsystem: userspace cannot remove it.
            Node::Ancestor | Node::Root => Err(errno(Errno::EPERM)),
            Node::Entry(name) => match state.entries.remove(name) {
                Some(_) => Ok(()),
                None => Err(errno(Errno::ENOENT)),
            },
            Node::Attribute(entry, attribute) => {
                let is_file = state
                    .entries
                    .get(entry)
                    .is_some_and(|e| e.visible.contains(&attribute));
                Err(errno(if is_file {
                    Errno::ENOTDIR
                } else {
                    Errno::ENOENT
                }))
            }
            Node::Outside => Err(errno(Errno::ENOENT)),
        }
    }

    fn exists(&self, path: &Path) -> bool {
        let state = self.lock();
        if !state.mounted {
            return false;
        }
        match self.classify(path) {
            Node::Ancestor | Node::Root => true,
            Node::Entry(name) => state.entries.contains_key(name),
            Node::Attribute(entry, attribute) => state
                .entries
                .get(entry)
                .is_some_and(|e| e.visible.contains(&attribute)),
            Node::Outside => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{FakeTsm, KernelProfile, ReportGenerator, guid_is_valid, kstrtouint};
    use std::path::Path;
    use thimble_collect::tsm::{ConfigFs, Errno, Provider};

    fn echo() -> ReportGenerator {
        Box::new(|inblob, privlevel| {
            let mut out = inblob.to_vec();
            out.push(u8::try_from(privlevel).unwrap());
            Ok((out, b"certs".to_vec()))
        })
    }

    fn errno_of(r: std::io::Result<impl std::fmt::Debug>) -> Errno {
        Errno::from_raw(r.unwrap_err().raw_os_error().unwrap())
    }

    #[test]
    fn kstrtouint_follows_the_kernel() {
        assert_eq!(kstrtouint(b"2"), Ok(2));
        assert_eq!(kstrtouint(b"2\n"), Ok(2));
        assert_eq!(kstrtouint(b"+3\n"), Ok(3));
        assert_eq!(kstrtouint(b"0x3"), Ok(3));
        assert_eq!(kstrtouint(b"010"), Ok(8));
        assert_eq!(kstrtouint(b"0"), Ok(0));
        assert_eq!(kstrtouint(b""), Err(Errno::EINVAL));
        assert_eq!(kstrtouint(b"2\n\n"), Err(Errno::EINVAL));
        assert_eq!(kstrtouint(b"-1"), Err(Errno::EINVAL));
        assert_eq!(kstrtouint(b"09"), Err(Errno::EINVAL));
        assert_eq!(kstrtouint(b"4294967296"), Err(Errno::ERANGE));
    }

    #[test]
    fn guid_shape() {
        assert!(guid_is_valid(b"00000000-0000-0000-0000-000000000000\n"));
        assert!(!guid_is_valid(b"00000000-0000-0000-0000-00000000000"));
        assert!(!guid_is_valid(b"00000000x0000-0000-0000-000000000000"));
    }

    #[test]
    fn outblob_is_cached_until_a_write() {
        let fake = FakeTsm::new(KernelProfile::Linux6_7, Provider::SevGuest, echo());
        let dir = fake.root().join("e");
        fake.create_dir(&dir).unwrap();
        assert_eq!(errno_of(fake.read(&dir.join("outblob"))), Errno::EINVAL);
        fake.write(&dir.join("inblob"), &[1; 64]).unwrap();
        let first = fake.read(&dir.join("outblob")).unwrap();
        assert_eq!(&first[..64], &[1; 64]);
        assert_eq!(fake.read(&dir.join("auxblob")).unwrap(), b"certs");
        assert_eq!(fake.report_new_count(), 1);
        fake.read(&dir.join("outblob")).unwrap();
        assert_eq!(fake.report_new_count(), 1);
        fake.write(&dir.join("privlevel"), b"2\n").unwrap();
        let second = fake.read(&dir.join("outblob")).unwrap();
        assert_eq!(second[64], 2);
        assert_eq!(fake.report_new_count(), 2);
        assert_eq!(fake.read(&dir.join("generation")).unwrap(), b"2\n");
    }

    #[test]
    fn inblob_length_rules() {
        let fake = FakeTsm::new(KernelProfile::Linux6_7, Provider::TdxGuest, echo());
        let dir = fake.root().join("e");
        fake.create_dir(&dir).unwrap();
        assert_eq!(
            errno_of(fake.write(&dir.join("inblob"), &[0; 65])),
            Errno::EFBIG
        );
        fake.write(&dir.join("inblob"), &[0; 32]).unwrap();
        assert_eq!(errno_of(fake.read(&dir.join("outblob"))), Errno::EINVAL);
    }

    #[test]
    fn directory_semantics() {
        let fake = FakeTsm::new(KernelProfile::Linux6_7, Provider::TdxGuest, echo());
        let dir = fake.root().join("e");
        fake.create_dir(&dir).unwrap();
        assert_eq!(errno_of(fake.create_dir(&dir)), Errno::EEXIST);
        assert_eq!(
            errno_of(fake.create_dir(Path::new("/tmp/x"))),
            Errno::ENOENT
        );
        assert_eq!(errno_of(fake.create_dir(&dir.join("sub"))), Errno::EPERM);
        assert!(!fake.exists(&dir.join("auxblob")));
        assert!(!fake.exists(&dir.join("privlevel")));
        assert_eq!(
            errno_of(fake.write(&dir.join("privlevel"), b"0")),
            Errno::ENOENT
        );
        assert_eq!(
            errno_of(fake.write(&dir.join("outblob"), b"x")),
            Errno::EACCES
        );
        assert_eq!(errno_of(fake.read(&dir.join("inblob"))), Errno::EACCES);
        assert_eq!(fake.read(&dir.join("provider")).unwrap(), b"tdx_guest\n");
        fake.remove_dir(&dir).unwrap();
        assert_eq!(errno_of(fake.remove_dir(&dir)), Errno::ENOENT);
        assert_eq!(errno_of(fake.remove_dir(fake.root())), Errno::EPERM);
        assert!(fake.entries().is_empty());
    }

    #[test]
    fn svsm_attributes_only_on_6_10_above_vmpl0() {
        let plain = FakeTsm::new(KernelProfile::Linux6_10, Provider::SevGuest, echo());
        let dir = plain.root().join("e");
        plain.create_dir(&dir).unwrap();
        assert!(!plain.exists(&dir.join("manifestblob")));

        let svsm = FakeTsm::new(KernelProfile::Linux6_10, Provider::SevGuest, echo())
            .privlevel_floor(2)
            .manifestblob(b"manifest".to_vec());
        let dir = svsm.root().join("e");
        svsm.create_dir(&dir).unwrap();
        assert!(svsm.exists(&dir.join("service_guid")));
        assert_eq!(
            errno_of(svsm.write(&dir.join("privlevel"), b"1")),
            Errno::EINVAL
        );
        svsm.write(&dir.join("service_provider"), b"svsm\n")
            .unwrap();
        svsm.write(&dir.join("inblob"), &[0; 64]).unwrap();
        assert_eq!(svsm.read(&dir.join("manifestblob")).unwrap(), b"manifest");
        svsm.write(&dir.join("service_provider"), b"other").unwrap();
        assert_eq!(errno_of(svsm.read(&dir.join("outblob"))), Errno::EINVAL);

        let old =
            FakeTsm::new(KernelProfile::Linux6_7, Provider::SevGuest, echo()).privlevel_floor(2);
        let dir = old.root().join("e");
        old.create_dir(&dir).unwrap();
        assert!(!old.exists(&dir.join("manifestblob")));
    }
}
