// SPDX-License-Identifier: Apache-2.0
//! Checks of the boot and deployment integrations (`initramfs/`, `deploy/`) that need no guest,
//! no root and no network: every shell script is shellcheck-clean and parses, the cloud-init
//! snippet passes `cloud-init schema`, the systemd unit passes `systemd-analyze verify`, the
//! Kubernetes manifests parse and keep to least privilege, the shared early-boot logic
//! (`initramfs/thimble-early.sh`) behaves as documented under dash and busybox sh against a fake
//! `/proc` and stub commands, and `build-test-initramfs.sh` builds an archive with the expected
//! files from a fake kernel tree.
//!
//! The tools come from Debian packages (`shellcheck`, `busybox-static`, `cloud-init`, `systemd`,
//! `python3-yaml`, `binutils`); a missing one fails its test with the `apt-get install` line.
//! Nothing here runs the real `modprobe` or `mount`, or sends a packet anywhere.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// The full path of `tool`, or a panic naming the Debian package that provides it.
fn require(tool: &str, package: &str) -> PathBuf {
    if tool.contains('/') {
        let p = PathBuf::from(tool);
        assert!(p.exists(), "{tool} is missing: apt-get install {package}");
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{tool}` is not installed: apt-get install {package}"))
}

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "thimble-deploy-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("create a temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn write_exec(path: &Path, text: &str) {
    fs::write(path, text).expect("write a script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod a script");
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every shell script of the integrations: files under initramfs/ and deploy/ that start with
/// a sh or bash shebang or a `# shellcheck shell=` line.
fn shell_scripts() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).expect("read a directory") {
            let p = e.expect("a directory entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if let Ok(s) = fs::read_to_string(&p) {
                let first = s.lines().next().unwrap_or("");
                if first.starts_with("#!/bin/sh")
                    || first.starts_with("#!/bin/bash")
                    || first.starts_with("# shellcheck shell=")
                {
                    out.push(p);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo().join("initramfs"), &mut out);
    walk(&repo().join("deploy"), &mut out);
    out.sort();
    out
}

#[test]
fn every_integration_script_is_found() {
    let found: Vec<String> = shell_scripts()
        .iter()
        .map(|p| {
            p.strip_prefix(repo())
                .expect("under the repo")
                .display()
                .to_string()
        })
        .collect();
    for want in [
        "initramfs/thimble-early.sh",
        "initramfs/build-test-initramfs.sh",
        "initramfs/initramfs-tools/hooks/thimble",
        "initramfs/initramfs-tools/scripts/init-premount/thimble",
        "initramfs/dracut/99thimble/module-setup.sh",
        "initramfs/dracut/99thimble/thimble-pre-mount.sh",
        "initramfs/test-initramfs/init",
        "initramfs/test-initramfs/udhcpc.script",
    ] {
        assert!(
            found.iter().any(|f| f == want),
            "{want} not among {found:?}"
        );
    }
}

#[test]
fn scripts_start_with_a_purpose_paragraph_and_spdx() {
    for p in shell_scripts() {
        let s = fs::read_to_string(&p).expect("read a script");
        let head: Vec<&str> = s.lines().take(4).collect();
        assert!(
            head.iter()
                .any(|l| l.starts_with("# SPDX-License-Identifier: Apache-2.0")),
            "{}: no SPDX line at the top",
            p.display()
        );
        let comment_lines = s
            .lines()
            .take(20)
            .filter(|l| l.starts_with("# ") && !l.contains("shellcheck") && !l.contains("SPDX"))
            .count();
        assert!(
            comment_lines >= 2,
            "{}: needs a comment paragraph on what it is for",
            p.display()
        );
    }
}

#[test]
fn shellcheck_is_clean() {
    let shellcheck = require("shellcheck", "shellcheck");
    let scripts = shell_scripts();
    let out = run(Command::new(&shellcheck)
        .args(["-x", "--severity=style"])
        .args(&scripts)
        .current_dir(repo()));
    assert!(
        out.status.success(),
        "shellcheck found problems:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // The script cloud-init writes, extracted from the YAML.
    let dir = TempDir::new("sc");
    let script = dir.0.join("thimble-cloud-init");
    fs::write(&script, cloud_init_script()).expect("write the cloud-init script");
    let out = run(Command::new(&shellcheck)
        .args(["--shell=sh", "--severity=style"])
        .arg(&script));
    assert!(
        out.status.success(),
        "shellcheck on the cloud-init script:\n{}",
        text(&out.stdout)
    );
}

#[test]
fn scripts_parse_under_every_shell_they_meet() {
    let busybox = require("busybox", "busybox-static");
    for p in shell_scripts() {
        let s = fs::read_to_string(&p).expect("read a script");
        let shells: Vec<Vec<String>> = if s.starts_with("#!/bin/bash") {
            vec![vec!["bash".into(), "-n".into()]]
        } else {
            vec![
                vec!["sh".into(), "-n".into()],
                vec![busybox.display().to_string(), "sh".into(), "-n".into()],
            ]
        };
        for shell in shells {
            let out = run(Command::new(&shell[0]).args(&shell[1..]).arg(&p));
            assert!(
                out.status.success(),
                "{:?} {}: {}",
                shell,
                p.display(),
                text(&out.stderr)
            );
        }
    }
}

// --- cloud-init -------------------------------------------------------------------------------

fn python() -> PathBuf {
    let p = if Path::new("/usr/bin/python3").exists() {
        PathBuf::from("/usr/bin/python3")
    } else {
        require("python3", "python3")
    };
    let out = run(Command::new(&p).args(["-c", "import yaml"]));
    assert!(
        out.status.success(),
        "{} cannot import yaml: apt-get install python3-yaml",
        p.display()
    );
    p
}

/// Every YAML document of `path`, as JSON.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let out = run(Command::new(python())
        .args([
            "-c",
            "import json, sys, yaml\n\
             print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(path));
    assert!(
        out.status.success(),
        "{} is not valid YAML: {}",
        path.display(),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

fn cloud_init_script() -> String {
    let docs = yaml_docs(&repo().join("initramfs/cloud-init/thimble.yaml"));
    docs[0]["write_files"][0]["content"]
        .as_str()
        .expect("write_files[0].content is the script")
        .to_string()
}

#[test]
fn cloud_init_snippet_passes_the_schema() {
    let cloud_init = require("cloud-init", "cloud-init");
    let snippet = repo().join("initramfs/cloud-init/thimble.yaml");
    let out = run(Command::new(cloud_init)
        .args(["schema", "--config-file"])
        .arg(&snippet));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success() && all.contains("Valid cloud-config"),
        "cloud-init schema: {all}"
    );
    let body = fs::read_to_string(&snippet).expect("read the snippet");
    assert!(body.starts_with("#cloud-config\n"));
    let docs = yaml_docs(&snippet);
    assert_eq!(
        docs[0]["runcmd"][0][0], "/usr/local/sbin/thimble-cloud-init",
        "runcmd runs the installed script"
    );
    let script = cloud_init_script();
    assert!(script.contains("/var/lib/thimble/evidence.json"));
    assert!(script.contains("sha256sum -c"), "downloads are checked");
}

// --- systemd -----------------------------------------------------------------------------------

#[test]
fn systemd_unit_verifies() {
    let analyze = require("systemd-analyze", "systemd");
    let units = ["/lib/systemd/system", "/usr/lib/systemd/system"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("sysinit.target").exists())
        .unwrap_or_else(|| panic!("no systemd unit directory: apt-get install systemd"));
    // A root with the system's units, the unit under test and stub executables, so that the
    // check needs no installed thimble and changes nothing on this machine.
    let root = TempDir::new("systemd");
    let sys = root.0.join("usr/lib/systemd/system");
    fs::create_dir_all(&sys).expect("mkdir");
    for e in fs::read_dir(&units).expect("read the unit directory") {
        let e = e.expect("an entry");
        if e.file_type().expect("a file type").is_file() {
            fs::copy(e.path(), sys.join(e.file_name())).expect("copy a unit");
        }
    }
    let etc = root.0.join("etc/systemd/system");
    fs::create_dir_all(&etc).expect("mkdir");
    fs::copy(
        repo().join("initramfs/systemd/thimble.service"),
        etc.join("thimble.service"),
    )
    .expect("copy the unit");
    for exe in ["usr/bin/thimble", "sbin/modprobe"] {
        let p = root.0.join(exe);
        fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        write_exec(&p, "#!/bin/sh\n");
    }
    let out = run(Command::new(analyze)
        .arg("verify")
        .arg(format!("--root={}", root.0.display()))
        .arg("thimble.service"));
    let stderr = text(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}{}",
        text(&out.stdout)
    );
    let unit = fs::read_to_string(etc.join("thimble.service")).expect("read the unit");
    for line in [
        "Type=oneshot",
        "After=network-online.target sys-kernel-config.mount",
        "Wants=network-online.target",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "DeviceAllow=/dev/sev-guest rw",
        "DeviceAllow=/dev/tdx_guest rw",
        "DeviceAllow=/dev/tpmrm0 rw",
        "RemainAfterExit=yes",
        "ExecStart=/usr/bin/thimble collect -o /run/thimble/evidence.json $THIMBLE_COLLECT_ARGS",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "thimble.service lacks {line:?}"
        );
    }
    assert!(
        !unit
            .lines()
            .any(|l| l.starts_with("ProtectKernelTunables=yes")),
        "ProtectKernelTunables=yes would make configfs-tsm read-only"
    );
}

// --- containers and Kubernetes -----------------------------------------------------------------

fn pod_spec(doc: &Value) -> &Value {
    &doc["spec"]["template"]["spec"]
}

/// The unprivileged shape every thimble container keeps in the base manifests.
fn assert_least_privilege(what: &str, c: &Value) {
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false, "{what}: privileged");
    assert_eq!(
        sc["allowPrivilegeEscalation"], false,
        "{what}: privilege escalation"
    );
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}: writable root");
    assert_eq!(
        sc["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{what}: capabilities"
    );
    assert_eq!(
        sc["seccompProfile"]["type"], "RuntimeDefault",
        "{what}: seccomp"
    );
    assert_eq!(c["command"][0], "/thimble", "{what}: command");
    assert_eq!(c["command"][1], "collect", "{what}: command");
}

fn host_paths(spec: &Value) -> Vec<(String, String)> {
    spec["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .map(|v| {
            let hp = &v["hostPath"];
            assert!(
                hp["type"].is_string(),
                "hostPath {} has no type check",
                hp["path"]
            );
            (
                hp["path"].as_str().expect("a hostPath").to_string(),
                hp["type"].as_str().expect("a type").to_string(),
            )
        })
        .collect()
}

#[test]
fn kubernetes_manifests_keep_to_least_privilege() {
    let k8s = repo().join("deploy/k8s");
    let job = &yaml_docs(&k8s.join("job.yaml"))[0];
    assert_eq!(job["kind"], "Job");
    let spec = pod_spec(job);
    assert_eq!(
        spec["nodeSelector"]["kubernetes.azure.com/security-type"],
        "ConfidentialVM"
    );
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_eq!(spec["restartPolicy"], "Never");
    let c = &spec["containers"][0];
    assert_least_privilege("job", c);
    assert!(
        c["command"]
            .as_array()
            .expect("a command")
            .iter()
            .any(|a| a == "--output=-"),
        "the job prints the bundle"
    );
    assert_eq!(
        host_paths(spec),
        vec![("/sys/kernel/config".to_string(), "Directory".to_string())]
    );

    let ds = &yaml_docs(&k8s.join("daemonset.yaml"))[0];
    assert_eq!(ds["kind"], "DaemonSet");
    let spec = pod_spec(ds);
    assert_eq!(
        spec["nodeSelector"]["kubernetes.azure.com/security-type"],
        "ConfidentialVM"
    );
    let collect = &spec["containers"][0];
    assert_least_privilege("daemonset container", collect);
    assert_eq!(
        spec["containers"].as_array().map(Vec::len),
        Some(1),
        "one container: thimble keeps running"
    );
    assert!(
        collect["command"]
            .as_array()
            .expect("a command")
            .iter()
            .any(|a| a == "--every=3600"),
        "the DaemonSet refreshes the bundle periodically"
    );
    assert_eq!(
        host_paths(spec),
        vec![
            ("/sys/kernel/config".to_string(), "Directory".to_string()),
            ("/run/thimble".to_string(), "DirectoryOrCreate".to_string()),
        ]
    );

    let kust = &yaml_docs(&k8s.join("kustomization.yaml"))[0];
    assert_eq!(
        kust["resources"],
        serde_json::json!(["job.yaml", "daemonset.yaml"])
    );

    // The Azure vTPM overlay adds exactly the device and the privilege it needs.
    let overlay = repo().join("deploy/k8s-azure-vtpm");
    let kust = &yaml_docs(&overlay.join("kustomization.yaml"))[0];
    assert_eq!(kust["resources"], serde_json::json!(["../k8s"]));
    for (file, container) in [
        ("job-vtpm.yaml", "containers"),
        ("daemonset-vtpm.yaml", "containers"),
    ] {
        let patch = &yaml_docs(&overlay.join(file))[0];
        let spec = pod_spec(patch);
        let c = &spec[container][0];
        assert_eq!(c["securityContext"]["privileged"], true, "{file}");
        assert!(
            c["securityContext"]["allowPrivilegeEscalation"].is_null(),
            "{file}"
        );
        assert_eq!(c["volumeMounts"][0]["mountPath"], "/dev/tpmrm0", "{file}");
        assert_eq!(
            host_paths(spec),
            vec![("/dev/tpmrm0".to_string(), "CharDevice".to_string())]
        );
    }
}

#[test]
fn containerfile_is_scratch_plus_the_binary() {
    let cf = fs::read_to_string(repo().join("deploy/Containerfile")).expect("read");
    let lines: Vec<&str> = cf
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(lines[0], "FROM scratch");
    assert_eq!(
        cf.lines().filter(|l| l.starts_with("FROM ")).count(),
        1,
        "one stage"
    );
    assert!(lines.contains(&"COPY thimble /thimble"));
    assert!(lines.contains(&r#"ENTRYPOINT ["/thimble", "exec", "--"]"#));
}

// --- thimble-early.sh --------------------------------------------------------------------------

/// A fake machine for thimble-early.sh: /proc, /run, the kernel log and stub commands that log
/// their arguments. The stub thimble exits with `STUB_RC` and writes the bundle on success.
struct Early {
    dir: TempDir,
    shell: Vec<String>,
}

struct EarlyRun {
    /// What thimble_early_main returned (0 go on, 1 stop the boot).
    main: i32,
    rc: i32,
    /// thimble_attest_rc: attest's exit code, empty when it did not run.
    attest_rc: String,
    stop_message: String,
    stdout: String,
    kmsg: String,
    calls: String,
    thimble_args: String,
    /// The arguments of `thimble attest`, empty when it did not run.
    attest_args: String,
    elapsed: Duration,
}

impl Early {
    fn new(shell: &[&str]) -> Self {
        let dir = TempDir::new("early");
        let d = &dir.0;
        for sub in ["proc/net", "run", "stub", "configfs", "etc"] {
            fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        fs::write(d.join("proc/mounts"), "proc /proc proc rw 0 0\n").expect("write");
        fs::write(d.join("kmsg"), "").expect("write");
        for cmd in ["modprobe", "mount", "ip"] {
            write_exec(
                &d.join("stub").join(cmd),
                &format!(
                    "#!/bin/sh\necho \"{cmd} $*\" >>\"{}\"\n",
                    d.join("calls").display()
                ),
            );
        }
        // collect logs its arguments to thimble-args and exits STUB_RC; attest logs its own to
        // attest-args, exits STUB_ATTEST_RC and, when that is 0, writes the token and the
        // resource where it is told to (under the caller's umask, as thimble would).
        write_exec(
            &d.join("stub/thimble"),
            &format!(
                "#!/bin/sh\n\
                 if [ \"$1\" = attest ]; then\n\
                 \techo \"$*\" >\"{attest_args}\"\n\
                 \t[ \"${{STUB_ATTEST_RC:-0}}\" = 0 ] || exit \"$STUB_ATTEST_RC\"\n\
                 \tfor a in \"$@\"; do\n\
                 \t\tcase \"$a\" in\n\
                 \t\t--token-out=*) echo token >\"${{a#*=}}\" ;;\n\
                 \t\t--resource-out=*) echo key >\"${{a#*=}}\" ;;\n\
                 \t\tesac\n\
                 \tdone\n\
                 \texit 0\n\
                 fi\n\
                 echo \"$*\" >\"{args}\"\n\
                 if [ \"${{STUB_RC:-0}}\" = 0 ]; then echo '{{}}' >\"{run}/evidence.json\"; fi\n\
                 exit \"${{STUB_RC:-0}}\"\n",
                args = d.join("thimble-args").display(),
                attest_args = d.join("attest-args").display(),
                run = d.join("run").display()
            ),
        );
        Early {
            dir,
            shell: shell.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.0.join(rel)
    }

    /// A default route on eth0 (so that nothing waits for the network).
    fn with_route(&self) -> &Self {
        fs::write(
            self.path("proc/net/route"),
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
             eth0\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
             eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
        )
        .expect("write");
        self
    }

    fn run(&self, cmdline: &str, stub_rc: i32, extra_env: &[(&str, &str)]) -> EarlyRun {
        fs::write(self.path("proc/cmdline"), format!("{cmdline}\n")).expect("write");
        let _ = fs::remove_file(self.path("calls"));
        let _ = fs::remove_file(self.path("thimble-args"));
        let _ = fs::remove_file(self.path("attest-args"));
        let script = "set -u\numask0=$(umask)\n. \"$EARLY\"\nthimble_early_main\nmain=$?\n\
                      echo \"@main=$main\"\necho \"@rc=$thimble_rc\"\n\
                      echo \"@attest_rc=$thimble_attest_rc\"\n\
                      echo \"@stop=$thimble_stop_message\"\n\
                      [ \"$(umask)\" = \"$umask0\" ] && echo @umask=kept || echo @umask=changed\n";
        let mut cmd = Command::new(&self.shell[0]);
        cmd.args(&self.shell[1..])
            .arg("-c")
            .arg(script)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("EARLY", repo().join("initramfs/thimble-early.sh"))
            .env("THIMBLE_PROC", self.path("proc"))
            .env("THIMBLE_KMSG", self.path("kmsg"))
            .env("THIMBLE_CONFIGFS", self.path("configfs"))
            .env("THIMBLE_RUN_DIR", self.path("run"))
            .env("THIMBLE_EARLY_CONF", self.path("etc/early.conf"))
            .env("THIMBLE_MODPROBE", self.path("stub/modprobe"))
            .env("THIMBLE_MOUNT", self.path("stub/mount"))
            .env("THIMBLE_IP", self.path("stub/ip"))
            .env("THIMBLE_BIN", self.path("stub/thimble"))
            .env("STUB_RC", stub_rc.to_string());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let start = Instant::now();
        let out = run(&mut cmd);
        let elapsed = start.elapsed();
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{:?}: {stdout}{}",
            self.shell,
            text(&out.stderr)
        );
        let field = |k: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("@{k}=")))
                .unwrap_or_else(|| panic!("no @{k}= in {stdout}"))
                .to_string()
        };
        let read = |rel: &str| fs::read_to_string(self.path(rel)).unwrap_or_default();
        assert_eq!(
            field("umask"),
            "kept",
            "{:?}: the caller's umask",
            self.shell
        );
        EarlyRun {
            main: field("main").parse().expect("a number"),
            rc: field("rc").parse().expect("a number"),
            attest_rc: field("attest_rc"),
            stop_message: field("stop"),
            kmsg: read("kmsg"),
            calls: read("calls"),
            thimble_args: read("thimble-args").trim_end().to_string(),
            attest_args: read("attest-args").trim_end().to_string(),
            stdout,
            elapsed,
        }
    }
}

/// dash (Debian's sh, as in dracut and klibc-like shells) and busybox sh (as in initramfs-tools
/// and the test initramfs).
fn shells() -> Vec<Vec<&'static str>> {
    let busybox = require("busybox", "busybox-static");
    let busybox: &'static str = Box::leak(busybox.display().to_string().into_boxed_str());
    vec![vec!["sh"], vec![busybox, "sh"]]
}

