// SPDX-License-Identifier: Apache-2.0
//! The command line as typed (clap). Validation into typed plans happens in the commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use thimble_evidence::interop::Format;

#[derive(Debug, Parser)]
#[command(
    name = "thimble",
    version,
    about = "Collects, bundles and verifies confidential-VM attestation evidence (AMD SEV-SNP, Intel TDX, Azure CVMs)",
    long_about = None,
    after_help = "Exit codes: 0 ok, 1 other, 2 usage, 3 no TEE source, 4 collection failed, \
                  5 endorsements failed, 6 malformed input, 7 authenticity failed, 8 policy not met, \
                  9 verifier unavailable, 10 verifier refused."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print only errors on standard error: no progress, notes or warnings.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more on standard error: progress even when it is not a terminal, the collection's
    /// endorsement and collection log lines, the verifier exchange's steps.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

/// The subcommands. Each is defined by its `Args` struct; the table in [`SUBCOMMANDS`] names it and
/// gives its one-line summary, and clap builds only the invoked one's arguments (see there).
#[derive(Debug)]
pub enum Command {
    /// Collect a report and its endorsements into an evidence bundle.
    Collect(CollectCommandArgs),
    /// List the evidence sources on this machine and whether each is usable.
    Detect(DetectArgs),
    /// Verify a bundle offline against the pinned vendor roots.
    Verify(Box<VerifyArgs>),
    /// Build a bundle from evidence captured elsewhere.
    Import(ImportArgs),
    /// Write a bundle's evidence in another tool's or verifier's form.
    Export(ExportArgs),
    /// Print a readable summary of a bundle.
    Show(ShowArgs),
    /// Verify VCEK/VLEK certificate chains on their own (no report).
    VerifyChain(VerifyChainArgs),
    /// Collect, write the bundle, then replace thimble with a command (container entrypoint).
    Exec(ExecArgs),
    /// Attest to a remote verifier (MAA, Trustee KBS, Intel Trust Authority, Veraison): its
    /// nonce, evidence bound by its rule, the request, and the token (and a KBS resource).
    Attest(Box<AttestArgs>),
    /// Print the effective configuration (file, environment) and where each value came from.
    Config(ConfigArgs),
}

/// Builds a subcommand's arguments on to its `clap::Command`.
type Augment = fn(clap::Command) -> clap::Command;

/// Every subcommand: name, summary (its `--help` line in `thimble --help`) and its arguments.
/// Clap builds a subcommand's arguments only when that subcommand is parsed, shown or documented
/// (`Command::defer`): building all ten on every run was about a tenth of a whole-process
/// `verify`'s instructions (docs/performance.md). Hand-written rather than derived because the
/// derive has no way to defer; [`Command::from_arg_matches`] is the other half of this table.
const SUBCOMMANDS: [(&str, &str, Augment); 10] = [
    (
        "collect",
        "Collect a report and its endorsements into an evidence bundle",
        CollectCommandArgs::augment_args,
    ),
    (
        "detect",
        "List the evidence sources on this machine and whether each is usable",
        DetectArgs::augment_args,
    ),
    (
        "verify",
        "Verify a bundle offline against the pinned vendor roots",
        VerifyArgs::augment_args,
    ),
    (
        "import",
        "Build a bundle from evidence captured elsewhere",
        ImportArgs::augment_args,
    ),
    (
        "export",
        "Write a bundle's evidence in another tool's or verifier's form",
        ExportArgs::augment_args,
    ),
    (
        "show",
        "Print a readable summary of a bundle",
        ShowArgs::augment_args,
    ),
    (
        "verify-chain",
        "Verify VCEK/VLEK certificate chains on their own (no report)",
        VerifyChainArgs::augment_args,
    ),
    (
        "exec",
        "Collect, write the bundle, then replace thimble with a command (container entrypoint)",
        ExecArgs::augment_args,
    ),
    (
        "attest",
        "Attest to a remote verifier (MAA, Trustee KBS, Intel Trust Authority, Veraison): its \
         nonce, evidence bound by its rule, the request, and the token (and a KBS resource)",
        AttestArgs::augment_args,
    ),
    (
        "config",
        "Print the effective configuration (file, environment) and where each value came from",
        ConfigArgs::augment_args,
    ),
];

/// The deferred half of a subcommand: its arguments, then its summary again, since an `Args`
/// struct's own doc comment (`PolicyArgs`', flattened into `verify`) would otherwise replace it,
/// as the derive's order (arguments first, the variant's summary last) never let it.
fn build_subcommand(cmd: clap::Command) -> clap::Command {
    match SUBCOMMANDS
        .iter()
        .find(|(name, _, _)| *name == cmd.get_name())
    {
        Some((_, about, augment)) => augment(cmd).about(*about).long_about(None),
        None => cmd,
    }
}

impl Subcommand for Command {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        // The summary is set here too: `thimble --help` lists it without building the subcommand.
        SUBCOMMANDS.iter().fold(cmd, |cmd, (name, about, _)| {
            cmd.subcommand(
                clap::Command::new(*name)
                    .about(*about)
                    .defer(build_subcommand),
            )
        })
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        SUBCOMMANDS.iter().any(|(n, _, _)| *n == name)
    }
}

