// SPDX-License-Identifier: Apache-2.0
//! A fake Azure vTPM: an in-memory TPM 2.0 that answers the commands `thimble_collect::vtpm`
//! sends with byte-exact TPM 2.0 responses (TPM 2.0 Library Part 3), and a paravisor in front of
//! it that regenerates the HCL report from the user data the way Azure's does.
//!
//! The TPM part holds NV indices (with `TPMA_NV` owner/index authorization, `WRITTEN`, ranges and
//! the NV buffer limit), 24 SHA-256 PCRs, and the attestation key at `0x81000003`
//! ([`crate::azure_sim::SimAk`], restricted RSASSA-SHA-256 like Azure's AK) that signs real
//! quotes. It answers what it does not implement with `TPM_RC_COMMAND_CODE`, and faults can be
//! injected per command: a response code, a truncated or mis-sized response, garbage, a transport
//! error. `vtpm_swtpm.rs` in thimble-collect checks its NV answers byte for byte against swtpm.
//!
//! The paravisor part follows microsoft/openvmm `vm/devices/tpm/tpm_device/src/lib.rs`: when an
//! `NV_Read` of `0x01400001` starts at offset 0, the report is rebuilt from the 64 bytes in
//! `0x01400002` (zeros if that index is missing or unwritten), at most once per rate-limit
//! period (2 s there); a read inside the period gets the previous report. The report builder is
//! a closure, [`SimHcl::snp`] by default: an HCL report around a simulated SEV-SNP report signed
//! by the simulated VCEK, whose REPORT_DATA binds runtime data that names the fake's AK.
//! Nothing here is trusted by a real verification.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::time::{Duration, Instant};

use ring::digest::{SHA256, digest};
use thimble_collect::vtpm::{
    AK_CERT_NV_INDEX, HCL_REPORT_NV_INDEX, HCL_USER_DATA_NV_INDEX, HEADER_LEN, Malformed, NvPublic,
    TpmReader, TpmTransport, TpmWriter, USER_DATA_LEN, VTPM_AK_HANDLE, alg, cc, nv_attr, rc, rh,
    st,
};

use crate::azure_sim::{SimAk, SimHcl, SimTpmQuote};

/// Size of the HCL report index on a real Azure vTPM (every captured report is 2600 bytes).
pub const AZURE_HCL_REPORT_LEN: usize = 2600;

/// `TPMA_NV` of the HCL report index as the paravisor defines it under the platform hierarchy
/// (openvmm `tpm_lib` `nv_define_space`: AUTHREAD, AUTHWRITE, OWNERREAD, PLATFORMCREATE, NO_DA).
pub const HCL_REPORT_NV_ATTRIBUTES: u32 = nv_attr::AUTHREAD
    | nv_attr::AUTHWRITE
    | nv_attr::OWNERREAD
    | nv_attr::PLATFORMCREATE
    | nv_attr::NO_DA;

/// `TPM_RC_BAD_TAG`, a TPM 1.2-format code the reference implementation returns for a bad tag.
const RC_BAD_TAG: u32 = 0x01E;
const RC_AUTH_CONTEXT: u32 = rc::VER1 + 0x045;
const RC_P: u32 = 0x040;
const RC_1: u32 = 0x100;
const RC_2: u32 = 0x200;
const RC_3: u32 = 0x300;
const RC_S: u32 = 0x800;

/// The AK as the fake's `TPM2_ReadPublic` and `TPM2_Quote` present it: [`SimAk`] as a primary
/// key of the owner hierarchy, persisted at `0x81000003`.
#[derive(Debug, Clone)]
struct AkObject {
    public_area: Vec<u8>,
    name: Vec<u8>,
    qualified_name: Vec<u8>,
}

impl AkObject {
    fn sim() -> AkObject {
        let ak = SimAk::get();
        let name = ak.name();
        // Part 1 "Qualified Name": a qualified name is H(parent's qualified name ‖ name), and a hierarchy's
        // qualified name is its handle.
        let mut chained = rh::OWNER.to_be_bytes().to_vec();
        chained.extend_from_slice(&name);
        let mut qualified_name = alg::SHA256.to_be_bytes().to_vec();
        qualified_name.extend_from_slice(digest(&SHA256, &chained).as_ref());
        AkObject {
            public_area: ak.tpmt_public(),
            name,
            qualified_name,
        }
    }
}

