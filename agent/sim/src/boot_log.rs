// SPDX-License-Identifier: Apache-2.0
//! The measured boot of the simulated guests: one plausible Linux boot (UEFI firmware with
//! Secure Boot on, shim, GRUB, a kernel and an initrd), written as the event logs the firmware
//! of each simulated platform would leave, and the register values those logs replay to, which
//! the simulated TD's RTMRs ([`crate::tdx_signer::TdQuoteTemplate::default`]) and the simulated
//! vTPM's PCRs ([`crate::azure_sim::SimTpmQuote::default_pcrs`]) hold, so that a simulated
//! collection carries a log that replays to its quote.
//!
//! - A TD ([`td_boot`]): the CCEL log TDVF writes, SHA-384 only, each event in the CC
//!   measurement register EDK2's `MapPcrToMrIndex` gives the PCR a TPM firmware would have
//!   used (PCRs 1 and 7 to RTMR0, 2 to 6 to RTMR1, 8 to 15 to RTMR2; nothing logs into MRTD),
//!   its Spec ID header in register 1, in a 64 KiB log area filled with 0xFF, and the ACPI CCEL
//!   table that locates it.
//! - A vTPM ([`vtpm_boot`]): the TCG2 log of a TPM guest, SHA-256 only, with a StartupLocality
//!   of 0, over PCRs 0 to 9 and 14, exactly as long as its events (securityfs pads nothing).
//!
//! The events are those docs/formats.md §8.4 and §8.5 describe, in the forms thimble's claims
//! decode: the Secure Boot variables (`SecureBoot` = 1, `PK`, `KEK`, `db`, `dbx`), separators,
//! the boot applications shim and GRUB, shim's MOK lists and SBAT level, GRUB's commands, the
//! kernel command line ([`SIM_KERNEL_CMDLINE`]) and the kernel and initrd files. Contents that
//! a real boot would hash (images, files, certificate lists) are short labels: the digests are
//! real hashes of fake contents. The logs are built with the evidence crate's encoder
//! (`thimble_evidence::eventlog::build`) and replayed with thimble-verify's replay, the code a
//! verification runs, so they cannot drift apart. Both are built once and kept.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use thimble_evidence::eventlog::build::{BuildError, LogBuilder, file_path_device_path};
use thimble_evidence::eventlog::ccel::{CC_MR_INDEX_MRTD, mr_index_of_pcr};
use thimble_evidence::eventlog::uefi::{Guid, ImageLoadEvent, UefiVariableData};
use thimble_evidence::eventlog::{CcType, CcelTable, EventLog, EventType, HashAlg};
use thimble_verify::eventlog::{Register, Replay, replay_tdx, replay_tpm};

/// The kernel GRUB loads, as its `linux` command names it.
pub const SIM_KERNEL_PATH: &str = "/boot/vmlinuz-6.8.0-thimble";
/// The initrd GRUB loads, as its `initrd` command names it.
pub const SIM_INITRD_PATH: &str = "/boot/initrd.img-6.8.0-thimble";
/// The kernel command line as GRUB measures it: the kernel's path, then its arguments.
pub const SIM_KERNEL_CMDLINE: &str =
    "/boot/vmlinuz-6.8.0-thimble root=/dev/vda1 ro console=ttyS0 quiet";
/// The simulated TD's log area length (`LAML` of its CCEL table): 64 KiB.
pub const SIM_CCEL_LAML: u64 = 0x1_0000;
/// Where the simulated TD's log area is said to be (`LASA`); nothing reads it.
pub const SIM_CCEL_LASA: u64 = 0x7fbe_0000;

/// The GUID of shim's variables (`SHIM_LOCK_GUID` 605dab50-e046-4300-abb6-3dd810dd8b23).
const SHIM_LOCK: Guid = Guid([
    0x50, 0xab, 0x5d, 0x60, 0x46, 0xe0, 0x00, 0x43, 0xab, 0xb6, 0x3d, 0xd8, 0x10, 0xdd, 0x8b, 0x23,
]);