impl clap::FromArgMatches for Command {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Self::from_arg_matches_mut(&mut m.clone())
    }

    fn from_arg_matches_mut(m: &mut clap::ArgMatches) -> Result<Self, clap::Error> {
        use clap::error::ErrorKind;
        let Some((name, mut sub)) = m.remove_subcommand() else {
            return Err(clap::Error::raw(
                ErrorKind::MissingSubcommand,
                "a subcommand is required",
            ));
        };
        let sub = &mut sub;
        Ok(match name.as_str() {
            "collect" => Command::Collect(CollectCommandArgs::from_arg_matches_mut(sub)?),
            "detect" => Command::Detect(DetectArgs::from_arg_matches_mut(sub)?),
            "verify" => Command::Verify(Box::new(VerifyArgs::from_arg_matches_mut(sub)?)),
            "import" => Command::Import(ImportArgs::from_arg_matches_mut(sub)?),
            "export" => Command::Export(ExportArgs::from_arg_matches_mut(sub)?),
            "show" => Command::Show(ShowArgs::from_arg_matches_mut(sub)?),
            "verify-chain" => Command::VerifyChain(VerifyChainArgs::from_arg_matches_mut(sub)?),
            "exec" => Command::Exec(ExecArgs::from_arg_matches_mut(sub)?),
            "attest" => Command::Attest(Box::new(AttestArgs::from_arg_matches_mut(sub)?)),
            "config" => Command::Config(ConfigArgs::from_arg_matches_mut(sub)?),
            other => {
                return Err(clap::Error::raw(
                    ErrorKind::InvalidSubcommand,
                    format!("the subcommand '{other}' is not known"),
                ));
            }
        })
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

/// A flattened group of arguments (`#[command(flatten)] field: Group<SomeArgs>`) whose builder
/// runs in a stack frame of its own. The derived `augment_args` builds every argument of a struct
/// in one expression, so each builder temporary (an `Arg` is some 600 bytes) keeps a stack slot
/// of its own until the end: `verify`'s 63 policy flags in one struct made a 74 KiB frame, and
/// stack probes touch every page of a frame on entry. Cut into groups that are not inlined into
/// each other, the frame is the largest group's (docs/performance.md). Field access reaches the
/// group's fields through `Deref`.
#[derive(Debug, Default, Clone)]
pub struct Group<T>(pub T);

impl<T> std::ops::Deref for Group<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Group<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Args> Args for Group<T> {
    #[inline(never)]
    fn augment_args(cmd: clap::Command) -> clap::Command {
        T::augment_args(cmd)
    }

    #[inline(never)]
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        T::augment_args_for_update(cmd)
    }

    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}

impl<T: clap::FromArgMatches> clap::FromArgMatches for Group<T> {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(Group)
    }

    fn from_arg_matches_mut(m: &mut clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(m).map(Group)
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }

    fn update_from_arg_matches_mut(&mut self, m: &mut clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(m)
    }
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifierArg {
    /// Microsoft Azure Attestation (SevSnpVm / TdxVm).
    Maa,
    /// Trustee's Key Broker Service (protocol 0.4.0).
    Kbs,
    /// Intel Trust Authority (appraisal v2; TDX and Azure TDX).
    Ita,
    /// A Veraison verifier's challenge-response API (SEV-SNP tsm-report).
    Veraison,
}

/// MAA's protocol on Azure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum MaaFlowArg {
    /// The SevSnpVm / TdxVm bodies with the HCL runtime data.
    #[default]
    Vm,
    /// The Azure guest protocol (AzureGuest): a quote of PCRs 0-7 and an ephemeral vTPM key
    /// the token comes back encrypted to.
    AzureGuest,
}

#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The verifier to attest to [config: attest.verifier, THIMBLE_VERIFIER].
    #[arg(long, value_enum)]
    pub verifier: Option<VerifierArg>,
    /// The verifier's base URL (MAA: https://NAME.REGION.attest.azure.net; KBS: its root;
    /// ITA: https://api.trustauthority.intel.com; Veraison: its verification API root)
    /// [config: attest.url, THIMBLE_VERIFIER_URL].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Where to write the token (Veraison: its attestation result, an EAR) [default: standard
    /// output].
    #[arg(long, value_name = "FILE")]
    pub token_out: Option<PathBuf>,
    /// KBS: fetch this resource (REPOSITORY/TYPE/TAG) after attesting, decrypted with the key
    /// made for the session.
    #[arg(long, value_name = "PATH")]
    pub resource: Option<String>,
    /// KBS: where to write the resource (`-` for standard output); required with --resource.
    #[arg(long, value_name = "FILE", requires = "resource")]
    pub resource_out: Option<PathBuf>,
    /// MAA, ITA: the runtime data to bind (MAA: JSON, default {"nonce": "<hex>"}; ITA: any
    /// bytes; Azure TDX with ITA: the user data).
    #[arg(long, value_name = "FILE")]
    pub runtime_data: Option<PathBuf>,
    /// MAA on Azure: the protocol (vm: SevSnpVm / TdxVm; azure-guest: AzureGuest, with an
    /// ephemeral vTPM key).
    #[arg(long, value_enum, value_name = "FLOW", default_value = "vm")]
    pub maa_flow: MaaFlowArg,
    /// ITA: a file holding the API key [default: the THIMBLE_ITA_API_KEY environment variable].
    /// There is no flag for the key itself: command lines are visible to every process.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// ITA: a policy to appraise against (repeatable).
    #[arg(long, value_name = "UUID")]
    pub policy_id: Vec<String>,
    /// Print the evidence request that would be sent, send nothing (KBS, ITA, Veraison need
    /// --verifier-nonce).
    #[arg(long)]
    pub print_request: bool,
    /// With --print-request: the verifier's nonce as it would give it (KBS: the nonce string;
    /// ITA: its nonce JSON; Veraison: the session nonce in base64).
    #[arg(long, value_name = "NONCE", requires = "print_request")]
    pub verifier_nonce: Option<String>,
    /// Print a JSON summary (the token, its claims, what was written) instead of the token.
    #[arg(long)]
    pub json: bool,
    /// How to collect (as `collect`); `-o` writes the bundle too.
    #[command(flatten)]
    pub collect: CollectArgs,
}

