// SPDX-License-Identifier: Apache-2.0
//! `/etc/sgx_default_qcnl.conf`, the configuration of Intel's quote provider library (QCNL),
//! which operators already maintain and thimble honours for TDX collateral: its two formats (JSON
//! with comments, and the legacy `NAME=VALUE` lines) parsed into the settings thimble uses or
//! reports. Parsing only; reading the file is `thimble-collect`'s (`intel::qcnl::load`).

use std::ffi::OsStr;
use std::path::PathBuf;

use serde_json::{Map, Value};

/// Where QCNL reads its configuration unless `$QCNL_CONF_PATH` says otherwise
/// (docs/formats.md §4.1 \[V\]).
pub const DEFAULT_QCNL_CONF_PATH: &str = "/etc/sgx_default_qcnl.conf";
/// Environment variable that moves the QCNL configuration file (docs/formats.md §4.1 \[V\]).
pub const QCNL_CONF_PATH_ENV: &str = "QCNL_CONF_PATH";

/// The two formats QCNL reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QcnlFormat {
    /// JSON with comments, current since DCAP 1.13.
    #[default]
    Json,
    /// `NAME=VALUE` lines with `#` comments, read by QCNL when the file is not JSON.
    Legacy,
}

/// The settings of a QCNL file that thimble uses or reports. Keys whose value has the wrong
/// type are skipped, as QCNL skips them, and listed in `ignored`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QcnlConfig {
    /// Which of the two formats the file is in.
    pub format: QcnlFormat,
    /// `pccs_url`: the PCCS (or collateral cache) QCNL asks for PCK certificates, and for
    /// collateral when `collateral_service` is absent.
    pub pccs_url: Option<String>,
    /// `collateral_service`: where QCNL fetches verification collateral.
    pub collateral_service: Option<String>,
    /// `local_pck_url`: the local PCK certificate agent (Azure's THIM behind IMDS).
    pub local_pck_url: Option<String>,
    /// `pccs_api_version`, reported only.
    pub pccs_api_version: Option<String>,
    /// `use_secure_cert`, reported only.
    pub use_secure_cert: Option<bool>,
    /// `retry_times`: retries after the first attempt.
    pub retry_times: Option<u32>,
    /// `retry_delay`, in seconds.
    pub retry_delay_secs: Option<u32>,
    /// `custom_request_options`.
    pub custom_request_options: Option<CustomRequestOptions>,
    /// What was skipped and why, e.g. `retry_times: not a non-negative integer`.
    pub ignored: Vec<String>,
}

/// Why the text of a QCNL file could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QcnlParseError {
    /// The JSON form does not parse once comments and trailing commas are removed.
    #[error("not valid JSON at line {line}, column {column}: {reason}")]
    Json {
        /// 1-based line in the file.
        line: usize,
        /// 1-based column in the file.
        column: usize,
        /// The JSON parser's message.
        reason: String,
    },
    /// A `/*` comment runs to the end of the file.
    #[error("the comment opened at line {line} is not closed")]
    UnterminatedComment {
        /// 1-based line of the `/*`.
        line: usize,
    },
    /// The JSON form is valid JSON, but not an object.
    #[error("the top level is not a JSON object")]
    NotAnObject,
}

/// The configuration path: `$QCNL_CONF_PATH` when set and not empty, else
/// [`DEFAULT_QCNL_CONF_PATH`] (docs/formats.md §4.1 \[V\]).
pub fn conf_path(env_value: Option<&OsStr>) -> PathBuf {
    match env_value {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_QCNL_CONF_PATH),
    }
}

/// Parses a QCNL file. A file whose first non-blank character is `{` is JSON, where QCNL's
/// parser (rapidjson with `kParseCommentsFlag`) allows `//` and `/* */` comments; trailing
/// commas are tolerated too, since a hand-edited file often has one and the intent is
/// clear. Anything else is the legacy `NAME=VALUE` format.
pub fn parse(text: &str) -> Result<QcnlConfig, QcnlParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        parse_json(text)
    } else {
        Ok(parse_legacy(text))
    }
}