/// A TD's simulated boot: the ACPI CCEL table, the log area and the RTMRs it replays to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdBootLog {
    /// The ACPI CCEL table (`/sys/firmware/acpi/tables/CCEL`), TDX, naming the log area.
    pub ccel_table: Vec<u8>,
    /// The log area (`/sys/firmware/acpi/tables/data/CCEL`): [`SIM_CCEL_LAML`] bytes, 0xFF
    /// after the last event.
    pub log_area: Vec<u8>,
    /// RTMR0 to RTMR3 as the log replays them (zero for a register no event extends).
    pub rtmr: [[u8; 48]; 4],
}

/// A vTPM guest's simulated boot: the TCG2 log and the SHA-256 PCRs it replays to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmBootLog {
    /// The log (`/sys/kernel/security/tpm0/binary_bios_measurements`).
    pub log: Vec<u8>,
    /// The SHA-256 value of every PCR an event extends, by PCR number.
    pub pcrs: BTreeMap<u32, [u8; 32]>,
}

/// The simulated TD's boot (see the module documentation), built on first use.
pub fn td_boot() -> &'static TdBootLog {
    static BOOT: OnceLock<TdBootLog> = OnceLock::new();
    BOOT.get_or_init(|| build_td().expect("the simulated TD boot builds and replays"))
}

/// The simulated vTPM guest's boot (see the module documentation), built on first use.
pub fn vtpm_boot() -> &'static TpmBootLog {
    static BOOT: OnceLock<TpmBootLog> = OnceLock::new();
    BOOT.get_or_init(|| build_tpm().expect("the simulated vTPM boot builds and replays"))
}