/// `collect`: how to collect (shared with `exec` and `attest`), and how to report it.
#[derive(Debug, Args)]
pub struct CollectCommandArgs {
    #[command(flatten)]
    pub collect: CollectArgs,
    /// Print a JSON summary of the collection on standard output (not with -o -, which puts the
    /// bundle there).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub collect: CollectArgs,
    /// Fail (with collect's exit code) instead of running the command when collection fails.
    #[arg(long)]
    pub required: bool,
    /// The command to run, after `--`; it gets THIMBLE_EVIDENCE (the bundle path) and
    /// THIMBLE_NONCE (hex) in its environment when collection succeeded.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    /// configfs-tsm first (its provider tells SEV-SNP from TDX), then /dev/sev-guest, then
    /// /dev/tdx_guest with the host's Quote Generation Service.
    Auto,
    ConfigfsTsm,
    SevGuest,
    /// TDX: the TDREPORT from /dev/tdx_guest, quoted by the host's QGS over vsock.
    TdxGuest,
    /// Azure: the HCL report from the vTPM (NV 0x01400001) and a TPM quote.
    Vtpm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IntelServiceArg {
    /// Azure THIM (global.acccache.azure.net).
    Thim,
    /// Intel PCS (api.trustedservices.intel.com) or a PCCS speaking its API.
    Pcs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimulateArg {
    /// A simulated SEV-SNP guest and THIM, signed by test keys.
    Snp,
    /// A simulated TDX guest and collateral service, signed by a test Intel PKI.
    Tdx,
    /// A simulated Azure SEV-SNP CVM behind the paravisor (vTPM with HCL report, THIM).
    AzureSnp,
    /// A simulated Azure TDX CVM behind the paravisor (vTPM, IMDS /acc/tdquote, collateral).
    AzureTdx,
}

#[derive(Debug, Clone, Args)]
pub struct LocationArgs {
    /// configfs-tsm report directory.
    #[arg(long, value_name = "DIR", default_value = thimble_collect::tsm::DEFAULT_TSM_ROOT)]
    pub tsm_root: PathBuf,
    /// SEV-SNP guest device.
    #[arg(long, value_name = "PATH", default_value = "/dev/sev-guest")]
    pub device: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct CollectArgs {
    /// Nonce from the verifier (hex); REPORT_DATA = SHA-512(nonce). Random when absent.
    #[arg(long, value_name = "HEX", conflicts_with = "report_data")]
    pub nonce: Option<String>,
    /// REPORT_DATA verbatim (exactly 64 bytes, hex).
    #[arg(long, value_name = "HEX")]
    pub report_data: Option<String>,
    /// Where to write the bundle (`-` for standard output); required by `collect`, default
    /// /run/thimble/evidence.json for `exec`.
    #[arg(short, long, visible_alias = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Which evidence source to use.
    #[arg(long, value_enum, default_value = "auto")]
    pub source: SourceArg,
    /// VMPL to request the report for (configfs-tsm `privlevel`).
    #[arg(long, value_name = "N")]
    pub privlevel: Option<u32>,
    #[command(flatten)]
    pub location: LocationArgs,
    /// IMDS base URL (THIM lives below it) [default: http://169.254.169.254; with --simulate,
    /// the built-in emulator].
    #[arg(long, value_name = "URL")]
    pub imds: Option<String>,
    /// AMD KDS base URL, the fallback [default: https://kdsintf.amd.com; with --simulate, the
    /// built-in emulator].
    #[arg(long, value_name = "URL")]
    pub kds: Option<String>,
    /// Do not ask THIM.
    #[arg(long)]
    pub no_thim: bool,
    /// Do not fall back to AMD KDS.
    #[arg(long)]
    pub no_kds: bool,
    /// Fetch nothing: keep only the certificates the host attached to the report.
    #[arg(long)]
    pub offline: bool,
    /// Directory caching fetched endorsements (SEV-SNP: per chip and TCB; TDX collateral: per
    /// platform) [default: /var/cache/thimble; none with --simulate]. Entries are re-verified
    /// against each report or quote before use.
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache_dir: Option<PathBuf>,
    /// Neither read nor write the endorsement cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Overall deadline for fetching endorsements, in seconds (THIM gets at most half of it
    /// when KDS is the fallback).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub deadline: u64,
    /// Timeout of each HTTP request, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub timeout: u64,
    /// TDX guest device.
    #[arg(long, value_name = "PATH", default_value = thimble_collect::tdx_guest::DEFAULT_DEVICE_PATH)]
    pub tdx_device: PathBuf,
    /// Azure: the TPM device [default: /dev/tpmrm0, else /dev/tpm0].
    #[arg(long, value_name = "PATH")]
    pub tpm_device: Option<PathBuf>,
    /// Azure: accept an HCL report whose user-data never echoed this collection's REPORT_DATA
    /// (recorded in the bundle); the default is to fail.
    #[arg(long)]
    pub allow_stale_report: bool,
    /// Carry no measured-boot event log (by default the TD's CCEL log and the TPM's log are
    /// carried when the guest has them).
    #[arg(long, conflicts_with = "ima_log")]
    pub no_event_logs: bool,
    /// Also carry the kernel's IMA log (up to 4 MiB; carried, not replayed by verify).
    #[arg(long)]
    pub ima_log: bool,
    /// The TPM's event log [default: /sys/kernel/security/tpm0/binary_bios_measurements].
    #[arg(long, value_name = "PATH")]
    pub tpm_event_log: Option<PathBuf>,
    /// The TD's CCEL log area [default: /sys/firmware/acpi/tables/data/CCEL]; its ACPI table is
    /// read from `../CCEL` beside the `data` directory, as sysfs lays them out.
    #[arg(long, value_name = "PATH")]
    pub ccel_log: Option<PathBuf>,
    /// vsock port of the host's Quote Generation Service [default: from /etc/tdx-attest.conf,
    /// else 4050].
    #[arg(long, value_name = "PORT")]
    pub qgs_port: Option<u32>,
    /// TDX collateral service [default: from /etc/sgx_default_qcnl.conf, else Azure THIM].
    #[arg(long, value_enum, value_name = "SERVICE")]
    pub intel_collateral: Option<IntelServiceArg>,
    /// Base URL of the TDX collateral service (overrides the service's default host).
    #[arg(long, value_name = "URL")]
    pub intel_collateral_url: Option<String>,
    /// Trust the simulation test roots when checking fetched endorsements (for test guests whose
    /// evidence is signed by thimble's test keys, e.g. a swtpm provisioned with a simulated HCL
    /// report). Never in production.
    #[cfg(feature = "simulate")]
    #[arg(long)]
    pub insecure_allow_simulated: bool,
    /// Keep running: collect again every INTERVAL (seconds, or with a unit: 500ms, 30s, 5m,
    /// 1h; at least 10ms), replacing the bundle atomically (a failed round keeps the previous
    /// bundle and is retried at the next one). For long-running containers without a shell,
    /// such as a DaemonSet. Stops with exit 0 on SIGTERM or SIGINT.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
    pub every: Option<std::time::Duration>,
    /// With --every: stop after N rounds, with the exit code of the last one.
    #[arg(long, value_name = "N", requires = "every", value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: Option<u64>,
    /// Use a simulated guest and THIM emulator on loopback instead of real hardware.
    #[cfg(feature = "simulate")]
    #[arg(long, value_enum, value_name = "TEE")]
    pub simulate: Option<SimulateArg>,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub location: LocationArgs,
    /// TDX guest device.
    #[arg(long, value_name = "PATH", default_value = thimble_collect::tdx_guest::DEFAULT_DEVICE_PATH)]
    pub tdx_device: PathBuf,
}

/// What `verify` checks beyond authenticity. Every setting can also come from `--policy FILE`;
/// a flag given here replaces the file's value for that setting (docs/policy.md).
#[derive(Debug, Default, Args)]
pub struct PolicyArgs {
    /// A policy file (TOML) with reference values for every TEE; flags override it.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Expected nonce (hex): REPORT_DATA must equal SHA-512(nonce).
    #[arg(long, value_name = "HEX", conflicts_with = "report_data")]
    pub nonce: Option<String>,
    /// Expected REPORT_DATA (64 bytes, hex).
    #[arg(long, value_name = "HEX")]
    pub report_data: Option<String>,
    /// Accept guests whose policy allows debugging.
    #[arg(long)]
    pub allow_debug: bool,
    /// Trust the simulation test root (for bundles made with --simulate). Never in production.
    #[cfg_attr(feature = "simulate", arg(long))]
    #[cfg_attr(not(feature = "simulate"), arg(skip))]
    pub insecure_allow_simulated: bool,
    /// Require revocation data for every vendor: an AMD CRL that is current, and Intel's PCK
    /// and root CA CRLs.
    #[arg(long, conflicts_with = "allow_missing_crl")]
    pub require_revocation: bool,

    #[command(flatten)]
    pub snp: Group<SnpPolicyArgs>,
    #[command(flatten)]
    pub snp_guest: Group<SnpGuestPolicyArgs>,
    #[command(flatten)]
    pub tdx: Group<TdxPolicyArgs>,
    #[command(flatten)]
    pub azure: Group<AzurePolicyArgs>,
    #[command(flatten)]
    pub event_log: Group<EventLogPolicyArgs>,
}

/// `verify`'s SEV-SNP settings on the report's TCB, firmware and identity fields.
#[derive(Debug, Default, Args)]
pub struct SnpPolicyArgs {
    /// SEV-SNP: minimum REPORTED_TCB, a tcbm (16 hex digits, read with the layout of the report's
    /// product) or `bl=N,tee=N,snp=N,ucode=N[,fmc=N]`.
    #[arg(long, value_name = "TCB", help_heading = "SEV-SNP")]
    pub min_tcb: Option<String>,
    /// SEV-SNP: minimum LAUNCH_TCB, in the same forms as --min-tcb.
    #[arg(long, value_name = "TCB", help_heading = "SEV-SNP")]
    pub min_launch_tcb: Option<String>,
    /// SEV-SNP: expected MEASUREMENT (48 bytes, hex).
    #[arg(long, value_name = "HEX", help_heading = "SEV-SNP")]
    pub measurement: Option<String>,
    /// SEV-SNP: expected HOST_DATA (32 bytes, hex).
    #[arg(long, value_name = "HEX", help_heading = "SEV-SNP")]
    pub host_data: Option<String>,
    /// SEV-SNP: highest VMPL accepted.
    #[arg(long, value_name = "N", help_heading = "SEV-SNP")]
    pub max_vmpl: Option<u32>,
    /// SEV-SNP: minimum GUEST_SVN.
    #[arg(long, value_name = "N", help_heading = "SEV-SNP")]
    pub min_guest_svn: Option<u32>,
    /// SEV-SNP: minimum firmware build.
    #[arg(long, value_name = "N", help_heading = "SEV-SNP")]
    pub min_build: Option<u8>,
    /// SEV-SNP: minimum firmware version.
    #[arg(long, value_name = "MAJOR.MINOR", help_heading = "SEV-SNP")]
    pub min_version: Option<String>,
    /// SEV-SNP: refuse provisional firmware (current TCB, build or version not the committed one).
    #[arg(long, help_heading = "SEV-SNP")]
    pub deny_provisional_firmware: bool,
    /// SEV-SNP: expected FAMILY_ID (16 bytes, hex).
    #[arg(long, value_name = "HEX", help_heading = "SEV-SNP")]
    pub family_id: Option<String>,
    /// SEV-SNP: expected IMAGE_ID (16 bytes, hex).
    #[arg(long, value_name = "HEX", help_heading = "SEV-SNP")]
    pub image_id: Option<String>,
    /// SEV-SNP: expected REPORT_ID (32 bytes, hex).
    #[arg(long, value_name = "HEX", help_heading = "SEV-SNP")]
    pub report_id: Option<String>,
    /// SEV-SNP: expected REPORT_ID_MA (32 bytes, hex).
    #[arg(long, value_name = "HEX", help_heading = "SEV-SNP")]
    pub report_id_ma: Option<String>,
    /// SEV-SNP: expected CHIP_ID (64 bytes, hex).
    #[arg(long, value_name = "HEX", help_heading = "SEV-SNP")]
    pub chip_id: Option<String>,
}

/// `verify`'s SEV-SNP settings on the guest policy, the platform and the ID block.
#[derive(Debug, Default, Args)]
pub struct SnpGuestPolicyArgs {
    /// SEV-SNP: lowest firmware ABI version the guest policy may name.
    #[arg(long, value_name = "MAJOR.MINOR", help_heading = "SEV-SNP")]
    pub min_abi: Option<String>,
    /// SEV-SNP: refuse a guest whose policy allows SMT.
    #[arg(long, help_heading = "SEV-SNP")]
    pub deny_smt: bool,
    /// SEV-SNP: accept a guest whose policy allows a migration agent (refused by default).
    #[arg(long, help_heading = "SEV-SNP")]
    pub allow_migration_agent: bool,
    /// SEV-SNP: refuse a guest whose policy allows CXL-attached memory.
    #[arg(long, help_heading = "SEV-SNP")]
    pub deny_cxl: bool,
    /// SEV-SNP: require the guest policy bit SINGLE_SOCKET.
    #[arg(long, help_heading = "SEV-SNP")]
    pub require_single_socket: bool,
    /// SEV-SNP: require the guest policy bit MEM_AES_256_XTS.
    #[arg(long, help_heading = "SEV-SNP")]
    pub require_mem_aes_256_xts: bool,
    /// SEV-SNP: require the guest policy bit RAPL_DIS.
    #[arg(long, help_heading = "SEV-SNP")]
    pub require_rapl_dis: bool,
    /// SEV-SNP: require the guest policy bit CIPHERTEXT_HIDING_DRAM.
    #[arg(long, help_heading = "SEV-SNP")]
    pub require_ciphertext_hiding: bool,
    /// SEV-SNP: require the guest policy bit PAGE_SWAP_DISABLE.
    #[arg(long, help_heading = "SEV-SNP")]
    pub require_page_swap_disable: bool,
    /// SEV-SNP: PLATFORM_INFO bits that must be set (smt, tsme, ecc, rapl_dis,
    /// ciphertext_hiding, alias_check_complete, tio); repeatable or comma-separated.
    #[arg(
        long,
        value_name = "NAME",
        value_delimiter = ',',
        help_heading = "SEV-SNP"
    )]
    pub require_platform_info: Vec<String>,
    /// SEV-SNP: PLATFORM_INFO bits that must be clear (same names).
    #[arg(
        long,
        value_name = "NAME",
        value_delimiter = ',',
        help_heading = "SEV-SNP"
    )]
    pub deny_platform_info: Vec<String>,
    /// SEV-SNP: require an ID block (ID_KEY_DIGEST not zero).
    #[arg(long, help_heading = "SEV-SNP")]
    pub require_id_block: bool,
    /// SEV-SNP: require an author key that is one of --trusted-author-key-digest.
    #[arg(long, help_heading = "SEV-SNP")]
    pub require_author_key: bool,
    /// SEV-SNP: a trusted ID key digest (48 bytes, hex); repeatable.
    #[arg(long, value_name = "HEX", help_heading = "SEV-SNP")]
    pub trusted_id_key_digest: Vec<String>,
    /// SEV-SNP: a trusted author key digest (48 bytes, hex); repeatable.
    #[arg(long, value_name = "HEX", help_heading = "SEV-SNP")]
    pub trusted_author_key_digest: Vec<String>,
}

