// SPDX-License-Identifier: Apache-2.0
//! The configuration: one file (`/etc/thimble/config.toml`, or the file `THIMBLE_CONFIG` names),
//! `THIMBLE_*` environment variables and flags, in that order of precedence from weakest to
//! strongest, for the settings an operator sets once per machine rather than per run: where the
//! services are, the cache, the time limits, the verification policy and trusted paravisors, and
//! the verifier `attest` talks to. [`SETTINGS`] is the one table (docs/configuration.md prints
//! it); [`Config::load`] reads the file and the environment, [`Config::apply_collect`] and its
//! siblings fill in what the command line left unset, and `thimble config` shows the effective
//! values with where each came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;

use crate::args::{AttestArgs, CollectArgs, IntelServiceArg, PolicyArgs, VerifierArg};
use crate::error::CliError;

/// The file read when `THIMBLE_CONFIG` does not name another.
pub const DEFAULT_PATH: &str = "/etc/thimble/config.toml";
/// The environment variable naming the configuration file.
pub const PATH_ENV: &str = "THIMBLE_CONFIG";
/// Largest configuration file read.
const MAX_FILE_LEN: u64 = 64 * 1024;

/// One setting: its key in the file (`section.name`), its environment variable and its flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// `section.name` in the file.
    pub key: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// The flag it stands for (and the commands that have it).
    pub flag: &'static str,
    /// A list (a TOML array; comma-separated in the environment).
    pub list: bool,
    /// What it is.
    pub help: &'static str,
}

const fn setting(
    key: &'static str,
    env: &'static str,
    flag: &'static str,
    help: &'static str,
) -> Setting {
    Setting {
        key,
        env,
        flag,
        list: false,
        help,
    }
}

/// Every setting.
pub const SETTINGS: &[Setting] = &[
    setting(
        "collect.imds",
        "THIMBLE_IMDS",
        "--imds",
        "IMDS base URL (collect, exec, attest)",
    ),
    setting(
        "collect.kds",
        "THIMBLE_KDS",
        "--kds",
        "AMD KDS base URL (collect, exec, attest)",
    ),
    setting(
        "collect.intel_collateral",
        "THIMBLE_INTEL_COLLATERAL",
        "--intel-collateral",
        "TDX collateral service: thim or pcs (collect, exec, attest)",
    ),
    setting(
        "collect.intel_collateral_url",
        "THIMBLE_INTEL_COLLATERAL_URL",
        "--intel-collateral-url",
        "TDX collateral service base URL (collect, exec, attest)",
    ),
    setting(
        "collect.cache_dir",
        "THIMBLE_CACHE_DIR",
        "--cache-dir",
        "endorsement cache directory (collect, exec, attest)",
    ),
    setting(
        "collect.deadline",
        "THIMBLE_DEADLINE",
        "--deadline",
        "overall fetch deadline, seconds (collect, exec, attest)",
    ),
    setting(
        "collect.timeout",
        "THIMBLE_TIMEOUT",
        "--timeout",
        "timeout of each HTTP request, seconds (collect, exec, attest)",
    ),
    setting(
        "verify.policy",
        "THIMBLE_POLICY",
        "--policy",
        "policy file (verify)",
    ),
    Setting {
        key: "verify.paravisor_id_key_digests",
        env: "THIMBLE_PARAVISOR_ID_KEY_DIGESTS",
        flag: "--paravisor-id-key-digest",
        list: true,
        help: "Azure SEV-SNP paravisor signing key digests also trusted (verify)",
    },
    Setting {
        key: "verify.paravisor_mrtds",
        env: "THIMBLE_PARAVISOR_MRTDS",
        flag: "--paravisor-mrtd",
        list: true,
        help: "Azure TDX paravisor MRTDs also trusted (verify)",
    },
    setting(
        "attest.verifier",
        "THIMBLE_VERIFIER",
        "--verifier",
        "the verifier: maa, kbs, ita or veraison (attest)",
    ),
    setting(
        "attest.url",
        "THIMBLE_VERIFIER_URL",
        "--url",
        "the verifier's base URL (attest)",
    ),
    setting(
        "attest.api_key_file",
        "THIMBLE_ITA_API_KEY_FILE",
        "--api-key-file",
        "file holding the ITA API key (attest)",
    ),
    setting(
        "attest.resource",
        "THIMBLE_KBS_RESOURCE",
        "--resource",
        "KBS resource to fetch, REPOSITORY/TYPE/TAG (attest)",
    ),
    setting(
        "attest.resource_out",
        "THIMBLE_KBS_RESOURCE_OUT",
        "--resource-out",
        "where the KBS resource is written (attest)",
    ),
];

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The environment variable.
    Env(&'static str),
    /// The configuration file.
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Env(name) => write!(f, "environment {name}"),
            Source::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// A configured value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The value (a list has one element per item).
    pub items: Vec<String>,
    /// Where it came from.
    pub source: Source,
}

