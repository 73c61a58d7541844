//! Asking a QEMU binary what it can do.
//!
//! A [`Prober`] turns an emulator path into a [`RawProbe`]: the QMP replies
//! the binary gave to a fixed list of questions, kept raw so that they can be
//! recorded once from a real binary and replayed in tests. The real prober,
//! [`QmpProber`], starts the binary with `-machine none` and talks QMP over
//! its standard input and output, once with KVM (when `/dev/kvm` is usable)
//! and once with TCG, both processes at the same time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Devices whose properties the capabilities need (`device-list-properties`).
pub const PROBED_DEVICES: &[&str] = &[
    "virtio-blk-pci",
    "virtio-net-pci",
    "virtio-scsi-pci",
    "virtio-rng-pci",
    "virtio-gpu-pci",
    "VGA",
    "qxl-vga",
    "usb-storage",
    "vhost-user-fs-device",
];

/// The QMP replies of one binary. Keys name the question
/// (`"<accel>/<command>[/<argument>]"`); values are the whole reply object
/// (`{"return": ...}` or `{"error": ...}`) as QEMU sent it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RawProbe {
    /// The emulator that answered.
    pub binary: PathBuf,
    /// The accelerators it was asked under, main one first (`kvm` or `tcg`).
    pub accels: Vec<String>,
    /// The QMP greeting of the main process.
    pub greeting: Value,
    /// The replies.
    pub replies: BTreeMap<String, Value>,
}

impl RawProbe {
    /// The `return` member of a reply, if the question was asked and answered.
    pub fn ret(&self, key: &str) -> Option<&Value> {
        self.replies.get(key)?.get("return")
    }
}

/// Something that can probe an emulator binary.
pub trait Prober: Send + Sync {
    /// Probes `binary`; `kvm` tells whether KVM is usable on this host.
    fn probe(&self, binary: &Path, kvm: bool) -> Result<RawProbe>;
}

fn qerr(code: ErrorNumber, msg: String) -> Error {
    Error::new(ErrorDomain::QEMU, code, msg)
}

/// The real prober: runs the binary.
#[derive(Clone, Debug)]
pub struct QmpProber {
    /// How long one probe may take before the binary is killed.
    pub timeout: Duration,
}

impl Default for QmpProber {
    fn default() -> Self {
        QmpProber {
            timeout: Duration::from_secs(30),
        }
    }
}

impl Prober for QmpProber {
    fn probe(&self, binary: &Path, kvm: bool) -> Result<RawProbe> {
        let deadline = Instant::now() + self.timeout;
        let accels: Vec<&str> = if kvm { vec!["kvm", "tcg"] } else { vec!["tcg"] };
        let results: Vec<Result<(Value, BTreeMap<String, Value>)>> = std::thread::scope(|s| {
            let handles: Vec<_> = accels
                .iter()
                .enumerate()
                .map(|(i, accel)| {
                    s.spawn(move || probe_one(binary, accel, i == 0, deadline, self.timeout))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(qerr(
                            ErrorNumber::INTERNAL_ERROR,
                            "probe thread panicked".into(),
                        ))
                    })
                })
                .collect()
        });
        let mut raw = RawProbe {
            binary: binary.to_path_buf(),
            accels: accels.iter().map(|a| a.to_string()).collect(),
            ..RawProbe::default()
        };
        for (i, r) in results.into_iter().enumerate() {
            let (greeting, replies) = r?;
            if i == 0 {
                raw.greeting = greeting;
            }
            raw.replies.extend(replies);
        }
        Ok(raw)
    }
}

/// A running QEMU with QMP on its standard input/output. Killed on drop.
struct QmpProcess {
    binary: PathBuf,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<std::io::Result<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
    deadline: Instant,
    timeout: Duration,
}