/// `verify`'s TDX settings.
#[derive(Debug, Default, Args)]
pub struct TdxPolicyArgs {
    /// TDX: worst TCB status accepted (UpToDate, SWHardeningNeeded, ConfigurationNeeded,
    /// ConfigurationAndSWHardeningNeeded, TDRelaunchAdvised, TDRelaunchAdvisedConfigurationNeeded,
    /// OutOfDate, OutOfDateConfigurationNeeded); Revoked is always rejected.
    #[arg(long, value_name = "STATUS", help_heading = "TDX")]
    pub min_tcb_status: Option<String>,
    /// TDX: accept collateral (TCB info, QE identity, CRLs) past its nextUpdate, with a warning.
    #[arg(long, help_heading = "TDX")]
    pub allow_stale_collateral: bool,
    /// TDX: accept a bundle without the PCK CRL or the root CA CRL, with a warning.
    #[arg(long, help_heading = "TDX")]
    pub allow_missing_crl: bool,
    /// TDX: require the TD attribute SEPT_VE_DISABLE (Azure's paravisor TDs run without it).
    #[arg(long, help_heading = "TDX")]
    pub require_sept_ve_disable: bool,
    /// TDX: an accepted MRTD (48 bytes, hex); repeatable (the quote's must be one of them).
    #[arg(long, value_name = "HEX", help_heading = "TDX")]
    pub mrtd: Vec<String>,
    /// TDX: expected MRCONFIGID (48 bytes, hex).
    #[arg(long, value_name = "HEX", help_heading = "TDX")]
    pub mrconfigid: Option<String>,
    /// TDX: expected MROWNER (48 bytes, hex).
    #[arg(long, value_name = "HEX", help_heading = "TDX")]
    pub mrowner: Option<String>,
    /// TDX: expected MROWNERCONFIG (48 bytes, hex).
    #[arg(long, value_name = "HEX", help_heading = "TDX")]
    pub mrownerconfig: Option<String>,
    /// TDX: expected MRSEAM, the TDX module's measurement (48 bytes, hex).
    #[arg(long, value_name = "HEX", help_heading = "TDX")]
    pub mrseam: Option<String>,
    /// TDX: expected TD attributes (8 bytes, hex, as in the quote).
    #[arg(long, value_name = "HEX", help_heading = "TDX")]
    pub td_attributes: Option<String>,
    /// TDX: expected XFAM (8 bytes, hex, as in the quote).
    #[arg(long, value_name = "HEX", help_heading = "TDX")]
    pub xfam: Option<String>,
    /// TDX: expected RTMR value, as INDEX=HEX (INDEX 0 to 3, 48 bytes); repeatable.
    #[arg(long, value_name = "INDEX=HEX", help_heading = "TDX")]
    pub rtmr: Vec<String>,
    /// TDX: minimum TEE_TCB_SVN (16 bytes, hex), compared byte by byte.
    #[arg(long, value_name = "HEX", help_heading = "TDX")]
    pub min_tee_tcb_svn: Option<String>,
    /// TDX: minimum ISVSVN of the quoting enclave.
    #[arg(long, value_name = "N", help_heading = "TDX")]
    pub min_qe_svn: Option<u16>,
    /// TDX: minimum PCESVN of the platform (from the PCK certificate).
    #[arg(long, value_name = "N", help_heading = "TDX")]
    pub min_pce_svn: Option<u16>,
}