#[test]
fn early_success_passes_the_options_and_logs_one_line() {
    for sh in shells() {
        let e = Early::new(&sh);
        e.with_route();
        let r = e.run(
            "BOOT_IMAGE=/vmlinuz root=/dev/vda1 quiet thimble.nonce=0xabcd \
             thimble.imds=http://127.0.0.1:9 thimble.deadline=7 foo=*",
            0,
            &[],
        );
        assert_eq!((r.main, r.rc), (0, 0), "{sh:?}: {}", r.stdout);
        let out = e.path("run/evidence.json");
        assert_eq!(
            r.thimble_args,
            format!(
                "collect -o {} --no-cache --nonce=0xabcd --imds=http://127.0.0.1:9 --deadline=7",
                out.display()
            )
        );
        assert!(
            r.stdout
                .contains(&format!("thimble: evidence collected: {}", out.display())),
            "{}",
            r.stdout
        );
        assert!(
            r.kmsg.starts_with(&format!(
                "<6>thimble: evidence collected: {}",
                out.display()
            )),
            "{}",
            r.kmsg
        );
        assert!(!r.stdout.contains("waiting"), "a route exists: no wait");
        for m in ["configfs", "tsm", "tsm_report", "sev-guest", "tdx-guest"] {
            assert!(
                r.calls.contains(&format!("modprobe -q {m}\n")),
                "{}",
                r.calls
            );
        }
        assert!(
            r.calls.contains(&format!(
                "mount -t configfs configfs {}",
                e.path("configfs").display()
            )),
            "{}",
            r.calls
        );
        assert_eq!(
            fs::read_to_string(e.path("run/early-result")).expect("early-result"),
            "exit=0 required=0\n"
        );
    }
}