fn parse_json(text: &str) -> Result<QcnlConfig, QcnlParseError> {
    let plain = strip_comments_and_trailing_commas(text)?;
    let value: Value = serde_json::from_str(&plain).map_err(|e| QcnlParseError::Json {
        line: e.line(),
        column: e.column(),
        reason: e.to_string(),
    })?;
    let Value::Object(map) = value else {
        return Err(QcnlParseError::NotAnObject);
    };
    let mut ignored = Vec::new();
    let use_secure_cert = match map.get("use_secure_cert") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            ignored.push("use_secure_cert: not a boolean".into());
            None
        }
    };
    let custom_request_options = match map.get("custom_request_options") {
        None => None,
        Some(Value::Object(o)) => Some(custom_options(o, &mut ignored)),
        Some(_) => {
            ignored.push("custom_request_options: not an object".into());
            None
        }
    };
    let c = QcnlConfig {
        format: QcnlFormat::Json,
        pccs_url: string(&map, "pccs_url", &mut ignored),
        collateral_service: string(&map, "collateral_service", &mut ignored),
        local_pck_url: string(&map, "local_pck_url", &mut ignored),
        pccs_api_version: string(&map, "pccs_api_version", &mut ignored),
        use_secure_cert,
        retry_times: count(&map, "retry_times", &mut ignored),
        retry_delay_secs: count(&map, "retry_delay", &mut ignored),
        custom_request_options,
        ignored,
    };
    Ok(c)
}

fn string(map: &Map<String, Value>, key: &str, ignored: &mut Vec<String>) -> Option<String> {
    match map.get(key) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            ignored.push(format!("{key}: not a string"));
            None
        }
    }
}

fn count(map: &Map<String, Value>, key: &str, ignored: &mut Vec<String>) -> Option<u32> {
    let value = map.get(key)?;
    match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
        Some(n) => Some(n),
        None => {
            ignored.push(format!("{key}: not a non-negative integer"));
            None
        }
    }
}

fn custom_options(o: &Map<String, Value>, ignored: &mut Vec<String>) -> CustomRequestOptions {
    let mut options = CustomRequestOptions::default();
    for (name, value) in o {
        if name != "get_cert" {
            ignored.push(format!(
                "custom_request_options.{name}: only get_cert is used"
            ));
            continue;
        }
        let Value::Object(get_cert) = value else {
            ignored.push("custom_request_options.get_cert: not an object".into());
            continue;
        };
        options.get_cert = RequestOptions {
            headers: string_pairs(get_cert, "headers", ignored),
            params: string_pairs(get_cert, "params", ignored),
        };
    }
    options
}

/// String members of object `key`; QCNL skips members that are not strings.
fn string_pairs(
    o: &Map<String, Value>,
    key: &str,
    ignored: &mut Vec<String>,
) -> Vec<(String, String)> {
    match o.get(key) {
        None => Vec::new(),
        Some(Value::Object(members)) => members
            .iter()
            .filter_map(|(name, value)| match value {
                Value::String(s) => Some((name.clone(), s.clone())),
                _ => {
                    ignored.push(format!(
                        "custom_request_options.get_cert.{key}.{name}: not a string"
                    ));
                    None
                }
            })
            .collect(),
        Some(_) => {
            ignored.push(format!(
                "custom_request_options.get_cert.{key}: not an object"
            ));
            Vec::new()
        }
    }
}

/// Blanks out comments and trailing commas, keeping every newline so that JSON error
/// positions still point into the original text.
fn strip_comments_and_trailing_commas(text: &str) -> Result<String, QcnlParseError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut in_string = false;
    // Position in `out` of a comma followed so far only by blanks.
    let mut pending_comma: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            out.push(b);
            if b == b'\\' {
                if let Some(&next) = bytes.get(i + 1) {
                    out.push(next);
                    i += 1;
                }
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match (b, bytes.get(i + 1)) {
            (b'/', Some(b'/')) => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    out.push(b' ');
                    i += 1;
                }
                continue;
            }
            (b'/', Some(b'*')) => {
                let line = 1 + bytes[..i].iter().filter(|&&c| c == b'\n').count();
                let Some(len) = bytes[i + 2..].windows(2).position(|w| w == b"*/") else {
                    return Err(QcnlParseError::UnterminatedComment { line });
                };
                let end = i + 2 + len + 2;
                out.extend(
                    bytes[i..end]
                        .iter()
                        .map(|&c| if c == b'\n' { b'\n' } else { b' ' }),
                );
                i = end;
                continue;
            }
            (b'"', _) => {
                in_string = true;
                pending_comma = None;
            }
            (b',', _) => pending_comma = Some(out.len()),
            (b'}' | b']', _) => {
                if let Some(p) = pending_comma.take() {
                    out[p] = b' ';
                }
            }
            (c, _) if c.is_ascii_whitespace() => {}
            _ => pending_comma = None,
        }
        out.push(b);
        i += 1;
    }
    // Only ASCII bytes were replaced, and only with ASCII, so the text is still UTF-8.
    String::from_utf8(out).map_err(|_| QcnlParseError::Json {
        line: 0,
        column: 0,
        reason: "not UTF-8 after removing comments".into(),
    })
}