/// `verify`'s settings for Azure CVMs (the paravisor and its HCL report).
#[derive(Debug, Default, Args)]
pub struct AzurePolicyArgs {
    /// Azure: accept an HCL report without a TPM quote, or one not made for this request (its
    /// claims may date from boot), with a warning.
    #[arg(long, help_heading = "Azure")]
    pub allow_stale_report: bool,
    /// Azure: the user-data the HCL report must carry, when the collecting tool bound something
    /// other than the nonce there (hex, up to 64 bytes).
    #[arg(long, value_name = "HEX", help_heading = "Azure")]
    pub hcl_user_data: Option<String>,
    /// Azure SEV-SNP: also trust this paravisor signing key digest (48 bytes, hex); repeatable.
    #[arg(long, value_name = "HEX", help_heading = "Azure")]
    pub paravisor_id_key_digest: Vec<String>,
    /// Azure TDX: also trust this paravisor MRTD (48 bytes, hex); repeatable.
    #[arg(long, value_name = "HEX", help_heading = "Azure")]
    pub paravisor_mrtd: Vec<String>,
    /// Azure: trust only the paravisors given with --paravisor-id-key-digest and
    /// --paravisor-mrtd, not the pinned ones.
    #[arg(long, help_heading = "Azure")]
    pub no_pinned_paravisors: bool,
    /// Azure: accept a paravisor that is not trusted, with a warning.
    #[arg(long, help_heading = "Azure")]
    pub allow_unknown_paravisor: bool,
}