impl Value {
    fn one(&self) -> &str {
        self.items.first().map_or("", String::as_str)
    }
}

/// The file's and the environment's settings.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The file read, and whether it existed.
    pub path: Option<(PathBuf, bool)>,
    values: BTreeMap<&'static str, Value>,
}

impl Config {
    /// Reads the file (`THIMBLE_CONFIG`, else [`DEFAULT_PATH`] when it exists) and the
    /// environment, through `env` so that tests need not touch the process's.
    pub fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<Config, CliError> {
        let (path, required) = match env(PATH_ENV).filter(|p| !p.is_empty()) {
            Some(p) => (PathBuf::from(p), true),
            None => (PathBuf::from(DEFAULT_PATH), false),
        };
        let mut config = Config::default();
        let file = if path.exists() || required {
            let bytes = crate::io::read_input_at_most(&path, MAX_FILE_LEN)?;
            config.path = Some((path.clone(), true));
            parse_file(&path, &bytes)?
        } else {
            config.path = Some((path.clone(), false));
            BTreeMap::new()
        };
        for s in SETTINGS {
            let from_env = env(s.env).filter(|v| !v.trim().is_empty()).map(|v| Value {
                items: if s.list {
                    v.split(',')
                        .map(|i| i.trim().to_owned())
                        .filter(|i| !i.is_empty())
                        .collect()
                } else {
                    vec![v.trim().to_owned()]
                },
                source: Source::Env(s.env),
            });
            let value = from_env.or_else(|| {
                file.get(s.key).map(|items| Value {
                    items: items.clone(),
                    source: Source::File(path.clone()),
                })
            });
            if let Some(v) = value {
                config.values.insert(s.key, v);
            }
        }
        Ok(config)
    }

    /// The value of `key`, if configured.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// Fills in `collect`'s settings the command line left unset.
    pub fn apply_collect(&self, a: &mut CollectArgs, m: &ArgMatches) -> Result<(), CliError> {
        let unset = |id: &str| !given(m, id);
        if unset("imds") {
            if let Some(v) = self.get("collect.imds") {
                a.imds = Some(v.one().to_owned());
            }
        }
        if unset("kds") {
            if let Some(v) = self.get("collect.kds") {
                a.kds = Some(v.one().to_owned());
            }
        }
        if unset("intel_collateral") {
            if let Some(v) = self.get("collect.intel_collateral") {
                a.intel_collateral = Some(
                    <IntelServiceArg as clap::ValueEnum>::from_str(v.one(), true)
                        .map_err(|_| bad(v, "collect.intel_collateral", "thim or pcs"))?,
                );
            }
        }
        if unset("intel_collateral_url") {
            if let Some(v) = self.get("collect.intel_collateral_url") {
                a.intel_collateral_url = Some(v.one().to_owned());
            }
        }
        // `--no-cache` on the command line outweighs a configured directory.
        if unset("cache_dir") && !a.no_cache {
            if let Some(v) = self.get("collect.cache_dir") {
                a.cache_dir = Some(PathBuf::from(v.one()));
            }
        }
        for (id, key, field) in [
            ("deadline", "collect.deadline", &mut a.deadline),
            ("timeout", "collect.timeout", &mut a.timeout),
        ] {
            if unset(id) {
                if let Some(v) = self.get(key) {
                    *field = v
                        .one()
                        .parse::<u64>()
                        .map_err(|_| bad(v, key, "a whole number of seconds"))?;
                }
            }
        }
        Ok(())
    }