/// Builds the HCL report for given user data (the paravisor's job).
pub type Paravisor = Box<dyn FnMut(&[u8; USER_DATA_LEN]) -> Vec<u8> + Send>;

/// When the paravisor regenerates the HCL report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportRefresh {
    /// On an `NV_Read` of `0x01400001` at offset 0, unless it did so less than this long ago
    /// (openvmm: 2 s).
    OnRead { min_interval: Duration },
    /// Never: the boot-time report stays (a paravisor without fresh-report support).
    Never,
}

/// A fault to inject into the next response to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this response code and no body.
    ResponseCode(u32),
    /// Cut the last byte off the real response.
    Truncate,
    /// Declare one byte more in the header than is sent.
    WrongSize,
    /// Send these bytes instead.
    Garbage(Vec<u8>),
    /// Fail the transport itself.
    Transport(io::ErrorKind),
}

#[derive(Debug, Clone)]
struct NvIndex {
    public: NvPublic,
    auth: Vec<u8>,
    data: Vec<u8>,
}

impl NvIndex {
    fn written(&self) -> bool {
        self.public.attributes & nv_attr::WRITTEN != 0
    }
}

/// One `NV_Read` the fake answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NvReadRecord {
    pub index: u32,
    pub size: u16,
    pub offset: u16,
}

/// The fake vTPM (see the module docs).
pub struct FakeVtpm {
    nv: BTreeMap<u32, NvIndex>,
    pcrs: [[u8; 32]; 24],
    pcr_update_counter: u32,
    ak: AkObject,
    ak_present: bool,
    paravisor: Paravisor,
    refresh: ReportRefresh,
    last_refresh: Option<Instant>,
    refreshes: u32,
    nv_buffer_max: Option<u16>,
    nv_index_max: u16,
    faults: Vec<(u32, Fault)>,
    extend_after_quote: VecDeque<u32>,
    commands: Vec<u32>,
    nv_reads: Vec<NvReadRecord>,
    clock: u64,
}

impl std::fmt::Debug for FakeVtpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeVtpm")
            .field("nv", &self.nv.keys().collect::<Vec<_>>())
            .field("refresh", &self.refresh)
            .field("refreshes", &self.refreshes)
            .field("commands", &self.commands.len())
            .finish_non_exhaustive()
    }
}

impl Default for FakeVtpm {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeVtpm {
    /// An Azure SEV-SNP CVM's vTPM right after boot: the HCL report index defined by the
    /// platform, no user-data index, the AK persisted, PCRs 0-15 measured, the paravisor
    /// regenerating reports on read with openvmm's 2 s rate limit, a 1024-byte NV buffer.
    pub fn new() -> Self {
        let paravisor: Paravisor = Box::new(|user_data: &[u8; USER_DATA_LEN]| {
            let mut report = SimHcl::snp(user_data);
            report.resize(AZURE_HCL_REPORT_LEN, 0);
            report
        });
        let mut fake = FakeVtpm {
            nv: BTreeMap::new(),
            pcrs: SimTpmQuote::default_pcrs(),
            pcr_update_counter: 16,
            ak: AkObject::sim(),
            ak_present: true,
            paravisor,
            refresh: ReportRefresh::OnRead {
                min_interval: Duration::from_secs(2),
            },
            last_refresh: None,
            refreshes: 0,
            nv_buffer_max: Some(1024),
            nv_index_max: 4096,
            faults: Vec::new(),
            extend_after_quote: VecDeque::new(),
            commands: Vec::new(),
            nv_reads: Vec::new(),
            clock: 1_000_000,
        };
        let boot = (fake.paravisor)(&[0u8; USER_DATA_LEN]);
        fake.define_platform_index(HCL_REPORT_NV_INDEX, HCL_REPORT_NV_ATTRIBUTES, boot);
        fake
    }

    fn define_platform_index(&mut self, index: u32, attributes: u32, data: Vec<u8>) {
        let public = NvPublic {
            index,
            name_alg: alg::SHA256,
            attributes: attributes | nv_attr::WRITTEN,
            auth_policy: Vec::new(),
            data_size: data.len().min(usize::from(u16::MAX)) as u16,
            name: Vec::new(),
        };
        self.nv.insert(
            index,
            NvIndex {
                public,
                auth: b"paravisor".to_vec(),
                data,
            },
        );
    }