/// The legacy format, read as QCNL's `QcnlConfigLegacy` does: whitespace removed, `#` lines
/// skipped, `NAME=VALUE` with upper-case names.
fn parse_legacy(text: &str) -> QcnlConfig {
    let mut c = QcnlConfig {
        format: QcnlFormat::Legacy,
        ..QcnlConfig::default()
    };
    for raw in text.lines() {
        let line: String = raw.chars().filter(|ch| !ch.is_whitespace()).collect();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let number = |ignored: &mut Vec<String>| match value.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                ignored.push(format!("{name}: not a non-negative integer"));
                None
            }
        };
        match name {
            "PCCS_URL" => c.pccs_url = Some(value.to_owned()),
            "COLLATERAL_SERVICE" => c.collateral_service = Some(value.to_owned()),
            "LOCAL_PCK_URL" => c.local_pck_url = Some(value.to_owned()),
            "PCCS_API_VERSION" => c.pccs_api_version = Some(value.to_owned()),
            "USE_SECURE_CERT" => {
                c.use_secure_cert = Some(!value.eq_ignore_ascii_case("false"));
            }
            "RETRY_TIMES" => c.retry_times = number(&mut c.ignored),
            "RETRY_DELAY" => c.retry_delay_secs = number(&mut c.ignored),
            _ => {}
        }
    }
    c
}

/// Request options QCNL applies to one kind of request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Extra query parameters, appended as `&name=value` without escaping, as QCNL does.
    pub params: Vec<(String, String)>,
}

/// QCNL's `custom_request_options`. Only `get_cert` (the PCK certificate request) has an effect,
/// as in QCNL (docs/formats.md §4.1 \[V\]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomRequestOptions {
    /// `get_cert`: the options of the PCK certificate request.
    pub get_cert: RequestOptions,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qcnl_json_with_comments_and_trailing_commas() {
        let text = r#"{
  // pccs_url is "quoted" here: // is not a comment inside a string
  "pccs_url": "https://pccs.example:8081/sgx/certification/v4/", /* block
  comment */ "retry_times": 2,
  "local_pck_url": "http://10.0.0.1//path",
  "custom_request_options": { "get_cert": { "headers": { "metadata": "true", }, }, },
}"#;
        let c = parse(text).unwrap();
        assert_eq!(c.format, QcnlFormat::Json);
        assert_eq!(
            c.pccs_url.as_deref(),
            Some("https://pccs.example:8081/sgx/certification/v4/")
        );
        assert_eq!(c.local_pck_url.as_deref(), Some("http://10.0.0.1//path"));
        assert_eq!(c.retry_times, Some(2));
        let options = c.custom_request_options.unwrap();
        assert_eq!(
            options.get_cert.headers,
            vec![("metadata".to_owned(), "true".to_owned())]
        );
    }

    #[test]
    fn qcnl_errors_point_at_the_line() {
        // The missing comma of QC's own sgx_default_qcnl_intelpcs.conf sample.
        let text = "{\n  // c\n  \"pccs_url\": \"x\"\n  \"retry_times\": 6\n}\n";
        match parse(text) {
            Err(QcnlParseError::Json { line, .. }) => assert_eq!(line, 4),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            parse("{ /* open"),
            Err(QcnlParseError::UnterminatedComment { line: 1 })
        ));
    }

    #[test]
    fn qcnl_conf_path() {
        use std::ffi::OsStr;
        assert_eq!(
            conf_path(None),
            std::path::PathBuf::from(DEFAULT_QCNL_CONF_PATH)
        );
        assert_eq!(
            conf_path(Some(OsStr::new(""))),
            std::path::PathBuf::from(DEFAULT_QCNL_CONF_PATH)
        );
        assert_eq!(
            conf_path(Some(OsStr::new("/tmp/q.conf"))),
            std::path::PathBuf::from("/tmp/q.conf")
        );
    }
}