#[test]
fn early_failure_warns_and_continues_unless_required() {
    for sh in shells() {
        let e = Early::new(&sh);
        e.with_route();
        let r = e.run("thimble.deadline=3", 5, &[]);
        assert_eq!((r.main, r.rc), (0, 5), "{sh:?}");
        let line = "evidence collection failed (exit 5: endorsements could not be fetched or did \
                    not verify); continuing without";
        assert!(r.stdout.contains(line), "{}", r.stdout);
        assert!(r.kmsg.starts_with("<4>thimble: "), "{}", r.kmsg);
        assert!(r.stop_message.is_empty());

        let r = e.run("thimble.required=1", 3, &[]);
        assert_eq!((r.main, r.rc), (1, 3), "{sh:?}");
        assert_eq!(
            r.stop_message,
            "thimble: evidence collection failed (exit 3: no TEE evidence source) and \
             thimble.required=1: stopping the boot"
        );
        assert!(r.kmsg.starts_with("<3>thimble: "), "{}", r.kmsg);
        assert_eq!(
            fs::read_to_string(e.path("run/early-result")).expect("early-result"),
            "exit=3 required=1\n"
        );

        // A bare thimble.required counts; required success goes on.
        let r = e.run("thimble.required", 4, &[]);
        assert_eq!(r.main, 1, "{sh:?}");
        assert!(r.stop_message.contains("exit 4: collection failed"));
        let r = e.run("thimble.required=yes", 0, &[]);
        assert_eq!((r.main, r.rc), (0, 0), "{sh:?}");
    }
}