    /// The HCL report is built by `paravisor` (the boot-time report is rebuilt with zeros).
    pub fn with_paravisor(mut self, mut paravisor: Paravisor) -> Self {
        let boot = paravisor(&[0u8; USER_DATA_LEN]);
        self.paravisor = paravisor;
        self.define_platform_index(HCL_REPORT_NV_INDEX, HCL_REPORT_NV_ATTRIBUTES, boot);
        self
    }

    pub fn with_report_refresh(mut self, refresh: ReportRefresh) -> Self {
        self.refresh = refresh;
        self
    }

    /// `TPM_PT_NV_BUFFER_MAX` (`None`: the TPM does not report it).
    pub fn with_nv_buffer_max(mut self, max: Option<u16>) -> Self {
        self.nv_buffer_max = max;
        self
    }

    /// No HCL report index (a VM without a paravisor report).
    pub fn without_hcl_report(mut self) -> Self {
        self.nv.remove(&HCL_REPORT_NV_INDEX);
        self
    }

    /// No AK at `0x81000003`.
    pub fn without_ak(mut self) -> Self {
        self.ak_present = false;
        self
    }

    /// An AK certificate index holding `der` followed by zeros up to `index_len`, as the host
    /// fills it.
    pub fn with_ak_cert(mut self, der: &[u8], index_len: usize) -> Self {
        let mut data = der.to_vec();
        data.resize(index_len.max(der.len()), 0);
        self.define_platform_index(
            AK_CERT_NV_INDEX,
            nv_attr::AUTHREAD | nv_attr::OWNERREAD | nv_attr::PPREAD | nv_attr::NO_DA,
            data,
        );
        self
    }

    /// Defines an NV index directly (as the platform would), written with `data` if given.
    pub fn with_nv_index(mut self, public: NvPublic, data: Option<Vec<u8>>) -> Self {
        let mut public = public;
        let written = data.is_some();
        let mut data = data.unwrap_or_default();
        data.resize(usize::from(public.data_size), 0);
        if written {
            public.attributes |= nv_attr::WRITTEN;
        }
        self.nv.insert(
            public.index,
            NvIndex {
                public,
                auth: Vec::new(),
                data,
            },
        );
        self
    }

    /// The next response to command `code` carries `fault` (one-shot; several queue up).
    pub fn fail_next(&mut self, code: u32, fault: Fault) {
        self.faults.push((code, fault));
    }

    /// After each of the next quotes, extend `pcr` (something measuring between the quote and
    /// the PCR read).
    pub fn extend_after_next_quote(&mut self, pcr: u32) {
        self.extend_after_quote.push_back(pcr);
    }

    /// `PCR[i] = SHA-256(PCR[i] ‖ data)`.
    pub fn extend_pcr(&mut self, pcr: u32, data: &[u8; 32]) {
        if let Some(value) = self.pcrs.get_mut(pcr as usize) {
            let mut input = value.to_vec();
            input.extend_from_slice(data);
            value.copy_from_slice(digest(&SHA256, &input).as_ref());
            self.pcr_update_counter += 1;
        }
    }

    pub fn pcrs(&self) -> &[[u8; 32]; 24] {
        &self.pcrs
    }

    /// Command codes received, in order.
    pub fn commands(&self) -> &[u32] {
        &self.commands
    }

    /// `NV_Read`s answered (before faults), in order.
    pub fn nv_reads(&self) -> &[NvReadRecord] {
        &self.nv_reads
    }

    /// How many times the paravisor rebuilt the report.
    pub fn refreshes(&self) -> u32 {
        self.refreshes
    }

    /// The current contents of an NV index, written or not.
    pub fn nv_data(&self, index: u32) -> Option<&[u8]> {
        self.nv.get(&index).map(|i| i.data.as_slice())
    }

    /// The public area of an NV index.
    pub fn nv_public(&self, index: u32) -> Option<&NvPublic> {
        self.nv.get(&index).map(|i| &i.public)
    }