impl Drop for QmpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl QmpProcess {
    fn start(
        binary: &Path,
        accel: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<QmpProcess> {
        let mut child = Command::new(binary)
            .args(["-S", "-no-user-config", "-nodefaults", "-display", "none"])
            .args(["-machine", &format!("none,accel={accel}")])
            .args(["-qmp", "stdio"])
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Error::system(
                    ErrorDomain::QEMU,
                    format_args!("cannot execute binary {}", binary.display()),
                    &e,
                )
            })?;
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(qerr(
                ErrorNumber::INTERNAL_ERROR,
                "cannot set up pipes to QEMU".into(),
            ));
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) => {
                        if tx.send(Ok(line)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = (&mut stderr).take(64 * 1024).read_to_string(&mut s);
            s
        });
        Ok(QmpProcess {
            binary: binary.to_path_buf(),
            child,
            stdin,
            lines: rx,
            stderr: Some(stderr),
            deadline,
            timeout,
        })
    }

    /// What the process said on stderr (after it exited or was killed).
    fn stderr_text(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    fn fail_early(&mut self, waiting_for: &str) -> Error {
        // Its output ended: give the process a moment to finish exiting.
        let mut status = None;
        for _ in 0..100 {
            status = self.child.try_wait().ok().flatten();
            if status.is_some() || Instant::now() >= self.deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let err = self.stderr_text();
        let how = match status {
            Some(s) => format!("exited ({s})"),
            None => "closed its QMP channel".to_string(),
        };
        qerr(
            ErrorNumber::INTERNAL_ERROR,
            format!(
                "QEMU binary {} {how} while waiting for {waiting_for}{}",
                self.binary.display(),
                if err.is_empty() {
                    String::new()
                } else {
                    format!(": {err}")
                }
            ),
        )
    }

    /// The next JSON message that is not an event.
    fn read_message(&mut self, waiting_for: &str) -> Result<Value> {
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                return Err(self.timed_out(waiting_for));
            }
            match self.lines.recv_timeout(self.deadline - now) {
                Ok(Ok(line)) => {
                    let line = line.trim();
                    if line.is_empty() {
                        continue;
                    }
                    let v: Value = serde_json::from_str(line).map_err(|_| {
                        let shown: String = line.chars().take(120).collect();
                        qerr(
                            ErrorNumber::INTERNAL_ERROR,
                            format!(
                                "binary {} is not a QEMU emulator: unexpected output '{shown}' while waiting for {waiting_for}",
                                self.binary.display()
                            ),
                        )
                    })?;
                    if v.get("event").is_some() {
                        continue;
                    }
                    return Ok(v);
                }
                Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(self.fail_early(waiting_for))
                }
                Err(mpsc::RecvTimeoutError::Timeout) => return Err(self.timed_out(waiting_for)),
            }
        }
    }

    fn timed_out(&mut self, waiting_for: &str) -> Error {
        let _ = self.child.kill();
        qerr(
            ErrorNumber::OPERATION_TIMEOUT,
            format!(
                "QEMU binary {} did not answer {waiting_for} within {} s; killed it",
                self.binary.display(),
                self.timeout.as_secs_f64()
            ),
        )
    }

    fn greeting(&mut self) -> Result<Value> {
        let g = self.read_message("the QMP greeting")?;
        if g.get("QMP").is_none() {
            let _ = self.child.kill();
            return Err(qerr(
                ErrorNumber::INTERNAL_ERROR,
                format!(
                    "binary {} is not a QEMU emulator: it did not greet with QMP",
                    self.binary.display()
                ),
            ));
        }
        Ok(g)
    }

    /// Runs one command; returns the whole reply (`return` or `error`).
    fn execute(&mut self, cmd: &str, args: Option<Value>) -> Result<Value> {
        let mut msg = json!({ "execute": cmd });
        if let Some(a) = args {
            msg["arguments"] = a;
        }
        let mut line = msg.to_string();
        line.push('\n');
        if self
            .stdin
            .write_all(line.as_bytes())
            .and_then(|_| self.stdin.flush())
            .is_err()
        {
            return Err(self.fail_early(&format!("'{cmd}'")));
        }
        let reply = self.read_message(&format!("the reply to '{cmd}'"))?;
        if reply.get("return").is_none() && reply.get("error").is_none() {
            return Err(qerr(
                ErrorNumber::INTERNAL_ERROR,
                format!(
                    "binary {}: malformed QMP reply to '{cmd}'",
                    self.binary.display()
                ),
            ));
        }
        Ok(reply)
    }
}