    /// Fills in `verify`'s settings the command line left unset.
    pub fn apply_verify(&self, a: &mut PolicyArgs, m: &ArgMatches) {
        if !given(m, "policy") {
            if let Some(v) = self.get("verify.policy") {
                a.policy = Some(PathBuf::from(v.one()));
            }
        }
        if !given(m, "paravisor_id_key_digest") {
            if let Some(v) = self.get("verify.paravisor_id_key_digests") {
                a.azure.paravisor_id_key_digest = v.items.clone();
            }
        }
        if !given(m, "paravisor_mrtd") {
            if let Some(v) = self.get("verify.paravisor_mrtds") {
                a.azure.paravisor_mrtd = v.items.clone();
            }
        }
    }

    /// Fills in `attest`'s settings the command line left unset (its collection settings too).
    pub fn apply_attest(&self, a: &mut AttestArgs, m: &ArgMatches) -> Result<(), CliError> {
        self.apply_collect(&mut a.collect, m)?;
        if !given(m, "verifier") {
            if let Some(v) = self.get("attest.verifier") {
                a.verifier = Some(
                    <VerifierArg as clap::ValueEnum>::from_str(v.one(), true)
                        .map_err(|_| bad(v, "attest.verifier", "maa, kbs, ita or veraison"))?,
                );
            }
        }
        let strings: [(&str, &str, &mut Option<String>); 2] = [
            ("url", "attest.url", &mut a.url),
            ("resource", "attest.resource", &mut a.resource),
        ];
        for (id, key, field) in strings {
            if !given(m, id) {
                if let Some(v) = self.get(key) {
                    *field = Some(v.one().to_owned());
                }
            }
        }
        let paths: [(&str, &str, &mut Option<PathBuf>); 2] = [
            ("api_key_file", "attest.api_key_file", &mut a.api_key_file),
            ("resource_out", "attest.resource_out", &mut a.resource_out),
        ];
        for (id, key, field) in paths {
            if !given(m, id) {
                if let Some(v) = self.get(key) {
                    *field = Some(PathBuf::from(v.one()));
                }
            }
        }
        Ok(())
    }
}

/// Whether `id` was given on the command line (not defaulted).
fn given(m: &ArgMatches, id: &str) -> bool {
    m.try_get_raw(id).is_ok() && m.value_source(id) == Some(ValueSource::CommandLine)
}

fn bad(v: &Value, key: &str, want: &str) -> CliError {
    CliError::Usage(format!(
        "{key} = {:?} (from {}) is not {want}",
        v.one(),
        v.source
    ))
}

/// The file's settings by key, every value as strings.
fn parse_file(path: &Path, bytes: &[u8]) -> Result<BTreeMap<&'static str, Vec<String>>, CliError> {
    let invalid = |reason: String| CliError::Usage(format!("{}: {reason}", path.display()));
    let text = std::str::from_utf8(bytes).map_err(|_| invalid("not UTF-8 text".into()))?;
    let table: toml::Table =
        toml::from_str(text).map_err(|e| invalid(format!("not valid TOML: {e}")))?;
    let mut out = BTreeMap::new();
    for (section, body) in &table {
        let toml::Value::Table(body) = body else {
            return Err(invalid(format!(
                "`{section}` is not a section ([collect], [verify] or [attest])"
            )));
        };
        for (name, value) in body {
            let key = format!("{section}.{name}");
            let Some(s) = SETTINGS.iter().find(|s| s.key == key) else {
                return Err(invalid(format!(
                    "unknown setting `{key}` (docs/configuration.md lists them)"
                )));
            };
            let items = match (value, s.list) {
                (toml::Value::String(v), false) => vec![v.clone()],
                (toml::Value::Integer(i), false) => vec![i.to_string()],
                (toml::Value::Array(a), true) => a
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid(format!("`{key}` holds something not a string")))?,
                _ => {
                    return Err(invalid(format!(
                        "`{key}` must be {}",
                        if s.list {
                            "an array of strings"
                        } else {
                            "a string or a number"
                        }
                    )));
                }
            };
            out.insert(s.key, items);
        }
    }
    Ok(out)
}