#[test]
fn early_kernel_command_line_overrides_the_baked_defaults() {
    for sh in shells() {
        let e = Early::new(&sh);
        e.with_route();
        fs::write(
            e.path("etc/early.conf"),
            "# defaults\nthimble.required=1 thimble.nonce=11\nthimble.deadline=9 # comment\n",
        )
        .expect("write");
        let r = e.run("thimble.required=0 thimble.nonce=22", 8, &[]);
        assert_eq!(r.main, 0, "{sh:?}: the command line said required=0");
        assert!(
            r.thimble_args.ends_with("--nonce=22 --deadline=9"),
            "{}",
            r.thimble_args
        );
        let r = e.run("quiet", 8, &[]);
        assert_eq!(r.main, 1, "{sh:?}: early.conf says required=1");
    }
}

#[test]
fn early_checks_its_own_inputs() {
    for sh in shells() {
        let e = Early::new(&sh);
        e.with_route();
        let r = e.run("thimble.deadline=abc thimble.bogus=1", 0, &[]);
        assert!(
            r.stdout
                .contains("thimble: ignoring thimble.deadline=abc: not a whole number of seconds"),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout
                .contains("thimble: ignoring unknown option thimble.bogus=1"),
            "{}",
            r.stdout
        );
        assert!(!r.thimble_args.contains("--deadline"), "{}", r.thimble_args);
        // No binary: exit 127, named as such.
        let missing = e.path("nothing/thimble");
        let missing = missing.to_str().expect("utf-8");
        let r = e.run("thimble.required=1", 0, &[("THIMBLE_BIN", missing)]);
        assert_eq!((r.main, r.rc), (1, 127), "{sh:?}: {}", r.stdout);
        assert!(
            r.stop_message.contains("thimble binary not found"),
            "{}",
            r.stop_message
        );
    }
}

