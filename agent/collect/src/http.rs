// SPDX-License-Identifier: AGPL-3.0-or-later
//! HTTP fetching with timeouts, bounded retries, an overall deadline and a response size cap.