/// Runs the questions of one accelerator against one process.
fn probe_one(
    binary: &Path,
    accel: &str,
    main: bool,
    deadline: Instant,
    timeout: Duration,
) -> Result<(Value, BTreeMap<String, Value>)> {
    let mut p = QmpProcess::start(binary, accel, deadline, timeout)?;
    let greeting = p.greeting()?;
    let r = p.execute("qmp_capabilities", None)?;
    if r.get("error").is_some() {
        return Err(qerr(
            ErrorNumber::INTERNAL_ERROR,
            format!(
                "binary {} refused QMP capabilities negotiation",
                binary.display()
            ),
        ));
    }
    let mut out = BTreeMap::new();
    fn ask(
        p: &mut QmpProcess,
        out: &mut BTreeMap<String, Value>,
        key: String,
        cmd: &str,
        args: Option<Value>,
    ) -> Result<Value> {
        let r = p.execute(cmd, args)?;
        out.insert(key, r.clone());
        Ok(r)
    }
    if main {
        for cmd in [
            "query-version",
            "query-target",
            "query-machines",
            "query-kvm",
            "query-commands",
            "qom-list-types",
            "query-qmp-schema",
            "query-command-line-options",
            "query-tpm-models",
            "query-tpm-types",
            "query-sev-capabilities",
            "query-sgx-capabilities",
        ] {
            ask(&mut p, &mut out, format!("{accel}/{cmd}"), cmd, None)?;
        }
        let target = out
            .get(&format!("{accel}/query-target"))
            .and_then(|v| v.pointer("/return/arch"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if target == "aarch64" || target == "arm" {
            ask(
                &mut p,
                &mut out,
                format!("{accel}/query-gic-capabilities"),
                "query-gic-capabilities",
                None,
            )?;
        }
        for dev in PROBED_DEVICES {
            ask(
                &mut p,
                &mut out,
                format!("{accel}/device-list-properties/{dev}"),
                "device-list-properties",
                Some(json!({ "typename": dev })),
            )?;
        }
    }
    let defs = ask(
        &mut p,
        &mut out,
        format!("{accel}/query-cpu-definitions"),
        "query-cpu-definitions",
        None,
    )?;
    let host = if accel == "kvm" { "host" } else { "max" };
    for ty in ["full", "static"] {
        ask(
            &mut p,
            &mut out,
            format!("{accel}/query-cpu-model-expansion/{ty}/{host}"),
            "query-cpu-model-expansion",
            Some(json!({ "type": ty, "model": { "name": host } })),
        )?;
    }
    // The static expansion of every named model gives its vendor and
    // features, needed to describe the host CPU in terms of a named model.
    // They do not depend on the accelerator (KVM only overrides the vendor),
    // so the TCG process asks while the KVM one does the rest.
    if accel != "tcg" {
        let _ = p.execute("quit", None);
        return Ok((greeting, out));
    }
    if let Some(list) = defs.get("return").and_then(Value::as_array) {
        let names: Vec<String> = list
            .iter()
            .filter_map(|d| d.get("name").and_then(Value::as_str))
            .filter(|n| crate::qemucaps::is_plain_cpu_model(n))
            .map(str::to_string)
            .collect();
        for name in names {
            ask(
                &mut p,
                &mut out,
                format!("{accel}/query-cpu-model-expansion/static/{name}"),
                "query-cpu-model-expansion",
                Some(json!({ "type": "static", "model": { "name": name } })),
            )?;
        }
    }
    let _ = p.execute("quit", None);
    Ok((greeting, out))
}

/// A prober that replays recorded replies from a directory of
/// `<binary file name>.json` files (each a serialised [`RawProbe`]).
#[derive(Clone, Debug)]
pub struct ReplayProber {
    /// Where the recordings are.
    pub dir: PathBuf,
}

impl Prober for ReplayProber {
    fn probe(&self, binary: &Path, _kvm: bool) -> Result<RawProbe> {
        // The recording tells what the recording host had; it is replayed as is.
        let name = binary.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let path = self.dir.join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::system(
                ErrorDomain::QEMU,
                format_args!("cannot read QMP recording '{}'", path.display()),
                &e,
            )
        })?;
        let mut raw: RawProbe = serde_json::from_str(&text).map_err(|e| {
            qerr(
                ErrorNumber::INTERNAL_ERROR,
                format!("malformed QMP recording '{}': {e}", path.display()),
            )
        })?;
        raw.binary = binary.to_path_buf();
        Ok(raw)
    }
}