    fn execute(&mut self, command: &[u8]) -> Response {
        let mut r = TpmReader::new(command);
        let (Ok(tag), Ok(size), Ok(code)) = (r.u16("tag"), r.u32("size"), r.u32("code")) else {
            return Response::error(rc::COMMAND_SIZE);
        };
        self.commands.push(code);
        self.clock += 7;
        if size as usize != command.len() {
            return Response::error(rc::COMMAND_SIZE);
        }
        if tag != st::NO_SESSIONS && tag != st::SESSIONS {
            return Response::error(RC_BAD_TAG);
        }
        let handle_count = match code {
            cc::GET_CAPABILITY | cc::PCR_READ => 0,
            cc::NV_READ_PUBLIC | cc::READ_PUBLIC | cc::QUOTE | cc::NV_DEFINE_SPACE => 1,
            cc::NV_READ | cc::NV_WRITE => 2,
            _ => return Response::error(rc::COMMAND_CODE),
        };
        let mut handles = Vec::new();
        for _ in 0..handle_count {
            match r.u32("handle") {
                Ok(h) => handles.push(h),
                Err(_) => return Response::error(rc::INSUFFICIENT),
            }
        }
        let mut passwords = Vec::new();
        if tag == st::SESSIONS {
            match parse_sessions(&mut r) {
                Ok(p) => passwords = p,
                Err(code) => return Response::error(code),
            }
        }
        let needs_auth = matches!(
            code,
            cc::NV_READ | cc::NV_WRITE | cc::NV_DEFINE_SPACE | cc::QUOTE
        );
        if needs_auth && passwords.is_empty() {
            return Response::error(rc::AUTH_MISSING);
        }
        if !needs_auth && !passwords.is_empty() {
            return Response::error(RC_AUTH_CONTEXT);
        }
        let rest = r.remaining();
        let params = r.take(rest, "parameters").unwrap_or_default();
        // `handles` holds `handle_count` entries (read above), and a command that needs
        // authorization got here only with at least one password.
        let result = match code {
            cc::GET_CAPABILITY => self.get_capability(params),
            cc::NV_READ_PUBLIC => self.nv_read_public(handles[0], params),
            cc::NV_READ => self.nv_read(handles[0], handles[1], &passwords[0], params),
            cc::NV_WRITE => self.nv_write(handles[0], handles[1], &passwords[0], params),
            cc::NV_DEFINE_SPACE => self.nv_define_space(handles[0], &passwords[0], params),
            cc::PCR_READ => self.pcr_read(params),
            cc::QUOTE => self.quote(handles[0], &passwords[0], params),
            cc::READ_PUBLIC => self.read_public(handles[0], params),
            _ => Err(rc::COMMAND_CODE),
        };
        match result {
            Ok(params) => Response::ok(params, tag == st::SESSIONS),
            Err(code) => Response::error(code),
        }
    }

    fn get_capability(&mut self, params: &[u8]) -> Result<Vec<u8>, u32> {
        let mut r = TpmReader::new(params);
        let capability = r.u32("capability").map_err(|_| rc::INSUFFICIENT)?;
        let property = r.u32("property").map_err(|_| rc::INSUFFICIENT)?;
        let count = r.u32("propertyCount").map_err(|_| rc::INSUFFICIENT)?;
        r.finish("parameters").map_err(|_| rc::SIZE)?;
        if capability != 6 {
            return Err(rc::VALUE | RC_P | RC_1);
        }
        // Sorted by tag: TPM_PT_NV_INDEX_MAX, TPM_PT_NV_BUFFER_MAX. The TPM lists what it has
        // from `property` on (Part 3 §30.2).
        let mut table = vec![(0x117u32, u32::from(self.nv_index_max))];
        if let Some(max) = self.nv_buffer_max {
            table.push((0x12C, u32::from(max)));
        }
        let listed: Vec<_> = table.iter().filter(|(t, _)| *t >= property).collect();
        let take = listed.len().min(count as usize);
        let mut w = TpmWriter::new();
        w.u8(u8::from(take < listed.len()))
            .u32(capability)
            .u32(take as u32);
        for (tag, value) in &listed[..take] {
            w.u32(*tag).u32(*value);
        }
        Ok(w.into_bytes())
    }