/// `thimble config`: the effective settings and where each came from.
pub fn run(a: crate::args::ConfigArgs) -> Result<u8, CliError> {
    let config = Config::load(&|name| std::env::var(name).ok())?;
    let (path, exists) = config
        .path
        .clone()
        .unwrap_or_else(|| (PathBuf::from(DEFAULT_PATH), false));
    if a.json {
        let settings: Vec<serde_json::Value> = SETTINGS
            .iter()
            .map(|s| {
                let v = config.get(s.key);
                serde_json::json!({
                    "key": s.key,
                    "value": v.map(|v| if s.list {
                        serde_json::json!(v.items)
                    } else {
                        serde_json::json!(v.one())
                    }),
                    "source": v.map_or("default".to_owned(), |v| match &v.source {
                        Source::Env(_) => "environment".to_owned(),
                        Source::File(_) => "file".to_owned(),
                    }),
                    "env": s.env,
                    "flag": s.flag,
                })
            })
            .collect();
        let out = serde_json::json!({
            "file": path.display().to_string(),
            "file_exists": exists,
            "settings": settings,
        });
        crate::output::print_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&out).unwrap_or_default()
        ));
        return Ok(crate::exit::OK);
    }
    let mut text = format!(
        "configuration file: {}{}\n",
        path.display(),
        if exists { "" } else { " (absent)" }
    );
    for s in SETTINGS {
        let line = match config.get(s.key) {
            Some(v) => format!("{} = {}    ({})\n", s.key, v.items.join(","), v.source),
            None => format!("{} unset    (flag {}, env {})\n", s.key, s.flag, s.env),
        };
        text.push_str(&line);
    }
    text.push_str("flags given on a command line override every value above\n");
    crate::output::print_stdout(&text);
    Ok(crate::exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        let p = path.to_str().unwrap().to_owned();
        (dir, p)
    }

    #[test]
    fn environment_outweighs_the_file() {
        let (_d, path) = file(
            "[collect]\nimds = \"http://file\"\ndeadline = 9\n[verify]\nparavisor_mrtds = [\"aa\", \"bb\"]\n",
        );
        let c = Config::load(&env(&[(PATH_ENV, &path), ("THIMBLE_IMDS", "http://env")])).unwrap();
        let imds = c.get("collect.imds").unwrap();
        assert_eq!(imds.items, vec!["http://env"]);
        assert_eq!(imds.source, Source::Env("THIMBLE_IMDS"));
        let deadline = c.get("collect.deadline").unwrap();
        assert_eq!(deadline.items, vec!["9"]);
        assert!(matches!(deadline.source, Source::File(_)));
        assert_eq!(
            c.get("verify.paravisor_mrtds").unwrap().items,
            vec!["aa", "bb"]
        );
        let c = Config::load(&env(&[
            (PATH_ENV, &path),
            ("THIMBLE_PARAVISOR_MRTDS", "cc, dd"),
        ]))
        .unwrap();
        assert_eq!(
            c.get("verify.paravisor_mrtds").unwrap().items,
            vec!["cc", "dd"]
        );
    }

    #[test]
    fn bad_files_are_refused_by_name() {
        for (text, needle) in [
            (
                "[collect]\nimdss = \"x\"\n",
                "unknown setting `collect.imdss`",
            ),
            ("imds = \"x\"\n", "not a section"),
            (
                "[verify]\nparavisor_mrtds = \"aa\"\n",
                "an array of strings",
            ),
            ("[collect\n", "not valid TOML"),
        ] {
            let (_d, path) = file(text);
            let e = Config::load(&env(&[(PATH_ENV, &path)])).unwrap_err();
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
        let e = Config::load(&env(&[(PATH_ENV, "/nonexistent/thimble.toml")])).unwrap_err();
        assert!(matches!(e, CliError::ReadInput { .. }), "{e}");
    }

    #[test]
    fn every_setting_has_a_unique_key_and_variable() {
        for (i, s) in SETTINGS.iter().enumerate() {
            assert!(s.env.starts_with("THIMBLE_"));
            for t in &SETTINGS[i + 1..] {
                assert_ne!(s.key, t.key);
                assert_ne!(s.env, t.env);
            }
        }
    }
}