#[test]
fn early_insecure_allow_simulated_is_passed_on_with_a_warning() {
    // The test-only option of the swtpm boot test: thimble collect gets
    // --insecure-allow-simulated, and every boot that has it says so first.
    let warning = "thimble: thimble.insecure-allow-simulated: trusting the simulation's test \
                   roots (testing only)";
    for sh in shells() {
        let e = Early::new(&sh);
        e.with_route();
        for on in [
            "thimble.insecure-allow-simulated=1",
            "thimble.insecure-allow-simulated",
        ] {
            let r = e.run(&format!("thimble.nonce=00 {on}"), 0, &[]);
            assert_eq!((r.main, r.rc), (0, 0), "{sh:?} {on}: {}", r.stdout);
            assert!(
                r.thimble_args
                    .ends_with("--nonce=00 --insecure-allow-simulated"),
                "{sh:?} {on}: {}",
                r.thimble_args
            );
            // Before anything else the early logic says (the fake kmsg keeps only the last
            // line; the QEMU boot test sees the kernel-log copy).
            assert_eq!(
                r.stdout.lines().next(),
                Some(warning),
                "{sh:?} {on}: {}",
                r.stdout
            );
        }
        // The kernel command line can take back what early.conf baked in.
        fs::write(
            e.path("etc/early.conf"),
            "thimble.insecure-allow-simulated=1\n",
        )
        .expect("write");
        let r = e.run("thimble.insecure-allow-simulated=0", 0, &[]);
        assert!(
            !r.thimble_args.contains("--insecure-allow-simulated"),
            "{sh:?}: {}",
            r.thimble_args
        );
        assert!(!r.stdout.contains("insecure"), "{sh:?}: {}", r.stdout);
    }
}

/// The `thimble:` lines the early logic printed (its standard output), in order.
fn early_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| l.starts_with("thimble: "))
        .collect()
}

/// The permission bits of `path` that others than its owner have.
fn group_other_bits(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o077
}

#[test]
fn early_attest_to_a_kbs_runs_after_collect_with_the_exact_arguments() {
    for sh in shells() {
        let e = Early::new(&sh);
        e.with_route();
        let run = e.path("run");
        let run = run.display();
        let r = e.run(
            "thimble.nonce=00 thimble.imds=http://127.0.0.1:9 thimble.deadline=7 \
             thimble.simulate=snp thimble.insecure-allow-simulated thimble.attest=kbs \
             thimble.attest.url=http://10.0.0.1:8080 thimble.attest.resource=default/key/disk",
            0,
            &[],
        );
        assert_eq!((r.main, r.rc), (0, 0), "{sh:?}: {}", r.stdout);
        assert_eq!(r.attest_rc, "0", "{sh:?}");
        // collect is unchanged; attest gets the same collection options but the nonce, which
        // the verifier's rule replaces.
        assert_eq!(
            r.thimble_args,
            format!(
                "collect -o {run}/evidence.json --no-cache --nonce=00 --imds=http://127.0.0.1:9 \
                 --deadline=7 --simulate=snp --insecure-allow-simulated"
            )
        );
        assert_eq!(
            r.attest_args,
            format!(
                "attest --verifier=kbs --url=http://10.0.0.1:8080 --resource=default/key/disk \
                 --resource-out={run}/resource --token-out={run}/token --no-cache \
                 --imds=http://127.0.0.1:9 --deadline=7 --simulate=snp --insecure-allow-simulated"
            )
        );
        assert_eq!(
            early_lines(&r.stdout),
            [
                "thimble: thimble.insecure-allow-simulated: trusting the simulation's test roots \
                 (testing only)",
                &format!("thimble: evidence collected: {run}/evidence.json"),
                &format!("thimble: attested to kbs; resource written to {run}/resource"),
            ],
            "{sh:?}"
        );
        assert_eq!(
            r.kmsg,
            format!("<6>thimble: attested to kbs; resource written to {run}/resource\n")
        );
        assert_eq!(
            fs::read_to_string(e.path("run/early-result")).expect("early-result"),
            "exit=0 required=0 attest=kbs attest_exit=0\n"
        );
        // The secrets are the owner's only, whatever the caller's umask (which is restored).
        assert_eq!(group_other_bits(&e.path("run/token")), 0, "{sh:?}");
        assert_eq!(group_other_bits(&e.path("run/resource")), 0, "{sh:?}");

        // Without a resource (or with one for a verifier that has none), the token is the
        // result; the other verifiers are passed on as they are.
        let r = e.run(
            "thimble.attest=maa thimble.attest.url=https://x.attest.azure.net \
             thimble.attest.resource=default/key/disk",
            0,
            &[],
        );
        assert_eq!((r.main, r.rc), (0, 0), "{sh:?}: {}", r.stdout);
        assert_eq!(
            r.attest_args,
            format!(
                "attest --verifier=maa --url=https://x.attest.azure.net \
                 --token-out={run}/token --no-cache"
            )
        );
        assert_eq!(
            early_lines(&r.stdout),
            [
                &format!("thimble: evidence collected: {run}/evidence.json"),
                "thimble: ignoring thimble.attest.resource: resources come from \
                 thimble.attest=kbs only",
                &format!("thimble: attested to maa; token written to {run}/token"),
            ],
            "{sh:?}"
        );
        for v in ["ita", "veraison"] {
            let r = e.run(
                &format!("thimble.attest={v} thimble.attest.url=https://v"),
                0,
                &[],
            );
            assert_eq!(r.attest_rc, "0", "{sh:?} {v}: {}", r.stdout);
            assert!(
                r.attest_args
                    .starts_with(&format!("attest --verifier={v} --url=https://v ")),
                "{}",
                r.attest_args
            );
        }
    }
}