    fn nv_read_public(&mut self, index: u32, params: &[u8]) -> Result<Vec<u8>, u32> {
        if !params.is_empty() {
            return Err(rc::SIZE);
        }
        let nv = self.nv.get(&index).ok_or(rc::HANDLE | RC_1)?;
        let public = nv.public.to_bytes().map_err(|_| rc::FAILURE)?;
        let mut name = alg::SHA256.to_be_bytes().to_vec();
        name.extend_from_slice(digest(&SHA256, &public).as_ref());
        let mut w = TpmWriter::new();
        w.u16(public.len() as u16).bytes(&public);
        w.u16(name.len() as u16).bytes(&name);
        Ok(w.into_bytes())
    }

    /// Part 3 §31.13 / §31.7: who may read or write `index` with `auth_handle` and `password`.
    fn authorize(
        &self,
        auth_handle: u32,
        index: u32,
        password: &[u8],
        owner_bit: u32,
        auth_bit: u32,
    ) -> Result<(), u32> {
        let nv = self.nv.get(&index).ok_or(rc::HANDLE | RC_2)?;
        match auth_handle {
            rh::OWNER => {
                if nv.public.attributes & owner_bit == 0 {
                    return Err(rc::NV_AUTHORIZATION);
                }
                // The owner hierarchy has an empty password on these VMs, and hierarchies are
                // exempt from dictionary-attack protection.
                if !password.is_empty() {
                    return Err(rc::BAD_AUTH | RC_S | RC_1);
                }
            }
            h if h == index => {
                if nv.public.attributes & auth_bit == 0 {
                    return Err(rc::NV_AUTHORIZATION);
                }
                if password != nv.auth.as_slice() {
                    // A wrong password on an entity exempt from dictionary-attack protection is
                    // TPM_RC_BAD_AUTH, otherwise TPM_RC_AUTH_FAIL (the reference
                    // implementation's `IsDAExempted`; swtpm answers so).
                    let base = if nv.public.attributes & nv_attr::NO_DA != 0 {
                        rc::BAD_AUTH
                    } else {
                        rc::AUTH_FAIL
                    };
                    return Err(base | RC_S | RC_1);
                }
            }
            // The platform hierarchy belongs to the paravisor; the guest cannot use it.
            rh::PLATFORM => return Err(rc::HIERARCHY | RC_1),
            _ => return Err(rc::HANDLE | RC_1),
        }
        Ok(())
    }

    fn refresh_report(&mut self) {
        let ReportRefresh::OnRead { min_interval } = self.refresh else {
            return;
        };
        if self
            .last_refresh
            .is_some_and(|at| at.elapsed() <= min_interval)
        {
            return;
        }
        let mut user_data = [0u8; USER_DATA_LEN];
        if let Some(input) = self.nv.get(&HCL_USER_DATA_NV_INDEX).filter(|i| i.written()) {
            let n = input.data.len().min(USER_DATA_LEN);
            user_data[..n].copy_from_slice(&input.data[..n]);
        }
        let report = (self.paravisor)(&user_data);
        if let Some(nv) = self.nv.get_mut(&HCL_REPORT_NV_INDEX) {
            let mut data = report;
            data.resize(nv.data.len(), 0);
            nv.data = data;
        }
        self.last_refresh = Some(Instant::now());
        self.refreshes += 1;
    }

    fn nv_read(
        &mut self,
        auth_handle: u32,
        index: u32,
        password: &[u8],
        params: &[u8],
    ) -> Result<Vec<u8>, u32> {
        let mut r = TpmReader::new(params);
        let size = r.u16("size").map_err(|_| rc::INSUFFICIENT)?;
        let offset = r.u16("offset").map_err(|_| rc::INSUFFICIENT)?;
        r.finish("parameters").map_err(|_| rc::SIZE)?;
        self.authorize(
            auth_handle,
            index,
            password,
            nv_attr::OWNERREAD,
            nv_attr::AUTHREAD,
        )?;
        self.nv_reads.push(NvReadRecord {
            index,
            size,
            offset,
        });
        if index == HCL_REPORT_NV_INDEX && offset == 0 {
            self.refresh_report();
        }
        let nv = self.nv.get(&index).ok_or(rc::HANDLE | RC_2)?;
        if !nv.written() {
            return Err(rc::NV_UNINITIALIZED);
        }
        if self.nv_buffer_max.is_some_and(|max| size > max) {
            return Err(rc::VALUE | RC_P | RC_1);
        }
        let end = usize::from(offset) + usize::from(size);
        if end > nv.data.len() {
            return Err(rc::NV_RANGE);
        }
        let mut w = TpmWriter::new();
        w.u16(size).bytes(&nv.data[usize::from(offset)..end]);
        Ok(w.into_bytes())
    }

