// SPDX-License-Identifier: Apache-2.0
//! Everything in thimble that touches the outside world: the configfs-tsm report interface, the
//! `/dev/sev-guest` device and HTTP (Azure THIM, AMD KDS). Each lives behind a narrow trait shaped
//! like the kernel or service contract, so that the fakes in `thimble-sim` can stand in for it in
//! tests and in `--simulate` runs. Parsing and verification are not done here; they belong to the
//! pure crates `thimble-evidence` and `thimble-verify`.

pub mod acc;
pub mod cache;
pub mod endorse;
pub mod http;
pub mod intel;
pub mod qgs;
pub mod sev_guest;
pub mod tdx_guest;
pub mod tsm;
pub mod vtpm;