#[test]
fn early_attest_failure_warns_and_continues_unless_required() {
    let opts = "thimble.attest=kbs thimble.attest.url=http://kbs:8080 \
                thimble.attest.resource=default/key/disk";
    for sh in shells() {
        let e = Early::new(&sh);
        e.with_route();
        let run = e.path("run");
        let run = run.display();
        // A resource left from an earlier run must not pass for this one's.
        fs::write(e.path("run/resource"), "old").expect("write");
        let r = e.run(opts, 0, &[("STUB_ATTEST_RC", "10")]);
        assert_eq!((r.main, r.rc, r.attest_rc.as_str()), (0, 0, "10"), "{sh:?}");
        assert_eq!(
            early_lines(&r.stdout).last().copied(),
            Some(
                format!(
                    "thimble: attestation to kbs failed (exit 10: verifier refused); continuing \
                     without {run}/resource (thimble.required=1 would stop the boot)"
                )
                .as_str()
            ),
            "{sh:?}: {}",
            r.stdout
        );
        assert!(r.kmsg.starts_with("<4>thimble: attestation to kbs failed"));
        assert!(r.stop_message.is_empty());
        assert!(!e.path("run/resource").exists(), "{sh:?}: the old resource");
        assert_eq!(
            fs::read_to_string(e.path("run/early-result")).expect("early-result"),
            "exit=0 required=0 attest=kbs attest_exit=10\n"
        );

        let r = e.run(
            &format!("{opts} thimble.required=1"),
            0,
            &[("STUB_ATTEST_RC", "9")],
        );
        assert_eq!((r.main, r.rc, r.attest_rc.as_str()), (1, 0, "9"), "{sh:?}");
        assert_eq!(
            r.stop_message,
            "thimble: attestation to kbs failed (exit 9: verifier unavailable) and \
             thimble.required=1: stopping the boot"
        );
        assert!(
            r.kmsg
                .starts_with("<3>thimble: attestation to kbs failed (exit 9: verifier unavailable); thimble.required=1: stopping the boot"),
            "{}",
            r.kmsg
        );
        assert_eq!(
            fs::read_to_string(e.path("run/early-result")).expect("early-result"),
            "exit=0 required=1 attest=kbs attest_exit=9\n"
        );
        // Required and attested: the boot goes on.
        let r = e.run(&format!("{opts} thimble.required=1"), 0, &[]);
        assert_eq!((r.main, r.attest_rc.as_str()), (0, "0"), "{sh:?}");

        // A failed collection skips attest (it would fail the same way) and decides alone.
        let r = e.run(opts, 3, &[]);
        assert_eq!((r.main, r.rc, r.attest_rc.as_str()), (0, 3, ""), "{sh:?}");
        assert_eq!(r.attest_args, "", "{sh:?}: attest did not run");
        assert!(
            r.stdout
                .contains("thimble: attestation to kbs skipped: evidence collection failed\n"),
            "{}",
            r.stdout
        );
        assert_eq!(
            fs::read_to_string(e.path("run/early-result")).expect("early-result"),
            "exit=3 required=0 attest=kbs attest_exit=skipped\n"
        );
        let r = e.run(&format!("{opts} thimble.required=1"), 3, &[]);
        assert_eq!(r.main, 1, "{sh:?}");
        assert!(
            r.stop_message
                .starts_with("thimble: evidence collection failed (exit 3"),
            "{}",
            r.stop_message
        );
    }
}

#[test]
fn early_attest_without_a_url_or_verifier_is_a_usage_error() {
    for sh in shells() {
        let e = Early::new(&sh);
        e.with_route();
        let r = e.run("thimble.attest=kbs thimble.attest.resource=a/b/c", 0, &[]);
        assert_eq!((r.main, r.rc, r.attest_rc.as_str()), (0, 0, "2"), "{sh:?}");
        assert_eq!(r.attest_args, "", "{sh:?}: thimble attest is not run");
        let lines = early_lines(&r.stdout);
        assert!(
            lines.contains(&"thimble: thimble.attest=kbs needs thimble.attest.url=URL"),
            "{}",
            r.stdout
        );
        assert!(
            lines.last().is_some_and(|l| l.starts_with(
                "thimble: attestation to kbs failed (exit 2: usage error: check the thimble.* \
                 options); continuing without"
            )),
            "{}",
            r.stdout
        );
        let r = e.run("thimble.attest=kbs thimble.required=1", 0, &[]);
        assert_eq!(r.main, 1, "{sh:?}");
        assert_eq!(
            r.stop_message,
            "thimble: attestation to kbs failed (exit 2: usage error: check the thimble.* \
             options) and thimble.required=1: stopping the boot"
        );
        // An unknown verifier is not run either.
        let r = e.run(
            "thimble.attest=trustee thimble.attest.url=http://x thimble.required=1",
            0,
            &[],
        );
        assert_eq!((r.main, r.attest_rc.as_str()), (1, "2"), "{sh:?}");
        assert_eq!(r.attest_args, "");
        assert!(
            r.stdout.contains(
                "thimble: thimble.attest=trustee is not a verifier (kbs, maa, ita or veraison)"
            ),
            "{}",
            r.stdout
        );
        // The kernel command line turns off what early.conf turned on.
        fs::write(
            e.path("etc/early.conf"),
            "thimble.attest=kbs thimble.attest.url=http://x\n",
        )
        .expect("write");
        for off in ["thimble.attest=0", "thimble.attest=", "thimble.attest=none"] {
            let r = e.run(off, 0, &[]);
            assert_eq!((r.main, r.attest_rc.as_str()), (0, ""), "{sh:?} {off}");
            assert_eq!(
                fs::read_to_string(e.path("run/early-result")).expect("early-result"),
                "exit=0 required=0\n"
            );
        }
        let r = e.run("", 0, &[]);
        assert_eq!(r.attest_rc, "0", "{sh:?}: early.conf's attest");
    }
}

#[test]
fn early_attest_waits_for_the_network_even_when_collection_would_not() {
    for sh in shells() {
        let e = Early::new(&sh);
        // No route: a simulated or offline guest still needs the network for the verifier.
        for (cmdline, why) in [
            ("thimble.simulate=snp", "the verifier"),
            ("thimble.offline=1", "the verifier"),
            ("", "THIM/KDS and the verifier"),
        ] {
            let r = e.run(
                &format!("{cmdline} thimble.deadline=1 thimble.attest=kbs thimble.attest.url=u"),
                0,
                &[],
            );
            assert!(
                r.stdout.contains(&format!(
                    "thimble: waiting up to 1 s for the network (for {why})\n"
                )),
                "{sh:?} {cmdline}: {}",
                r.stdout
            );
            assert_eq!(r.attest_rc, "0");
        }
    }
}