    fn nv_write(
        &mut self,
        auth_handle: u32,
        index: u32,
        password: &[u8],
        params: &[u8],
    ) -> Result<Vec<u8>, u32> {
        let mut r = TpmReader::new(params);
        let data = r.tpm2b("data").map_err(|_| rc::INSUFFICIENT)?;
        let offset = r.u16("offset").map_err(|_| rc::INSUFFICIENT)?;
        r.finish("parameters").map_err(|_| rc::SIZE)?;
        self.authorize(
            auth_handle,
            index,
            password,
            nv_attr::OWNERWRITE,
            nv_attr::AUTHWRITE,
        )?;
        if self
            .nv_buffer_max
            .is_some_and(|max| data.len() > usize::from(max))
        {
            return Err(rc::VALUE | RC_P | RC_1);
        }
        let nv = self.nv.get_mut(&index).ok_or(rc::HANDLE | RC_2)?;
        let end = usize::from(offset) + data.len();
        if end > nv.data.len() {
            return Err(rc::NV_RANGE);
        }
        nv.data[usize::from(offset)..end].copy_from_slice(data);
        nv.public.attributes |= nv_attr::WRITTEN;
        Ok(Vec::new())
    }

    fn nv_define_space(
        &mut self,
        auth_handle: u32,
        password: &[u8],
        params: &[u8],
    ) -> Result<Vec<u8>, u32> {
        if auth_handle != rh::OWNER {
            return Err(rc::HIERARCHY | RC_1);
        }
        if !password.is_empty() {
            return Err(rc::BAD_AUTH | RC_S | RC_1);
        }
        let mut r = TpmReader::new(params);
        let auth = r.tpm2b("auth").map_err(|_| rc::INSUFFICIENT)?.to_vec();
        let public = r.tpm2b("publicInfo").map_err(|_| rc::INSUFFICIENT)?;
        r.finish("parameters").map_err(|_| rc::SIZE)?;
        let public = NvPublic::parse(public).map_err(|_| rc::SIZE | RC_P | RC_2)?;
        // Part 3 §31.3: the caller may not set WRITTEN or PLATFORMCREATE under the owner, must
        // allow some read and some write, and stay within the index size limit.
        let a = public.attributes;
        let reads = nv_attr::PPREAD | nv_attr::OWNERREAD | nv_attr::AUTHREAD | nv_attr::POLICYREAD;
        let writes =
            nv_attr::PPWRITE | nv_attr::OWNERWRITE | nv_attr::AUTHWRITE | nv_attr::POLICYWRITE;
        if a & (nv_attr::WRITTEN | nv_attr::PLATFORMCREATE) != 0
            || a & reads == 0
            || a & writes == 0
        {
            return Err(rc::ATTRIBUTES | RC_P | RC_2);
        }
        if !(0x0100_0000..0x0200_0000).contains(&public.index) {
            return Err(rc::VALUE | RC_P | RC_2);
        }
        if public.data_size > self.nv_index_max {
            return Err(rc::SIZE | RC_P | RC_2);
        }
        if self.nv.contains_key(&public.index) {
            return Err(rc::NV_DEFINED);
        }
        let data = vec![0u8; usize::from(public.data_size)];
        self.nv.insert(public.index, NvIndex { public, auth, data });
        Ok(Vec::new())
    }

    fn pcr_read(&mut self, params: &[u8]) -> Result<Vec<u8>, u32> {
        let mut r = TpmReader::new(params);
        let selection = r
            .pcr_selection("pcrSelectionIn")
            .map_err(|_| rc::INSUFFICIENT)?;
        r.finish("parameters").map_err(|_| rc::SIZE)?;
        // Only the SHA-256 bank is allocated; at most eight digests go back (TPML_DIGEST), the
        // lowest first, with the selection out saying which.
        let mut out_bitmap = [0u8; 3];
        let mut digests = Vec::new();
        let mut sha256_selected = false;
        for (hash, bitmap) in &selection {
            if *hash != alg::SHA256 {
                continue;
            }
            sha256_selected = true;
            for i in 0..24usize {
                let selected = bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0);
                if selected && digests.len() < 8 {
                    out_bitmap[i / 8] |= 1 << (i % 8);
                    digests.push(self.pcrs[i]);
                }
            }
        }
        let mut w = TpmWriter::new();
        w.u32(self.pcr_update_counter);
        if sha256_selected {
            w.u32(1).u16(alg::SHA256).u8(3).bytes(&out_bitmap);
        } else {
            w.u32(0);
        }
        w.u32(digests.len() as u32);
        for d in &digests {
            w.u16(32).bytes(d);
        }
        Ok(w.into_bytes())
    }