/// `verify`'s measured-boot settings.
#[derive(Debug, Default, Args)]
pub struct EventLogPolicyArgs {
    /// Require a measured-boot event log that replays to the registers the evidence signs.
    #[arg(long, help_heading = "Measured boot")]
    pub require_event_log: bool,
    /// The event log must have measured Secure Boot as on (implies --require-event-log).
    #[arg(long, help_heading = "Measured boot")]
    pub expect_secure_boot: bool,
    /// The kernel command line the boot loader measured: the whole text, or the text after the
    /// kernel's path (implies --require-event-log).
    #[arg(long, value_name = "TEXT", help_heading = "Measured boot")]
    pub expect_kernel_cmdline: Option<String>,
    /// A boot application, kernel or initrd the event log must have measured with this digest
    /// (hex, of one of the log's banks); repeatable (implies --require-event-log).
    #[arg(long, value_name = "HEX", help_heading = "Measured boot")]
    pub expect_boot_digest: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle to verify (`-` for standard input). Several are verified in parallel, with one
    /// result each, in order; the exit code is then the first failing bundle's.
    #[arg(value_name = "BUNDLE", required = true, num_args = 1..)]
    pub bundles: Vec<PathBuf>,
    /// Refuse bundles larger than this (bytes; K, M or G suffixes allowed).
    #[arg(long, value_name = "BYTES", default_value = "8M", value_parser = parse_size)]
    pub max_bundle_size: usize,
    /// Verify as of this time (RFC 3339); default now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("evidence").required(true).multiple(true).args(["snp_report", "tdx_quote", "hcl_report", "from"]))]
pub struct ImportArgs {
    /// Read evidence in another tool's form from INPUT: snpguest (a directory:
    /// attestation-report.bin and certs/), go-sev-guest (attest -outform bin, -extended or not),
    /// tsm-report (JSON), cmw (a CMW record of a tsm-report), trustee (Trustee evidence JSON).
    #[arg(long, value_name = "FORMAT", requires = "input", value_parser = parse_import_format,
          conflicts_with_all = ["snp_report", "tdx_quote", "hcl_report", "tpm_quote"])]
    pub from: Option<Format>,
    /// The file or directory `--from` reads.
    #[arg(value_name = "INPUT", requires = "from")]
    pub input: Option<PathBuf>,
    /// A raw 1184-byte SEV-SNP attestation report.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["tdx_quote", "hcl_report"])]
    pub snp_report: Option<PathBuf>,
    /// A raw Intel TDX quote (version 4 or 5); with --hcl-report, the quote IMDS made from the
    /// HCL report's TD report.
    #[arg(long, value_name = "FILE")]
    pub tdx_quote: Option<PathBuf>,
    /// Azure: the vTPM NV index 0x01400001 contents (HCL report).
    #[arg(long, value_name = "FILE")]
    pub hcl_report: Option<PathBuf>,
    /// Azure: the TPM quote as JSON `{signature, message, pcrs}` (hex).
    #[arg(long, value_name = "FILE", requires = "hcl_report")]
    pub tpm_quote: Option<PathBuf>,
    /// An endorsement file, recognised by content; repeatable. SEV-SNP: certificates (DER or PEM,
    /// one or several) or a THIM AMD JSON response. TDX: TCB info or QE identity (JSON body),
    /// a CRL (DER or PEM) or certificates (a PEM issuer chain).
    #[arg(long = "add", value_name = "FILE")]
    pub add: Vec<PathBuf>,
    /// A TD's CC event log (the CCEL log area, as read from
    /// /sys/firmware/acpi/tables/data/CCEL); trimmed after its last event.
    #[arg(long, value_name = "FILE")]
    pub ccel_log: Option<PathBuf>,
    /// A TPM's event log (binary_bios_measurements).
    #[arg(long, value_name = "FILE")]
    pub tpm_event_log: Option<PathBuf>,
    /// The nonce the report was requested with (hex), if known.
    #[arg(long, value_name = "HEX", conflicts_with = "report_data")]
    pub nonce: Option<String>,
    /// Record that REPORT_DATA was given verbatim (64 bytes, hex).
    #[arg(long, value_name = "HEX")]
    pub report_data: Option<String>,
    /// Where to write the bundle (`-` for standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Print a JSON summary of the bundle written (not with -o -).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The bundle to export (`-` for standard input).
    pub bundle: PathBuf,
    /// The form to write: snpguest (a directory), go-sev-guest, tsm-report, cmw, maa (the
    /// SevSnpVm or TdxVm request body), trustee (the evidence JSON of the bundle's TEE).
    #[arg(long, value_name = "FORMAT", value_parser = parse_export_format)]
    pub format: Format,
    /// Where to write: a file (`-` for standard output), or for snpguest a directory that does
    /// not exist yet.
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,
    /// maa, for SEV-SNP and TDX bundles that are not Azure: the runtime data whose SHA-256 the
    /// evidence's REPORT_DATA starts with.
    #[arg(long, value_name = "FILE")]
    pub runtime_data: Option<PathBuf>,
    /// Refuse bundles larger than this (bytes; K, M or G suffixes allowed).
    #[arg(long, value_name = "BYTES", default_value = "8M", value_parser = parse_size)]
    pub max_bundle_size: usize,
    /// Print a JSON summary of what was written (not with -o -).
    #[arg(long)]
    pub json: bool,
}