#[test]
fn early_attests_with_the_real_binary_to_a_kbs_emulator() {
    // The real thimble, simulating an SEV-SNP guest, against the KBS emulator on loopback: the
    // wiring of the options, the resource decrypted with the session key, and the verdicts.
    use thimble_collect::{CollectRequest, Environment as _, collect};
    use thimble_evidence::attest::Verifier;
    use thimble_sim::emulator::Emulator;
    use thimble_sim::verifiers::{VerifierConfig, VerifierEmulator};
    use thimble_sim::{SimEnvironment, SimMachine, insecure_trust_test_roots};

    let env = SimEnvironment::new(SimMachine::SnpDevice);
    let mut request = CollectRequest::default();
    insecure_trust_test_roots(&mut request);
    let collateral = collect(&env, &request, env.now())
        .expect("the simulated collateral")
        .bundle
        .endorsements;
    let mut config = VerifierConfig::sim(Verifier::Kbs, collateral, env.now());
    config.resources = vec![("default/key/disk".to_owned(), b"early disk key".to_vec())];
    let (routes, verdicts) = VerifierEmulator::new(config);
    let em = Emulator::start_routes(routes).expect("start the KBS emulator");

    let e = Early::new(&["sh"]);
    e.with_route();
    let bin = guest_tests::thimble_bin();
    let bin = bin.to_str().expect("utf-8");
    let r = e.run(
        &format!(
            "thimble.simulate=snp thimble.required=1 thimble.attest=kbs \
             thimble.attest.url={} thimble.attest.resource=default/key/disk",
            em.base_url()
        ),
        0,
        &[("THIMBLE_BIN", bin)],
    );
    assert_eq!(
        (r.main, r.rc, r.attest_rc.as_str()),
        (0, 0, "0"),
        "{}\n{:?}",
        r.stdout,
        verdicts.all()
    );
    assert_eq!(verdicts.all(), ["auth: ok", "attest: ok", "resource: ok"]);
    assert_eq!(
        fs::read(e.path("run/resource")).expect("the resource"),
        b"early disk key"
    );
    assert_eq!(group_other_bits(&e.path("run/resource")), 0);
    assert_eq!(group_other_bits(&e.path("run/token")), 0);
    let token = fs::read_to_string(e.path("run/token")).expect("the token");
    assert!(
        thimble_sim::verifiers::token_signature_valid(token.trim()),
        "{token}"
    );
}

#[test]
fn early_mounts_configfs_only_when_it_is_not_mounted() {
    for sh in shells() {
        let e = Early::new(&sh);
        e.with_route();
        fs::write(
            e.path("proc/mounts"),
            format!(
                "proc /proc proc rw 0 0\nconfigfs {} configfs rw,nosuid 0 0\n",
                e.path("configfs").display()
            ),
        )
        .expect("write");
        let r = e.run("", 0, &[]);
        assert!(!r.calls.contains("mount "), "{sh:?}: {}", r.calls);
    }
}

#[test]
fn early_network_wait_is_bounded_and_skipped_when_not_needed() {
    for sh in shells() {
        let e = Early::new(&sh);
        // No route at all: wait thimble.deadline seconds, then collect anyway.
        let r = e.run("thimble.deadline=1", 0, &[]);
        assert!(
            r.stdout
                .contains("thimble: waiting up to 1 s for the network"),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout
                .contains("no default route after 1 s; trying anyway"),
            "{}",
            r.stdout
        );
        assert_eq!(r.rc, 0);
        assert!(
            r.elapsed < Duration::from_secs(10),
            "{sh:?} waited {:?}",
            r.elapsed
        );
        // Offline and simulated runs fetch nothing, so they do not wait.
        let r = e.run("thimble.offline=1 thimble.deadline=30", 0, &[]);
        assert!(!r.stdout.contains("waiting"), "{}", r.stdout);
        assert!(r.thimble_args.ends_with("--deadline=30 --offline"));
        let r = e.run("thimble.simulate=snp", 0, &[]);
        assert!(!r.stdout.contains("waiting"), "{}", r.stdout);
        assert!(r.thimble_args.ends_with("--simulate=snp"));
        assert!(r.calls.contains("ip link set lo up"), "{}", r.calls);
        // A simulated guest given thimble.imds fetches THIM over the network (the QEMU boot
        // tests' emulator), so it waits like a real one, and still brings up lo for KDS.
        let r = e.run(
            "thimble.simulate=snp thimble.imds=http://169.254.169.254 thimble.deadline=1",
            0,
            &[],
        );
        assert!(
            r.stdout
                .contains("thimble: waiting up to 1 s for the network"),
            "{}",
            r.stdout
        );
        assert!(r.calls.contains("ip link set lo up"), "{}", r.calls);
        assert!(
            r.thimble_args
                .ends_with("--imds=http://169.254.169.254 --deadline=1 --simulate=snp"),
            "{}",
            r.thimble_args
        );
        let r = e.run(
            "thimble.simulate=snp thimble.imds=http://169.254.169.254 thimble.offline=1",
            0,
            &[],
        );
        assert!(!r.stdout.contains("waiting"), "{}", r.stdout);
        // An IPv6 default route is enough.
        fs::write(
            e.path("proc/net/ipv6_route"),
            "00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
             fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n",
        )
        .expect("write");
        let r = e.run("thimble.deadline=30", 0, &[]);
        assert!(!r.stdout.contains("waiting"), "{}", r.stdout);
    }
}