    fn quote(&mut self, handle: u32, password: &[u8], params: &[u8]) -> Result<Vec<u8>, u32> {
        if handle != VTPM_AK_HANDLE || !self.ak_present {
            return Err(rc::HANDLE | RC_1);
        }
        if !password.is_empty() {
            return Err(rc::AUTH_FAIL | RC_S | RC_1);
        }
        let mut r = TpmReader::new(params);
        let qualifying = r
            .tpm2b("qualifyingData")
            .map_err(|_| rc::INSUFFICIENT)?
            .to_vec();
        let scheme = r.u16("inScheme").map_err(|_| rc::INSUFFICIENT)?;
        if scheme == alg::RSASSA {
            if r.u16("hashAlg").map_err(|_| rc::INSUFFICIENT)? != alg::SHA256 {
                return Err(rc::SCHEME | RC_P | RC_2);
            }
        } else if scheme != alg::NULL {
            return Err(rc::SCHEME | RC_P | RC_2);
        }
        let selection = r.pcr_selection("PCRselect").map_err(|_| rc::INSUFFICIENT)?;
        r.finish("parameters").map_err(|_| rc::SIZE)?;
        if qualifying.len() > 64 {
            return Err(rc::SIZE | RC_P | RC_1);
        }
        let mut hashed = Vec::new();
        for (hash, bitmap) in &selection {
            if *hash != alg::SHA256 {
                return Err(rc::HASH | RC_P | RC_3);
            }
            for i in 0..bitmap.len() * 8 {
                if bitmap[i / 8] & (1 << (i % 8)) != 0 {
                    let value = self.pcrs.get(i).ok_or(rc::VALUE | RC_P | RC_3)?;
                    hashed.extend_from_slice(value);
                }
            }
        }
        // TPMS_ATTEST (Part 2 §10.12.12) of type TPM_ST_ATTEST_QUOTE.
        let mut attest = TpmWriter::new();
        attest.u32(0xff54_4347).u16(0x8018);
        attest
            .u16(self.ak.qualified_name.len() as u16)
            .bytes(&self.ak.qualified_name);
        attest.u16(qualifying.len() as u16).bytes(&qualifying);
        attest.u64(self.clock).u32(1).u32(0).u8(1);
        attest.u64(0x2020_0312_0012_0003);
        attest.u32(selection.len() as u32);
        for (hash, bitmap) in &selection {
            attest.u16(*hash).u8(bitmap.len() as u8).bytes(bitmap);
        }
        attest.u16(32).bytes(digest(&SHA256, &hashed).as_ref());
        let attest = attest.into_bytes();
        let signature = SimAk::get().sign(&attest);
        let mut w = TpmWriter::new();
        w.u16(attest.len() as u16).bytes(&attest);
        w.u16(alg::RSASSA)
            .u16(alg::SHA256)
            .u16(signature.len() as u16)
            .bytes(&signature);
        if let Some(pcr) = self.extend_after_quote.pop_front() {
            self.extend_pcr(pcr, &[0x5a; 32]);
        }
        Ok(w.into_bytes())
    }

    fn read_public(&mut self, handle: u32, params: &[u8]) -> Result<Vec<u8>, u32> {
        if !params.is_empty() {
            return Err(rc::SIZE);
        }
        if handle != VTPM_AK_HANDLE || !self.ak_present {
            return Err(rc::HANDLE | RC_1);
        }
        let mut w = TpmWriter::new();
        w.u16(self.ak.public_area.len() as u16)
            .bytes(&self.ak.public_area);
        w.u16(self.ak.name.len() as u16).bytes(&self.ak.name);
        w.u16(self.ak.qualified_name.len() as u16)
            .bytes(&self.ak.qualified_name);
        Ok(w.into_bytes())
    }
}