fn parse_export_format(s: &str) -> Result<Format, String> {
    Format::ALL
        .into_iter()
        .find(|f| f.as_str() == s)
        .ok_or_else(|| format!("one of {}", names(&Format::ALL)))
}

/// The forms `import --from` reads: evidence, not requests to a verifier.
const IMPORT_FORMATS: [Format; 5] = [
    Format::Snpguest,
    Format::GoSevGuest,
    Format::TsmReport,
    Format::Cmw,
    Format::Trustee,
];

fn parse_import_format(s: &str) -> Result<Format, String> {
    IMPORT_FORMATS
        .into_iter()
        .find(|f| f.as_str() == s)
        .ok_or_else(|| format!("one of {}", names(&IMPORT_FORMATS)))
}

fn names(formats: &[Format]) -> String {
    formats
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The bundle to show (`-` for standard input).
    pub bundle: PathBuf,
    /// Refuse bundles larger than this (bytes; K, M or G suffixes allowed).
    #[arg(long, value_name = "BYTES", default_value = "8M", value_parser = parse_size)]
    pub max_bundle_size: usize,
    /// Also trust the simulation test roots when computing a TDX TCB status. Never in
    /// production.
    #[cfg_attr(feature = "simulate", arg(long))]
    #[cfg_attr(not(feature = "simulate"), arg(skip))]
    pub insecure_allow_simulated: bool,
    /// Print JSON: the summary and each event log's events and claims, as values.
    #[arg(long)]
    pub json: bool,
}