#[test]
fn early_runs_the_real_binary_in_a_simulated_guest() {
    // The real thimble against its loopback emulator: the wiring of options, not a stub's.
    let e = Early::new(&["sh"]);
    let bin = guest_tests::thimble_bin();
    let bin = bin.to_str().expect("utf-8");
    let r = e.run(
        "thimble.simulate=snp thimble.nonce=00112233 thimble.required=1",
        0,
        &[("THIMBLE_BIN", bin)],
    );
    assert_eq!((r.main, r.rc), (0, 0), "{}", r.stdout);
    let bundle: Value =
        serde_json::from_slice(&fs::read(e.path("run/evidence.json")).expect("the bundle"))
            .expect("the bundle is JSON");
    assert!(bundle.is_object());
    let out = guest_tests::thimble(&[
        "verify",
        "--insecure-allow-simulated",
        "--nonce",
        "00112233",
        e.path("run/evidence.json").to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "verify: {}", text(&out.stdout));
}

// --- build-test-initramfs.sh -------------------------------------------------------------------

/// A kernel module stand-in: busybox depmod and the build script read only `.modinfo` strings.
fn fake_module(depends: &str) -> Vec<u8> {
    format!("\x7fELF-fake\0license=GPL\0depends={depends}\0vermagic=9.9.9-test\0").into_bytes()
}

#[test]
fn build_test_initramfs_from_a_fake_kernel() {
    let busybox = require("busybox", "busybox-static");
    require("readelf", "binutils");
    let dir = TempDir::new("build");
    let kver = "9.9.9-test";
    let mods = dir.0.join("pkg/lib/modules").join(kver);
    for (rel, deps) in [
        ("kernel/fs/configfs/configfs.ko", ""),
        ("kernel/drivers/virt/coco/tsm.ko", "configfs"),
        ("kernel/drivers/virt/coco/sev-guest/sev-guest.ko", "tsm"),
        ("kernel/drivers/virt/coco/tdx-guest/tdx-guest.ko", "tsm"),
        ("kernel/drivers/net/virtio_net.ko", "net_failover"),
        ("kernel/drivers/net/net_failover.ko", "failover"),
        ("kernel/drivers/unrelated/unrelated.ko", ""),
    ] {
        let p = mods.join(rel);
        fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        fs::write(&p, fake_module(deps)).expect("write a module");
    }
    // One compressed module, and one dependency only a compressed file provides.
    let failover = mods.join("kernel/net/core/failover.ko");
    fs::create_dir_all(failover.parent().expect("a parent")).expect("mkdir");
    fs::write(&failover, fake_module("")).expect("write");
    let out = run(Command::new("gzip").arg("-n").arg(&failover));
    assert!(out.status.success(), "gzip: {}", text(&out.stderr));
    fs::write(
        mods.join("modules.builtin"),
        "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/char/tpm/tpm_crb.ko\n\
         kernel/drivers/char/tpm/tpm_tis.ko\n",
    )
    .expect("write");
    fs::create_dir_all(dir.0.join("pkg/boot")).expect("mkdir");
    fs::write(dir.0.join("pkg/boot/vmlinuz-9.9.9-test"), "kernel image").expect("write");

    let script = repo().join("initramfs/build-test-initramfs.sh");
    let cpio = dir.0.join("out.cpio.gz");
    let vmlinuz = dir.0.join("vmlinuz");
    // busybox is a static binary, so it can stand in for thimble here.
    let out = run(Command::new(&script)
        .arg(dir.0.join("pkg"))
        .arg(&busybox)
        .arg(&cpio)
        .args(["--cmdline", "thimble.simulate=snp", "--vmlinuz"])
        .arg(&vmlinuz));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "build: {stdout}{}", text(&out.stderr));
    assert!(stdout.contains("virtio_pci: built in"), "{stdout}");
    assert!(
        stdout.contains("tsm_report: not in this kernel (skipped)"),
        "{stdout}"
    );
    assert_eq!(
        fs::read_to_string(&vmlinuz).expect("vmlinuz copied"),
        "kernel image"
    );

    let list = run(Command::new("sh").arg("-c").arg(format!(
        "gzip -dc '{}' | '{}' cpio -t",
        cpio.display(),
        busybox.display()
    )));
    assert!(list.status.success(), "cpio -t: {}", text(&list.stderr));
    let files = text(&list.stdout);
    let m = format!("lib/modules/{kver}/");
    let want = [
        "init".to_string(),
        "bin/busybox".to_string(),
        "bin/sh".to_string(),
        "sbin/modprobe".to_string(),
        "usr/bin/thimble".to_string(),
        "usr/lib/thimble/thimble-early.sh".to_string(),
        "usr/share/udhcpc/default.script".to_string(),
        "etc/thimble/early.conf".to_string(),
        format!("{m}kernel/fs/configfs/configfs.ko"),
        format!("{m}kernel/drivers/virt/coco/tsm.ko"),
        format!("{m}kernel/drivers/virt/coco/sev-guest/sev-guest.ko"),
        format!("{m}kernel/drivers/virt/coco/tdx-guest/tdx-guest.ko"),
        format!("{m}kernel/drivers/net/virtio_net.ko"),
        format!("{m}kernel/drivers/net/net_failover.ko"),
        format!("{m}kernel/net/core/failover.ko"),
        format!("{m}modules.dep"),
        format!("{m}modules.builtin"),
    ];
    for w in &want {
        assert!(
            files.lines().any(|l| l == w),
            "{w} not in the archive:\n{files}"
        );
    }
    assert!(!files.contains("unrelated"), "only the modules needed");
    assert!(!files.lines().any(|l| l == "linuxrc"));

    // The archive unpacks to the tree the guest sees: modules.dep for busybox modprobe.
    let tree = dir.0.join("tree");
    fs::create_dir_all(&tree).expect("mkdir");
    let out = run(Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -dc '{}' | '{}' cpio -i -d",
            cpio.display(),
            busybox.display()
        ))
        .current_dir(&tree));
    assert!(out.status.success(), "cpio -i: {}", text(&out.stderr));
    let dep = fs::read_to_string(tree.join(&m).join("modules.dep")).expect("modules.dep");
    let sev = dep
        .lines()
        .find(|l| l.starts_with("kernel/drivers/virt/coco/sev-guest/sev-guest.ko:"))
        .unwrap_or_else(|| panic!("no sev-guest in modules.dep:\n{dep}"));
    assert!(
        sev.contains("tsm.ko") && sev.contains("configfs.ko"),
        "{sev}"
    );
    assert_eq!(
        fs::read(tree.join("usr/lib/thimble/thimble-early.sh")).expect("the early logic"),
        fs::read(repo().join("initramfs/thimble-early.sh")).expect("the source")
    );
    assert!(
        fs::read_to_string(tree.join("etc/thimble/early.conf"))
            .expect("early.conf")
            .contains("thimble.simulate=snp")
    );

    // Clear failures: no busybox, a dynamic binary, bad usage.
    let out = run(Command::new(&script)
        .arg(dir.0.join("pkg"))
        .arg(&busybox)
        .arg(&cpio)
        .args(["--busybox", "/nonexistent/busybox"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("apt-get install busybox-static"),
        "{}",
        text(&out.stderr)
    );
    let out = run(Command::new(&script)
        .arg(dir.0.join("pkg"))
        .arg(require("sh", "dash"))
        .arg(&cpio));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not static"),
        "{}",
        text(&out.stderr)
    );
    let out = run(Command::new(&script).arg("only-one-argument"));
    assert_eq!(out.status.code(), Some(2));
}
