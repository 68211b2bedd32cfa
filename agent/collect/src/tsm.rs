// SPDX-License-Identifier: AGPL-3.0-or-later
//! configfs-tsm report client (Documentation/ABI/testing/configfs-tsm-report).
//!
//! INTERFACE CONTRACT (to be implemented):
//! - `trait ConfigFs { create_dir, read, write, remove_dir }` over absolute paths; errors are
//!   `std::io::Error` carrying the kernel errno (`raw_os_error()`).
//! - `RealConfigFs` implements it with `std::fs` (one `write` call per attribute).
//! - `TsmClient::new(fs, root)` then `get_report(&TsmRequest) -> Result<TsmReport, TsmError>`.