/// A size in bytes, with an optional K, M or G suffix (powers of 1024).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 10),
        Some((i, 'm' | 'M')) => (&t[..i], 20),
        Some((i, 'g' | 'G')) => (&t[..i], 30),
        _ => (t, 0),
    };
    let n: usize = digits
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size in bytes (such as 8388608 or 8M)"))?;
    n.checked_mul(1usize << shift)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?} is not a size between 1 byte and the address space"))
}

/// Shortest `--every`: shorter rounds would only spin.
pub const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// A `--every` interval: whole seconds (`30`, as before units were accepted), or a whole number
/// with one of the units `ms`, `s`, `m`, `h`; at least [`MIN_INTERVAL`].
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let ms_per_unit: u64 = match unit {
        "" | "s" => 1000,
        "ms" => 1,
        "m" => 60 * 1000,
        "h" => 60 * 60 * 1000,
        _ => {
            return Err(format!(
                "{s:?} is not an interval (such as 30, 30s, 500ms, 5m or 1h)"
            ));
        }
    };
    let ms = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(ms_per_unit))
        .ok_or_else(|| format!("{s:?} is not an interval (such as 30, 30s, 500ms, 5m or 1h)"))?;
    let interval = std::time::Duration::from_millis(ms);
    if interval < MIN_INTERVAL {
        return Err(format!("{s:?} is shorter than the shortest interval, 10ms"));
    }
    Ok(interval)
}

#[derive(Debug, Args)]
pub struct VerifyChainArgs {
    /// Certificate files (DER or PEM) or THIM AMD JSON responses.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Verify as of this time (RFC 3339); default now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Trust the simulation test root.
    #[cfg_attr(feature = "simulate", arg(long))]
    #[cfg_attr(not(feature = "simulate"), arg(skip))]
    pub insecure_allow_simulated: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use clap::CommandFactory;

    #[test]
    fn intervals_take_plain_seconds_and_units() {
        assert_eq!(parse_interval("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_interval("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_interval("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_interval("10ms"), Ok(Duration::from_millis(10)));
        for bad in [
            "",
            "0",
            "9ms",
            "s",
            "1.5s",
            "-1",
            "5 d",
            "30x",
            "99999999999999999999h",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Deferred building keeps what the derive gave: each subcommand's summary (not an `Args`
    /// struct's doc comment) and its arguments once built.
    #[test]
    fn every_subcommand_keeps_its_summary_and_arguments() {
        let mut cmd = Cli::command();
        cmd.build();
        for (name, about, _) in SUBCOMMANDS {
            let sub = cmd.find_subcommand(name).expect(name);
            assert_eq!(
                sub.get_about().map(|a| a.to_string()).as_deref(),
                Some(about)
            );
            assert!(sub.get_long_about().is_none(), "{name}");
            // Its own arguments beside --help, -q and -v.
            assert!(sub.get_arguments().count() > 3, "{name}");
            assert!(Command::has_subcommand(name));
        }
        assert!(!Command::has_subcommand("help"));
    }

    /// `verify`'s policy flags, cut into `Group`s, still land in their fields, and a `Group`'s
    /// own defaults are the flags' defaults.
    #[test]
    fn policy_flags_reach_their_groups() {
        use clap::FromArgMatches;
        let parse = |extra: &[&str]| {
            let argv = ["thimble", "verify", "b.json"].iter().chain(extra);
            let m = Cli::command().try_get_matches_from(argv).expect("parses");
            match Cli::from_arg_matches(&m).expect("fields").command {
                Command::Verify(v) => v.policy,
                other => panic!("{other:?}"),
            }
        };
        let p = parse(&[
            "--nonce",
            "aa",
            "--min-tcb",
            "bl=1,tee=0,snp=2,ucode=3",
            "--deny-smt",
            "--trusted-id-key-digest",
            "cc",
            "--mrtd",
            "dd",
            "--min-qe-svn",
            "8",
            "--hcl-user-data",
            "ee",
            "--no-pinned-paravisors",
            "--expect-boot-digest",
            "ff",
        ]);
        assert_eq!(p.nonce.as_deref(), Some("aa"));
        assert_eq!(p.snp.min_tcb.as_deref(), Some("bl=1,tee=0,snp=2,ucode=3"));
        assert!(p.snp_guest.deny_smt && !p.snp_guest.deny_cxl);
        assert_eq!(p.snp_guest.trusted_id_key_digest, ["cc"]);
        assert_eq!(p.tdx.mrtd, ["dd"]);
        assert_eq!(p.tdx.min_qe_svn, Some(8));
        assert_eq!(p.azure.hcl_user_data.as_deref(), Some("ee"));
        assert!(p.azure.no_pinned_paravisors && !p.azure.allow_unknown_paravisor);
        assert_eq!(p.event_log.expect_boot_digest, ["ff"]);
        let none = parse(&[]);
        assert!(none.snp.min_tcb.is_none() && none.tdx.mrtd.is_empty());
        assert!(!none.event_log.require_event_log);
        // A group's value errors are still clap's usage errors, naming the flag.
        let e = Cli::command()
            .try_get_matches_from(["thimble", "verify", "b.json", "--min-qe-svn", "x"])
            .expect_err("not a number");
        assert!(e.to_string().contains("--min-qe-svn"), "{e}");
    }
}