/// The authorization area: password sessions only, each yielding its password.
fn parse_sessions(r: &mut TpmReader<'_>) -> Result<Vec<Vec<u8>>, u32> {
    let size = r.u32("authorizationSize").map_err(|_| rc::AUTHSIZE)?;
    let area = r
        .take(size as usize, "authorization")
        .map_err(|_| rc::AUTHSIZE)?;
    let mut a = TpmReader::new(area);
    let mut passwords = Vec::new();
    while a.remaining() > 0 {
        let parse = |a: &mut TpmReader<'_>| -> Result<(u32, usize, Vec<u8>), Malformed> {
            let handle = a.u32("sessionHandle")?;
            let nonce = a.tpm2b("nonce")?.len();
            a.u8("sessionAttributes")?;
            let hmac = a.tpm2b("hmac")?.to_vec();
            Ok((handle, nonce, hmac))
        };
        let (handle, nonce, password) = parse(&mut a).map_err(|_| rc::AUTHSIZE)?;
        if handle != rh::PW {
            return Err(rc::VALUE | RC_S | RC_1);
        }
        if nonce != 0 {
            return Err(rc::SIZE | RC_S | RC_1);
        }
        passwords.push(password);
    }
    if passwords.is_empty() {
        return Err(rc::AUTHSIZE);
    }
    Ok(passwords)
}

/// A response as the TPM marshals it (Part 1 "Command/Response Structure").
struct Response(Vec<u8>);

impl Response {
    fn error(code: u32) -> Response {
        let mut w = TpmWriter::new();
        w.u16(st::NO_SESSIONS).u32(HEADER_LEN as u32).u32(code);
        Response(w.into_bytes())
    }

    /// Success with `params`; with sessions, `parameterSize` and one password-session reply
    /// (empty nonce, `continueSession`, empty hmac).
    fn ok(params: Vec<u8>, sessions: bool) -> Response {
        let mut body = TpmWriter::new();
        if sessions {
            body.u32(params.len() as u32)
                .bytes(&params)
                .u16(0)
                .u8(1)
                .u16(0);
        } else {
            body.bytes(&params);
        }
        let tag = if sessions {
            st::SESSIONS
        } else {
            st::NO_SESSIONS
        };
        let mut w = TpmWriter::new();
        w.u16(tag)
            .u32((HEADER_LEN + body.len()) as u32)
            .u32(rc::SUCCESS)
            .bytes(body.as_bytes());
        Response(w.into_bytes())
    }
}

impl TpmTransport for FakeVtpm {
    fn transact(&mut self, command: &[u8]) -> io::Result<Vec<u8>> {
        let code = command
            .get(6..10)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        let fault = code.and_then(|code| {
            let at = self.faults.iter().position(|(c, _)| *c == code)?;
            Some(self.faults.remove(at).1)
        });
        if let Some(Fault::ResponseCode(code)) = fault {
            self.commands.push(command_code(command));
            return Ok(Response::error(code).0);
        }
        if let Some(Fault::Transport(kind)) = fault {
            self.commands.push(command_code(command));
            return Err(io::Error::new(kind, "injected transport failure"));
        }
        if let Some(Fault::Garbage(bytes)) = fault {
            self.commands.push(command_code(command));
            return Ok(bytes);
        }
        let mut response = self.execute(command).0;
        match fault {
            Some(Fault::Truncate) => {
                response.pop();
            }
            Some(Fault::WrongSize) => {
                let declared = (response.len() + 1) as u32;
                response[2..6].copy_from_slice(&declared.to_be_bytes());
            }
            _ => {}
        }
        Ok(response)
    }
}

fn command_code(command: &[u8]) -> u32 {
    command
        .get(6..10)
        .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_commands_and_bad_frames() {
        let mut fake = FakeVtpm::new();
        let mut w = TpmWriter::new();
        w.u16(st::NO_SESSIONS).u32(10).u32(0x0000_0144);
        let r = fake.transact(w.as_bytes()).unwrap();
        assert_eq!(r, Response::error(rc::COMMAND_CODE).0);
        let mut w = TpmWriter::new();
        w.u16(st::NO_SESSIONS).u32(11).u32(cc::PCR_READ);
        let r = fake.transact(w.as_bytes()).unwrap();
        assert_eq!(r, Response::error(rc::COMMAND_SIZE).0);
    }
}