/// Why a simulated boot could not be made: the fixed events did not encode, or the log did not
/// parse or replay (a bug here, never input).
#[derive(Debug, thiserror::Error)]
enum BootError {
    #[error("cannot build the log")]
    Build(#[from] BuildError),
    #[error("the built log does not parse")]
    Parse(#[from] thimble_evidence::eventlog::EventLogError),
    #[error("the built log does not replay")]
    Replay(#[from] thimble_verify::eventlog::ReplayError),
}

fn build_td() -> Result<TdBootLog, BootError> {
    let builder = LogBuilder::new(&[HashAlg::SHA384])?.with_header_register(1);
    let mut m = Measurer::new(builder, Platform::Td);
    boot(&mut m)?;
    let area_len = usize::try_from(SIM_CCEL_LAML).unwrap_or(usize::MAX);
    let log_area = m.builder.finish_padded(area_len, 0xFF)?;
    let replay = replay_tdx(&EventLog::parse(&log_area)?)?;
    let mut rtmr = [[0u8; 48]; 4];
    for (i, value) in (0u8..).zip(rtmr.iter_mut()) {
        if let Some(r) = replay.registers.get(&Register::Rtmr(i)) {
            value.copy_from_slice(&r.value);
        }
    }
    Ok(TdBootLog {
        ccel_table: CcelTable::build(CcType::TDX, SIM_CCEL_LAML, SIM_CCEL_LASA)
            .as_bytes()
            .to_vec(),
        log_area,
        rtmr,
    })
}

fn build_tpm() -> Result<TpmBootLog, BootError> {
    let mut builder = LogBuilder::new(&[HashAlg::SHA256])?;
    builder.startup_locality(0)?;
    let mut m = Measurer::new(builder, Platform::Tpm);
    boot(&mut m)?;
    let log = m.builder.finish();
    let replay: Replay = replay_tpm(&EventLog::parse(&log)?, HashAlg::SHA256)?;
    let pcrs = replay
        .registers
        .iter()
        .filter_map(|(register, r)| match register {
            Register::Pcr(i) => Some((*i, <[u8; 32]>::try_from(r.value.as_slice()).ok()?)),
            _ => None,
        })
        .collect();
    Ok(TpmBootLog { log, pcrs })
}

/// Whose firmware writes the log.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Platform {
    /// TDVF: CC measurement registers.
    Td,
    /// A TPM's UEFI firmware: PCRs.
    Tpm,
}

/// The builder, with the register mapping of its platform: every event is given with the PCR
/// a TPM firmware uses, as EDK2 does before it maps the PCR for a TD.
struct Measurer {
    builder: LogBuilder,
    platform: Platform,
    /// The registers that have their separator (TDVF logs one per CC register).
    separated: BTreeSet<u32>,
}

impl Measurer {
    fn new(builder: LogBuilder, platform: Platform) -> Measurer {
        Measurer {
            builder,
            platform,
            separated: BTreeSet::new(),
        }
    }

    /// The register `pcr` lands in; `None` for MRTD, which no event of a TD's log extends.
    fn register(&self, pcr: u32) -> Option<u32> {
        match self.platform {
            Platform::Tpm => Some(pcr),
            Platform::Td => mr_index_of_pcr(pcr).filter(|i| *i != CC_MR_INDEX_MRTD),
        }
    }

    /// An event whose digest is the hash of its data.
    fn event(&mut self, pcr: u32, ty: EventType, data: &[u8]) -> Result<(), BuildError> {
        self.measuring(pcr, ty, data, data)
    }

    /// An event whose digest is the hash of `measured`.
    fn measuring(
        &mut self,
        pcr: u32,
        ty: EventType,
        measured: &[u8],
        data: &[u8],
    ) -> Result<(), BuildError> {
        if let Some(register) = self.register(pcr) {
            self.builder.event_measuring(register, ty, measured, data)?;
        }
        Ok(())
    }

    /// The separator of `pcr`: four zero bytes, once per register.
    fn separator(&mut self, pcr: u32) -> Result<(), BuildError> {
        match self.register(pcr) {
            Some(register) if self.separated.insert(register) => self
                .builder
                .event(register, EventType::EV_SEPARATOR, &[0; 4])
                .map(|_| ()),
            _ => Ok(()),
        }
    }

    /// A UEFI variable measured with its `UEFI_VARIABLE_DATA` (its digest covers all of it).
    fn variable(
        &mut self,
        pcr: u32,
        ty: EventType,
        guid: Guid,
        name: &str,
        value: &[u8],
    ) -> Result<(), BuildError> {
        let data = UefiVariableData {
            variable_name: guid,
            unicode_name: name.to_string(),
            variable_data: value.to_vec(),
        }
        .to_bytes();
        self.event(pcr, ty, &data)
    }

    /// A boot application loaded from `path` on the boot volume: its digest stands for the
    /// image's Authenticode hash (the hash of a label, as there is no image).
    fn application(&mut self, path: &str, location: u64, length: u64) -> Result<(), BuildError> {
        let image = ImageLoadEvent {
            image_location_in_memory: location,
            image_length_in_memory: length,
            image_link_time_address: 0,
            // A few dozen UTF-16 units: far below a node's 16-bit length.
            device_path: file_path_device_path(path).unwrap_or_default(),
            trailing_len: 0,
        };
        let authenticode = format!("thimble simulated image {path}");
        self.measuring(
            4,
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
            authenticode.as_bytes(),
            &image.to_bytes(),
        )
    }

    /// A GRUB string (PCR 8): `prefix` and `text` with a NUL as the data, `text` measured.
    fn grub_string(&mut self, prefix: &str, text: &str) -> Result<(), BuildError> {
        let data = format!("{prefix}{text}\0");
        self.measuring(8, EventType::EV_IPL, text.as_bytes(), data.as_bytes())
    }

    /// A file GRUB read (PCR 9): its path with a NUL as the data, its contents measured.
    fn grub_file(&mut self, path: &str, contents: &[u8]) -> Result<(), BuildError> {
        let data = format!("{path}\0");
        self.measuring(9, EventType::EV_IPL, contents, data.as_bytes())
    }
}

/// The boot, from the firmware to the kernel's hand-over, in the order firmware, shim and GRUB
/// measure it.
fn boot(m: &mut Measurer) -> Result<(), BuildError> {
    // Firmware: what it measures of itself and its configuration. A TPM's firmware measures
    // its version and code into PCR 0; TDVF measures its configuration into RTMR0 (the TDX
    // module measured its code into MRTD).
    match m.platform {
        Platform::Tpm => {
            let version: Vec<u8> = "thimble simulated UEFI firmware v1\0"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect();
            m.event(0, EventType::EV_S_CRTM_VERSION, &version)?;
            m.measuring(
                0,
                EventType::EV_POST_CODE,
                b"thimble simulated firmware volume",
                b"UEFI firmware volume",
            )?;
        }
        Platform::Td => {
            m.measuring(
                1,
                EventType::EV_PLATFORM_CONFIG_FLAGS,
                b"thimble simulated ACPI tables",
                b"ACPI DATA",
            )?;
        }
    }

    // Secure Boot: its state and its databases (PCR 7), then the end of pre-OS configuration.
    let config = EventType::EV_EFI_VARIABLE_DRIVER_CONFIG;
    let global = Guid::EFI_GLOBAL_VARIABLE;
    let security = Guid::EFI_IMAGE_SECURITY_DATABASE;
    m.variable(7, config, global, "SecureBoot", &[1])?;
    m.variable(7, config, global, "PK", b"thimble simulated PK")?;
    m.variable(7, config, global, "KEK", b"thimble simulated KEK")?;
    m.variable(7, config, security, "db", b"thimble simulated db")?;
    m.variable(7, config, security, "dbx", b"thimble simulated dbx")?;
    m.separator(7)?;

    // The boot manager: the boot order (PCR 1, digest of the variable's contents only), then
    // the separators of PCRs 0 to 6 as it calls the first boot option.
    let boot_order = UefiVariableData {
        variable_name: global,
        unicode_name: "BootOrder".into(),
        variable_data: vec![0x01, 0x00],
    };
    m.measuring(
        1,
        EventType::EV_EFI_VARIABLE_BOOT,
        &boot_order.variable_data,
        &boot_order.to_bytes(),
    )?;
    m.event(
        4,
        EventType::EV_EFI_ACTION,
        b"Calling EFI Application from Boot Option",
    )?;
    for pcr in 0..=6 {
        m.separator(pcr)?;
    }

    // shim, then what it measures before it loads GRUB: the MOK lists (PCR 14, digest of the
    // variable's contents) and the SBAT level it enforces (PCR 7).
    m.application("\\EFI\\BOOT\\BOOTX64.EFI", 0x7e8d_8000, 0x000e_e000)?;
    m.measuring(
        14,
        EventType::EV_IPL,
        b"thimble simulated MokList",
        b"MokList\0",
    )?;
    m.measuring(
        14,
        EventType::EV_IPL,
        b"thimble simulated MokListX",
        b"MokListX\0",
    )?;
    m.variable(
        7,
        EventType::EV_EFI_VARIABLE_AUTHORITY,
        SHIM_LOCK,
        "SbatLevel",
        b"sbat,1,2023012900\nshim,2\ngrub,3\n",
    )?;
    m.measuring(14, EventType::EV_IPL, &[0x01], b"MokListTrusted\0")?;
    m.application("\\EFI\\BOOT\\grubx64.efi", 0x7e6a_1000, 0x0025_c000)?;

    // GRUB: its configuration, the commands it runs (PCR 8), the files it reads (PCR 9), the
    // kernel command line.
    m.grub_file(
        "/boot/grub/grub.cfg",
        b"set timeout=0\nlinux /boot/vmlinuz-6.8.0-thimble ...\n",
    )?;
    m.grub_string("grub_cmd: ", "set timeout=0")?;
    m.grub_string("grub_cmd: ", &format!("linux {SIM_KERNEL_CMDLINE}"))?;
    m.grub_file(SIM_KERNEL_PATH, b"thimble simulated kernel")?;
    m.grub_string("kernel_cmdline: ", SIM_KERNEL_CMDLINE)?;
    m.grub_string("grub_cmd: ", &format!("initrd {SIM_INITRD_PATH}"))?;
    m.grub_file(SIM_INITRD_PATH, b"thimble simulated initrd")?;

    // The kernel's EFI stub leaves boot services.
    m.event(
        5,
        EventType::EV_EFI_ACTION,
        b"Exit Boot Services Invocation",
    )?;
    m.event(
        5,
        EventType::EV_EFI_ACTION,
        b"Exit Boot Services Returned with Success",
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use thimble_evidence::eventlog::EventLogClaims;
    use thimble_evidence::eventlog::ccel::CcelTable;
    use thimble_verify::eventlog::{RegisterStatus, check_tdx_rtmrs, check_tpm_pcrs};

    use super::*;

    fn claims_say_the_boot(claims: &EventLogClaims) {
        assert_eq!(claims.secure_boot, Some(true));
        let names: Vec<&str> = claims
            .secure_boot_variables
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(names, ["SecureBoot", "PK", "KEK", "db", "dbx"]);
        let apps: Vec<Option<&str>> = claims
            .boot_applications
            .iter()
            .map(|a| a.file_path.as_deref())
            .collect();
        assert_eq!(
            apps,
            [
                Some("\\EFI\\BOOT\\BOOTX64.EFI"),
                Some("\\EFI\\BOOT\\grubx64.efi")
            ]
        );
        assert_eq!(claims.kernel_cmdlines.len(), 1);
        assert_eq!(claims.kernel_cmdlines[0].text, SIM_KERNEL_CMDLINE);
        assert_eq!(claims.kernel_cmdlines[0].data_verified, Some(true));
        assert_eq!(claims.kernels.len(), 1);
        assert_eq!(claims.kernels[0].path.as_deref(), Some(SIM_KERNEL_PATH));
        assert_eq!(claims.initrds.len(), 1);
        assert_eq!(claims.initrds[0].path.as_deref(), Some(SIM_INITRD_PATH));
        assert_eq!(claims.authorities.len(), 1);
        assert!(claims.undecodable.is_empty(), "{:?}", claims.undecodable);
        assert!(
            claims
                .separators
                .iter()
                .all(|s| s.data_verified == Some(true))
        );
    }

    #[test]
    fn the_td_log_replays_to_its_rtmrs_and_says_secure_boot_and_grub() {
        let td = td_boot();
        let table = CcelTable::parse(&td.ccel_table).unwrap();
        assert_eq!(table.cc_type, CcType::TDX);
        assert_eq!(table.laml, SIM_CCEL_LAML);
        assert_eq!(td.log_area.len() as u64, SIM_CCEL_LAML);
        let log = EventLog::parse(&td.log_area).unwrap();
        assert_eq!(log.header_register, 1);
        assert_eq!(log.spec_id.algorithms.len(), 1);
        assert_eq!(log.padding.map(|p| p.byte), Some(0xFF));
        // RTMR0 (firmware configuration, Secure Boot), RTMR1 (boot manager, applications),
        // RTMR2 (shim's lists, GRUB); RTMR3 is left to the running system.
        let report = check_tdx_rtmrs(&log, &td.rtmr).unwrap();
        for i in 0..3 {
            assert!(
                matches!(
                    report.status(Register::Rtmr(i)),
                    Some(RegisterStatus::Matches { .. })
                ),
                "RTMR{i}: {report:?}"
            );
        }
        assert_eq!(td.rtmr[3], [0; 48]);
        assert!(log.events.iter().all(|e| (1..=3).contains(&e.register)));
        let claims = EventLogClaims::from_log(&log);
        claims_say_the_boot(&claims);
        assert_eq!(claims.kernel_cmdlines[0].register, 3);
        // Two separators: RTMR0's (PCRs 1 and 7) and RTMR1's (PCRs 2 to 6).
        assert_eq!(claims.separators.len(), 2);
    }

    #[test]
    fn the_vtpm_log_replays_to_its_pcrs_and_says_secure_boot_and_grub() {
        let tpm = vtpm_boot();
        let log = EventLog::parse(&tpm.log).unwrap();
        assert_eq!(log.padding, None);
        assert_eq!(log.startup_locality(), Some(0));
        assert_eq!(
            tpm.pcrs.keys().copied().collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]
        );
        let pcrs = tpm.pcrs.iter().map(|(i, v)| (*i, v.to_vec())).collect();
        let report = check_tpm_pcrs(&log, HashAlg::SHA256, &pcrs).unwrap();
        assert!(
            report
                .checks
                .iter()
                .all(|c| matches!(c.status, RegisterStatus::Matches { .. })),
            "{report:?}"
        );
        let claims = EventLogClaims::from_log(&log);
        claims_say_the_boot(&claims);
        assert_eq!(claims.kernel_cmdlines[0].register, 8);
        assert_eq!(claims.kernels[0].register, 9);
        assert_eq!(claims.separators.len(), 8);
    }
}
