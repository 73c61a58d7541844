//! Running guests: starting QEMU, watching it over QMP, stopping it, and
//! finding it again after the daemon restarts.
//!
//! Each guest is a child process in its own session (`setsid`), so a
//! signal to the daemon's process group never reaches it and it outlives a
//! daemon that dies. Its stdout and stderr go to
//! `<state_dir>/log/qemu/NAME.log`; its private directory
//! `<state_dir>/run/qemu/domain-ID-NAME/` holds the master key and the QMP
//! socket. While it runs, `<state_dir>/run/qemu/NAME.xml` (the status
//! file, written atomically) records the live definition, the pid, the
//! monitor path and the state, which is all a new driver needs to
//! reconnect ([`QemuDriver::reconnect_all`]).
//!
//! Stopping follows libvirt's rules: a monitor that closes after QEMU
//! reported `SHUTDOWN` means the guest shut down (shutoff/shutdown,
//! event stopped/shutdown); without it, the guest crashed (shutoff/crashed,
//! event stopped/failed). With `-no-shutdown` QEMU only pauses when the
//! guest powers off, so the driver ends the process itself, as libvirt
//! does.

use std::io::{Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use ironvirt_conf::{DomainDef, FormatOptions};
use ironvirt_driver::{
    event, reason, DomainRef, DomainState, Error, ErrorDomain, ErrorNumber, Result, Uuid,
};
use serde_json::Value;

use crate::command::{self, CmdPaths};
use crate::driver::{DomainObj, QemuDriver};
use crate::qmp::{Handler, Qmp};

const DOM: ErrorDomain = ErrorDomain::QEMU;

/// How long a guest has to exit after SIGTERM before it gets SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(3);
/// How long QEMU has to open its monitor.
const MONITOR_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a monitor command may take.
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// What changes while a guest runs.
#[derive(Debug)]
pub(crate) struct VmState {
    /// The live definition (aliases, VNC port, pty paths filled in).
    pub def: DomainDef,
    pub state: DomainState,
    pub reason: i32,
    /// QEMU reported `SHUTDOWN`.
    pub got_shutdown: bool,
    /// A destroy is under way: EOF is expected.
    pub being_destroyed: bool,
    /// `virDomainReboot` asked for a power-down to be turned into a reset.
    pub fake_reboot: bool,
    /// Cleanup has run.
    pub stopped: bool,
    /// The process has been reaped (its pid may be reused: never signal it).
    pub reaped: bool,
}

/// A running guest.
pub(crate) struct Vm {
    pub id: i32,
    pub pid: i32,
    pub name: String,
    pub uuid: Uuid,
    pub paths: CmdPaths,
    /// Whether this process is QEMU's parent (it can and must reap it).
    pub our_child: bool,
    pub vnc_port: Option<u16>,
    pub qmp: Mutex<Option<Arc<Qmp>>>,
    pub st: Mutex<VmState>,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("id", &self.id)
            .field("pid", &self.pid)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn err(code: ErrorNumber, msg: impl Into<String>) -> Error {
    Error::new(DOM, code, msg)
}

fn not_running() -> Error {
    err(ErrorNumber::OPERATION_INVALID, "domain is not running")
}

impl Vm {
    fn qmp(&self) -> Result<Arc<Qmp>> {
        lock(&self.qmp).clone().ok_or_else(not_running)
    }

    /// A QMP command on this guest.
    pub fn execute(&self, cmd: &str, args: Option<Value>) -> Result<Value> {
        self.qmp()?.execute(cmd, args, CMD_TIMEOUT)
    }

    /// CPU time used by the process, in nanoseconds (`/proc/PID/stat`).
    pub fn cpu_time(&self) -> u64 {
        cpu_time(self.pid).unwrap_or(0)
    }

    pub fn dom_ref(&self) -> DomainRef {
        DomainRef {
            name: self.name.clone(),
            uuid: self.uuid,
            id: self.id,
        }
    }
}

fn cpu_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15 (1-based).
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let tck = if tck > 0 { tck as u64 } else { 100 };
    Some((utime + stime) * (1_000_000_000 / tck))
}

/// Whether `pid` runs and its command line mentions `uuid`.
fn is_our_qemu(pid: i32, uuid: &Uuid) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(b) => {
            let u = uuid.to_string();
            proc_alive(pid)
                && b.split(|c| *c == 0).any(|a| {
                    std::str::from_utf8(a).is_ok_and(|a| a == u || a.contains(&format!("{u},")))
                })
        }
        Err(_) => false,
    }
}

/// Whether `pid` exists and is not a zombie.
fn proc_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| !s[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn pidfd_open(pid: i32) -> Option<i32> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    (fd >= 0).then_some(fd as i32)
}

/// Waits up to `limit` for `pid` to exit; reaps it when it is our child.
/// Returns whether it is gone.
fn wait_exit(pid: i32, our_child: bool, pidfd: Option<i32>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let gone = |pid: i32| -> bool {
        if our_child {
            let mut status = 0;
            // SAFETY: waitpid on our own child with WNOHANG.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            r == pid
                || (r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
        } else {
            // A guest this process started before (a driver re-created in
            // the same process) is still our child: reap it if so.
            let mut status = 0;
            // SAFETY: waitpid with WNOHANG; ECHILD when it is not our child.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                return true;
            }
            // SAFETY: signal 0 only checks for existence.
            let r = unsafe { libc::kill(pid, 0) };
            (r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH))
                || !proc_alive(pid)
        }
    };
    loop {
        if gone(pid) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let left = deadline - now;
        match pidfd {
            Some(fd) => {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                let ms = left.as_millis().min(i32::MAX as u128) as i32;
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, ms.max(1)) };
            }
            None => std::thread::sleep(left.min(Duration::from_millis(2))),
        }
    }
}

fn close_fd(fd: Option<i32>) {
    if let Some(fd) = fd {
        // SAFETY: closing an fd we opened.
        unsafe { libc::close(fd) };
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm+0000`, as libvirt stamps its log lines.
fn timestamp() -> String {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let dd = doy - (153 * mp + 2) / 5 + 1;
    let mm = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mm <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{mm:02}-{dd:02} {:02}:{:02}:{:02}.{:03}+0000",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        d.subsec_millis()
    )
}

fn state_name(s: DomainState) -> &'static str {
    match s {
        DomainState::Running => "running",
        DomainState::Paused => "paused",
        DomainState::Shutdown => "shutdown",
        DomainState::Shutoff => "shutoff",
        DomainState::Crashed => "crashed",
        DomainState::PmSuspended => "pmsuspended",
        DomainState::Blocked => "blocked",
        DomainState::NoState => "nostate",
    }
}

fn state_from_name(s: &str) -> DomainState {
    match s {
        "running" => DomainState::Running,
        "paused" => DomainState::Paused,
        "shutdown" => DomainState::Shutdown,
        "pmsuspended" => DomainState::PmSuspended,
        "crashed" => DomainState::Crashed,
        _ => DomainState::NoState,
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// VNC ports handed out by any driver of this process (libvirt's port
/// allocator is process-wide too).
static VNC_PORTS: Mutex<Option<std::collections::HashSet<u16>>> = Mutex::new(None);

fn release_vnc_port(p: u16) {
    if let Some(s) = lock(&VNC_PORTS).as_mut() {
        s.remove(&p);
    }
}

fn reserve_vnc_port(p: u16) {
    lock(&VNC_PORTS)
        .get_or_insert_with(Default::default)
        .insert(p);
}

/// Binds a TCP port on every address to see whether it is free.
fn port_free(p: u16) -> bool {
    std::net::TcpListener::bind(("0.0.0.0", p)).is_ok()
}

/// Watches one guest's monitor for the driver.
struct MonitorHandler {
    drv: Weak<QemuDriver>,
    vm: Mutex<Weak<Vm>>,
}

impl Handler for MonitorHandler {
    fn event(&self, name: &str, data: &Value) {
        let (Some(drv), Some(vm)) = (self.drv.upgrade(), lock(&self.vm).upgrade()) else {
            return;
        };
        tracing::debug!(domain = %vm.name, event = name, "QEMU event");
        if name == "SHUTDOWN" {
            drv.handle_shutdown(&vm, data.get("guest").and_then(Value::as_bool));
        }
    }

    fn eof(&self) {
        let (Some(drv), Some(vm)) = (self.drv.upgrade(), lock(&self.vm).upgrade()) else {
            return;
        };
        drv.handle_eof(&vm);
    }
}

/// What to do when starting.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StartFlags {
    pub paused: bool,
}

impl QemuDriver {
    /// `<state_dir>/run/qemu`: status files and per-guest directories.
    pub fn run_dir(&self) -> PathBuf {
        self.config().state_dir.join("run/qemu")
    }

    /// `<state_dir>/log/qemu`: one log per guest.
    pub fn log_dir(&self) -> PathBuf {
        self.config().state_dir.join("log/qemu")
    }

    fn status_file(&self, name: &str) -> PathBuf {
        self.run_dir().join(format!("{name}.xml"))
    }

    /// The log file of a guest.
    pub fn log_file(&self, name: &str) -> PathBuf {
        self.log_dir().join(format!("{name}.log"))
    }

    fn cmd_paths(&self, id: i32, name: &str) -> CmdPaths {
        let d = command::domain_dir_name(id, name);
        CmdPaths {
            domain_dir: self.run_dir().join(&d),
            channel_dir: self.run_dir().join("channel").join(&d),
        }
    }

    /// The command line `def` would run with (`virConnectDomainXMLToNative`
    /// with format `qemu-argv`): id -1 and the VNC ports as written, as
    /// libvirt does for that API.
    pub fn domain_xml_to_native(&self, xml: &str) -> Result<String> {
        let mut def = DomainDef::parse(xml)?;
        self.apply_defaults(&mut def)?;
        self.validate_domain(&def)?;
        command::assign_aliases(&mut def);
        let paths = self.cmd_paths(-1, &def.name);
        Ok(command::build(&def, &paths)?.to_shell())
    }

    fn alloc_vnc_port(&self, skip: u16) -> Result<u16> {
        let mut used = lock(&VNC_PORTS);
        let used = used.get_or_insert_with(Default::default);
        for p in 5900u16.saturating_add(skip)..=65535u16 {
            if used.contains(&p) {
                continue;
            }
            if port_free(p) {
                used.insert(p);
                return Ok(p);
            }
        }
        Err(err(
            ErrorNumber::INTERNAL_ERROR,
            "Unable to find an unused port in range 'display' (5900-65535)",
        ))
    }

    /// Starts `def` (the live definition to be) under a new id. The
    /// caller has marked the domain as starting.
    pub(crate) fn start_process(&self, def: DomainDef, flags: StartFlags) -> Result<Arc<Vm>> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // Another process may take the VNC port between our check and
        // QEMU's bind: then try the next ones.
        let mut skip = 0;
        loop {
            match self.start_attempt(id, def.clone(), flags, skip) {
                Err(e) if skip < 8 && e.message.contains("Failed to find an available port") => {
                    skip += 1;
                }
                r => return r,
            }
        }
    }

    fn start_attempt(
        &self,
        id: i32,
        mut def: DomainDef,
        flags: StartFlags,
        skip: u16,
    ) -> Result<Arc<Vm>> {
        command::assign_aliases(&mut def);
        let paths = self.cmd_paths(id, &def.name);
        let mon = paths.monitor();
        if mon.as_os_str().len() >= 108 {
            return Err(err(
                ErrorNumber::INTERNAL_ERROR,
                format!(
                    "monitor socket path '{}' is too long for a unix socket",
                    mon.display()
                ),
            ));
        }
        let mut vnc_port = None;
        for g in &mut def.devices.graphics {
            if g.gtype == "vnc" && g.attr("autoport") != Some("no") {
                let p = self.alloc_vnc_port(skip)?;
                vnc_port = Some(p);
                g.set_attr("port", p.to_string());
            }
            if g.gtype == "vnc" {
                let l = command::vnc_listen(g);
                g.set_attr("listen", l.clone());
                if let Some(first) = g.listens.first_mut() {
                    if first.attr("type") == Some("address") && first.attr("address").is_none() {
                        first.attrs.push(("address".into(), l));
                    }
                }
            }
        }
        let res = self.spawn_and_connect(id, def, &paths, vnc_port, flags);
        if res.is_err() {
            if let Some(p) = vnc_port {
                release_vnc_port(p);
            }
            let _ = std::fs::remove_dir_all(&paths.domain_dir);
            let _ = std::fs::remove_dir_all(&paths.channel_dir);
        }
        res
    }

    fn spawn_and_connect(
        &self,
        id: i32,
        mut def: DomainDef,
        paths: &CmdPaths,
        vnc_port: Option<u16>,
        flags: StartFlags,
    ) -> Result<Arc<Vm>> {
        let sys = |what: String, e: std::io::Error| Error::system(DOM, what, &e);
        let qc = command::build(&def, paths)?;
        for d in [self.run_dir(), self.log_dir(), paths.domain_dir.clone()] {
            std::fs::create_dir_all(&d)
                .map_err(|e| sys(format!("cannot create directory '{}'", d.display()), e))?;
        }
        if !def.devices.channels.is_empty() {
            std::fs::create_dir_all(&paths.channel_dir).map_err(|e| {
                sys(
                    format!("cannot create directory '{}'", paths.channel_dir.display()),
                    e,
                )
            })?;
        }
        let _ = std::fs::remove_file(paths.monitor());
        command::write_master_key(&paths.master_key()).map_err(|e| {
            sys(
                format!(
                    "failed to write master key '{}'",
                    paths.master_key().display()
                ),
                e,
            )
        })?;
        let log_path = self.log_file(&def.name);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| {
                sys(
                    format!("failed to create logfile {}", log_path.display()),
                    e,
                )
            })?;
        let start_off = log.seek(std::io::SeekFrom::End(0)).unwrap_or(0);
        let _ = writeln!(
            log,
            "{}: starting up ironvirt (libvirt API 9.0.0), hostname: {}\n{}",
            timestamp(),
            crate::host::hostname(),
            qc.to_shell()
        );
        let out = log
            .try_clone()
            .map_err(|e| sys("failed to duplicate log fd".into(), e))?;
        let mut cmd = std::process::Command::new(&qc.binary);
        cmd.args(&qc.args)
            .env_clear()
            .envs(qc.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(log)
            .current_dir("/");
        // SAFETY: setsid is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| sys(format!("failed to execute '{}'", qc.binary.display()), e))?;
        let pid = child.id() as i32;
        // The Child is not kept: the driver reaps by pid (std never waits on drop).
        drop(child);
        tracing::info!(domain = %def.name, id, pid, "QEMU started");
        let pidfd = pidfd_open(pid);
        let kill_and_reap = || {
            // SAFETY: our unreaped child: the pid cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            wait_exit(pid, true, pidfd, Duration::from_secs(5));
        };
        let alive = || proc_alive(pid);
        let handler = Arc::new(MonitorHandler {
            drv: self.weak(),
            vm: Mutex::new(Weak::new()),
        });
        let qmp = match Qmp::connect(
            &paths.monitor(),
            Instant::now() + MONITOR_TIMEOUT,
            &alive,
            handler.clone(),
        ) {
            Ok(q) => q,
            Err(e) => {
                let exited = !alive();
                kill_and_reap();
                close_fd(pidfd);
                let text = read_log_from(&log_path, start_off);
                let msg = if exited {
                    format!("process exited while connecting to monitor: {text}")
                } else {
                    format!("{}: {text}", e.message)
                };
                return Err(err(ErrorNumber::INTERNAL_ERROR, msg.trim_end().to_string()));
            }
        };
        let setup = (|| -> Result<()> {
            let has_pty = def
                .devices
                .serials
                .iter()
                .chain(&def.devices.consoles)
                .chain(&def.devices.channels)
                .any(|c| c.chr_type == "pty");
            if has_pty {
                let list = qmp.execute("query-chardev", None, CMD_TIMEOUT)?;
                fill_pty_paths(&mut def, &list);
            }
            if !flags.paused {
                qmp.execute("cont", None, CMD_TIMEOUT)?;
            }
            Ok(())
        })();
        if let Err(e) = setup {
            qmp.close();
            kill_and_reap();
            close_fd(pidfd);
            return Err(e);
        }
        close_fd(pidfd);
        let (state, reason) = if flags.paused {
            (DomainState::Paused, reason::paused::USER)
        } else {
            (DomainState::Running, reason::running::BOOTED)
        };
        let vm = Arc::new(Vm {
            id,
            pid,
            name: def.name.clone(),
            uuid: def.uuid,
            paths: paths.clone(),
            our_child: true,
            vnc_port,
            qmp: Mutex::new(Some(qmp)),
            st: Mutex::new(VmState {
                def,
                state,
                reason,
                got_shutdown: false,
                being_destroyed: false,
                fake_reboot: false,
                stopped: false,
                reaped: false,
            }),
        });
        *lock(&handler.vm) = Arc::downgrade(&vm);
        if let Err(e) = self.write_status(&vm) {
            tracing::warn!(domain = %vm.name, error = %e, "cannot write status file");
        }
        Ok(vm)
    }

    /// Writes the status file of a running guest (atomically).
    pub(crate) fn write_status(&self, vm: &Vm) -> Result<()> {
        let (state, reason, xml) = {
            let st = lock(&vm.st);
            (
                st.state,
                st.reason,
                st.def.format(&FormatOptions {
                    id: Some(vm.id),
                    inactive: false,
                    secure: true,
                }),
            )
        };
        let mut s = format!(
            "<domstatus state='{}' reason='{reason}' pid='{}'>\n  <monitor path='{}' type='unix'/>\n  <ironvirt id='{}' domainDir='{}' channelDir='{}'",
            state_name(state),
            vm.pid,
            xml_escape(&vm.paths.monitor().to_string_lossy()),
            vm.id,
            xml_escape(&vm.paths.domain_dir.to_string_lossy()),
            xml_escape(&vm.paths.channel_dir.to_string_lossy()),
        );
        if let Some(p) = vm.vnc_port {
            s.push_str(&format!(" vncPort='{p}'"));
        }
        s.push_str("/>\n");
        for line in xml.lines() {
            s.push_str("  ");
            s.push_str(line);
            s.push('\n');
        }
        s.push_str("</domstatus>\n");
        let path = self.status_file(&vm.name);
        crate::cache::write_atomic(&path, s.as_bytes()).map_err(|e| {
            Error::system(
                DOM,
                format_args!("failed to write status file '{}'", path.display()),
                &e,
            )
        })
    }

    fn append_log(&self, name: &str, line: &str) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .open(self.log_file(name))
        {
            let _ = writeln!(f, "{}: {line}", timestamp());
        }
    }

    /// Ends the process: SIGTERM, then SIGKILL after the grace period.
    /// Returns once it is gone (and reaped when it is our child).
    fn kill_process(&self, vm: &Vm) {
        if lock(&vm.st).reaped {
            return;
        }
        let pidfd = pidfd_open(vm.pid);
        if pidfd.is_none() && !vm.our_child && !is_our_qemu(vm.pid, &vm.uuid) {
            // Gone already (or the pid is someone else's now).
            lock(&vm.st).reaped = true;
            return;
        }
        // SAFETY: the pid is unreaped (our child) or checked above.
        unsafe { libc::kill(vm.pid, libc::SIGTERM) };
        if !wait_exit(vm.pid, vm.our_child, pidfd, TERM_GRACE) {
            tracing::warn!(domain = %vm.name, pid = vm.pid, "QEMU ignored SIGTERM, sending SIGKILL");
            // SAFETY: as above; the process has not exited.
            unsafe { libc::kill(vm.pid, libc::SIGKILL) };
            wait_exit(vm.pid, vm.our_child, pidfd, Duration::from_secs(10));
        }
        close_fd(pidfd);
        lock(&vm.st).reaped = true;
    }

    /// Cleans up after a guest that is gone and records it as shut off.
    fn finish_stop(&self, vm: &Arc<Vm>, shutoff_reason: i32, detail: i32, why: &str) {
        {
            let mut st = lock(&vm.st);
            if st.stopped {
                return;
            }
            st.stopped = true;
            st.state = DomainState::Shutoff;
            st.reason = shutoff_reason;
        }
        if let Some(q) = lock(&vm.qmp).take() {
            q.close();
        }
        self.append_log(&vm.name, &format!("shutting down, reason={why}"));
        let _ = std::fs::remove_file(self.status_file(&vm.name));
        let _ = std::fs::remove_dir_all(&vm.paths.domain_dir);
        let _ = std::fs::remove_dir_all(&vm.paths.channel_dir);
        if let Ok(d) = std::fs::File::open(self.run_dir()) {
            let _ = d.sync_all();
        }
        if let Some(p) = vm.vnc_port {
            release_vnc_port(p);
        }
        {
            let mut doms = self.domains.write().unwrap_or_else(|p| p.into_inner());
            let remove = match doms.by_uuid.get_mut(&vm.uuid) {
                Some(o) if o.run.as_ref().is_some_and(|r| Arc::ptr_eq(r, vm)) => {
                    o.run = None;
                    o.shutoff_reason = shutoff_reason;
                    !o.persistent
                }
                _ => false,
            };
            if remove {
                if let Some(o) = doms.by_uuid.remove(&vm.uuid) {
                    doms.by_name.remove(&o.def.name);
                }
            }
        }
        tracing::info!(domain = %vm.name, id = vm.id, reason = why, "guest stopped");
        let mut r = vm.dom_ref();
        r.id = -1;
        self.emit(r, event::STOPPED, detail);
    }

    /// `virDomainDestroy`.
    pub(crate) fn destroy_vm(&self, vm: &Arc<Vm>) -> Result<()> {
        {
            let mut st = lock(&vm.st);
            if st.stopped || st.being_destroyed {
                return Err(not_running());
            }
            st.being_destroyed = true;
        }
        self.kill_process(vm);
        self.finish_stop(
            vm,
            reason::shutoff::DESTROYED,
            event::stopped::DESTROYED,
            "destroyed",
        );
        Ok(())
    }

    fn handle_shutdown(&self, vm: &Arc<Vm>, guest: Option<bool>) {
        let (emit, kill, reboot) = {
            let mut st = lock(&vm.st);
            if st.stopped {
                return;
            }
            let first = !st.got_shutdown;
            if st.fake_reboot && !st.being_destroyed {
                st.fake_reboot = false;
                (false, false, true)
            } else {
                st.got_shutdown = true;
                st.state = DomainState::Shutdown;
                st.reason = reason::shutdown::UNKNOWN;
                (first, first && !st.being_destroyed, false)
            }
        };
        if reboot {
            // A power-down asked for by virDomainReboot: reset and go on.
            let vm = vm.clone();
            let _ = std::thread::Builder::new()
                .name("qemu-fake-reboot".into())
                .spawn(move || {
                    if let Err(e) = vm
                        .execute("system_reset", None)
                        .and_then(|_| vm.execute("cont", None))
                    {
                        tracing::warn!(domain = %vm.name, error = %e, "fake reboot failed");
                    }
                });
            return;
        }
        if emit {
            let detail = match guest {
                Some(true) => event::shutdown::GUEST,
                Some(false) => event::shutdown::HOST,
                None => event::shutdown::FINISHED,
            };
            self.emit(vm.dom_ref(), event::SHUTDOWN, detail);
        }
        if kill {
            // With -no-shutdown QEMU only paused: end it (no wait; the
            // monitor's EOF finishes the stop).
            tracing::info!(domain = %vm.name, "guest shut down, stopping QEMU");
            if !lock(&vm.st).reaped {
                // SAFETY: the process is alive (it just sent an event) and unreaped.
                unsafe { libc::kill(vm.pid, libc::SIGTERM) };
            }
        }
    }

    fn handle_eof(&self, vm: &Arc<Vm>) {
        let got_shutdown = {
            let st = lock(&vm.st);
            if st.being_destroyed || st.stopped {
                return;
            }
            st.got_shutdown
        };
        // The process is on its way out: give it the grace period, then kill it.
        let pidfd = pidfd_open(vm.pid);
        if !wait_exit(vm.pid, vm.our_child, pidfd, TERM_GRACE) {
            close_fd(pidfd);
            self.kill_process(vm);
        } else {
            close_fd(pidfd);
            lock(&vm.st).reaped = true;
        }
        if got_shutdown {
            self.finish_stop(
                vm,
                reason::shutoff::SHUTDOWN,
                event::stopped::SHUTDOWN,
                "shutdown",
            );
        } else {
            self.finish_stop(
                vm,
                reason::shutoff::CRASHED,
                event::stopped::FAILED,
                "crashed",
            );
        }
    }

    /// `virDomainShutdown` / `virDomainReboot` through ACPI.
    pub(crate) fn powerdown_vm(&self, vm: &Vm, reboot: bool) -> Result<()> {
        {
            let mut st = lock(&vm.st);
            if st.stopped || st.being_destroyed {
                return Err(not_running());
            }
            st.fake_reboot = reboot;
        }
        vm.execute("system_powerdown", None).map(|_| ())
    }

    /// `virDomainSuspend`.
    pub(crate) fn suspend_vm(&self, vm: &Vm) -> Result<()> {
        {
            let st = lock(&vm.st);
            if st.stopped {
                return Err(not_running());
            }
            if st.state == DomainState::Paused {
                return Ok(());
            }
        }
        vm.execute("stop", None)?;
        {
            let mut st = lock(&vm.st);
            st.state = DomainState::Paused;
            st.reason = reason::paused::USER;
        }
        let _ = self.write_status(vm);
        self.emit(vm.dom_ref(), event::SUSPENDED, event::suspended::PAUSED);
        Ok(())
    }

    /// `virDomainResume`.
    pub(crate) fn resume_vm(&self, vm: &Vm) -> Result<()> {
        {
            let st = lock(&vm.st);
            if st.stopped {
                return Err(not_running());
            }
            if st.state != DomainState::Paused {
                return Ok(());
            }
        }
        vm.execute("cont", None)?;
        {
            let mut st = lock(&vm.st);
            st.state = DomainState::Running;
            st.reason = reason::running::UNPAUSED;
        }
        let _ = self.write_status(vm);
        self.emit(vm.dom_ref(), event::RESUMED, event::resumed::UNPAUSED);
        Ok(())
    }

    /// `virDomainReset`.
    pub(crate) fn reset_vm(&self, vm: &Vm) -> Result<()> {
        if lock(&vm.st).stopped {
            return Err(not_running());
        }
        vm.execute("system_reset", None).map(|_| ())
    }

    /// Reads every status file and reconnects to the guests that still
    /// run; the others are recorded as crashed and their files removed.
    pub(crate) fn reconnect_all(&self) {
        let Ok(rd) = std::fs::read_dir(self.run_dir()) else {
            return;
        };
        let mut max_id = 0;
        for e in rd.flatten() {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("xml") || !path.is_file() {
                continue;
            }
            match self.reconnect_one(&path) {
                Ok(Some(id)) => max_id = max_id.max(id),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot reconnect to guest");
                }
            }
        }
        let cur = self.next_id.load(std::sync::atomic::Ordering::SeqCst);
        if max_id + 1 > cur {
            self.next_id
                .store(max_id + 1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn reconnect_one(&self, path: &Path) -> Result<Option<i32>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::system(DOM, format_args!("cannot read '{}'", path.display()), &e)
        })?;
        let doc = roxmltree::Document::parse(&text).map_err(|e| {
            err(
                ErrorNumber::XML_ERROR,
                format!("malformed status file '{}': {e}", path.display()),
            )
        })?;
        let root = doc.root_element();
        let bad = |what: &str| {
            err(
                ErrorNumber::INTERNAL_ERROR,
                format!("status file '{}': {what}", path.display()),
            )
        };
        let pid: i32 = root
            .attribute("pid")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| bad("no pid"))?;
        let state = state_from_name(root.attribute("state").unwrap_or(""));
        let st_reason: i32 = root
            .attribute("reason")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let ours = root
            .children()
            .find(|n| n.has_tag_name("ironvirt"))
            .ok_or_else(|| bad("no ironvirt element"))?;
        let id: i32 = ours
            .attribute("id")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| bad("no id"))?;
        let domain_dir = PathBuf::from(
            ours.attribute("domainDir")
                .ok_or_else(|| bad("no domainDir"))?,
        );
        let channel_dir = PathBuf::from(ours.attribute("channelDir").unwrap_or(""));
        let vnc_port: Option<u16> = ours.attribute("vncPort").and_then(|p| p.parse().ok());
        let dnode = root
            .children()
            .find(|n| n.has_tag_name("domain"))
            .ok_or_else(|| bad("no domain"))?;
        let mut def = DomainDef::from_node(dnode)?;
        command::assign_aliases(&mut def);
        if let Some(p) = vnc_port {
            for g in &mut def.devices.graphics {
                if g.gtype == "vnc" {
                    g.set_attr("port", p.to_string());
                    break;
                }
            }
        }
        let paths = CmdPaths {
            domain_dir,
            channel_dir,
        };
        let name = def.name.clone();
        let uuid = def.uuid;
        let gone = |drv: &QemuDriver| {
            tracing::info!(domain = %name, pid, "guest process is gone; marking it shut off");
            let mut status = 0;
            // SAFETY: waitpid with WNOHANG reaps it only if it is our child.
            unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            let _ = std::fs::remove_file(path);
            let _ = std::fs::remove_dir_all(&paths.domain_dir);
            let _ = std::fs::remove_dir_all(&paths.channel_dir);
            drv.append_log(&name, "shutting down, reason=crashed");
            let mut doms = drv.domains.write().unwrap_or_else(|p| p.into_inner());
            if let Some(o) = doms.by_uuid.get_mut(&uuid) {
                o.shutoff_reason = reason::shutoff::CRASHED;
            }
        };
        if !is_our_qemu(pid, &uuid) {
            gone(self);
            return Ok(None);
        }
        let handler = Arc::new(MonitorHandler {
            drv: self.weak(),
            vm: Mutex::new(Weak::new()),
        });
        let qmp = match Qmp::connect(
            &paths.monitor(),
            Instant::now() + Duration::from_secs(5),
            &|| is_our_qemu(pid, &uuid),
            handler.clone(),
        ) {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(domain = %name, error = %e, "cannot reconnect to the monitor; killing the guest");
                let vm = Vm {
                    id,
                    pid,
                    name: name.clone(),
                    uuid,
                    paths: paths.clone(),
                    our_child: false,
                    vnc_port: None,
                    qmp: Mutex::new(None),
                    st: Mutex::new(VmState {
                        def,
                        state,
                        reason: st_reason,
                        got_shutdown: false,
                        being_destroyed: true,
                        fake_reboot: false,
                        stopped: false,
                        reaped: false,
                    }),
                };
                self.kill_process(&vm);
                gone(self);
                return Ok(None);
            }
        };
        // The state QEMU is really in.
        let status = qmp
            .execute("query-status", None, CMD_TIMEOUT)
            .ok()
            .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        let (state, st_reason, got_shutdown) = match status.as_str() {
            "running" => (
                DomainState::Running,
                if state == DomainState::Running {
                    st_reason
                } else {
                    reason::running::UNPAUSED
                },
                false,
            ),
            "paused" | "prelaunch" => (
                DomainState::Paused,
                if state == DomainState::Paused {
                    st_reason
                } else {
                    reason::paused::UNKNOWN
                },
                false,
            ),
            "shutdown" => (DomainState::Shutdown, reason::shutdown::UNKNOWN, true),
            _ => (state, st_reason, false),
        };
        let vm = Arc::new(Vm {
            id,
            pid,
            name: name.clone(),
            uuid,
            paths,
            our_child: false,
            vnc_port,
            qmp: Mutex::new(Some(qmp.clone())),
            st: Mutex::new(VmState {
                def: def.clone(),
                state,
                reason: st_reason,
                got_shutdown,
                being_destroyed: false,
                fake_reboot: false,
                stopped: false,
                reaped: false,
            }),
        });
        *lock(&handler.vm) = Arc::downgrade(&vm);
        if let Some(p) = vnc_port {
            reserve_vnc_port(p);
        }
        {
            let mut doms = self.domains.write().unwrap_or_else(|p| p.into_inner());
            match doms.by_uuid.get_mut(&uuid) {
                Some(o) => o.run = Some(vm.clone()),
                None => {
                    if doms.by_name.contains_key(&name) {
                        drop(doms);
                        tracing::warn!(domain = %name, "a different domain of that name is defined; leaving the guest alone");
                        qmp.close();
                        return Ok(None);
                    }
                    doms.by_name.insert(name.clone(), uuid);
                    doms.by_uuid.insert(
                        uuid,
                        DomainObj {
                            def,
                            autostart: false,
                            persistent: false,
                            run: Some(vm.clone()),
                            starting: false,
                            shutoff_reason: reason::shutoff::UNKNOWN,
                        },
                    );
                }
            }
        }
        tracing::info!(domain = %name, id, pid, "reconnected to running guest");
        if qmp.is_closed() {
            self.handle_eof(&vm);
        } else if got_shutdown {
            // It shut down while nobody watched: finish the job.
            // SAFETY: checked alive just above.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        Ok(Some(id))
    }
}

fn fill_pty_paths(def: &mut DomainDef, list: &Value) {
    let Some(arr) = list.as_array() else {
        return;
    };
    let find = |label: &str| {
        arr.iter()
            .find(|c| c.get("label").and_then(Value::as_str) == Some(label))
            .and_then(|c| c.get("filename").and_then(Value::as_str))
            .and_then(|f| f.strip_prefix("pty:"))
            .map(str::to_string)
    };
    let mut serial_paths = Vec::new();
    for c in def
        .devices
        .serials
        .iter_mut()
        .chain(def.devices.channels.iter_mut())
    {
        if c.chr_type != "pty" {
            continue;
        }
        let Some(alias) = c.info.alias.clone() else {
            continue;
        };
        if let Some(p) = find(&format!("char{alias}")) {
            set_source_path(c, &p);
            serial_paths.push(p);
        }
    }
    // A serial console shows the path of the serial port it mirrors.
    for c in def.devices.consoles.iter_mut() {
        if c.chr_type == "pty" && c.target_type.as_deref().is_none_or(|t| t == "serial") {
            let port = c.target_port.unwrap_or(0) as usize;
            if let Some(p) = serial_paths.get(port).cloned() {
                set_source_path(c, &p);
            }
        }
    }
}

fn set_source_path(c: &mut ironvirt_conf::Chardev, p: &str) {
    match c.sources.first_mut() {
        Some(s) => {
            s.attrs.retain(|(k, _)| k != "path");
            s.attrs.insert(0, ("path".into(), p.to_string()));
        }
        None => c.sources.push(ironvirt_conf::Element {
            name: "source".into(),
            attrs: vec![("path".into(), p.to_string())],
            ..Default::default()
        }),
    }
}

fn read_log_from(path: &Path, off: u64) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        if f.seek(std::io::SeekFrom::Start(off)).is_ok() {
            let _ = f.take(64 * 1024).read_to_string(&mut s);
        }
    }
    // Leave out our own header (the stamp line and the command line).
    s.lines().skip(2).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamp_shape() {
        let t = timestamp();
        assert_eq!(t.len(), "2024-01-01 00:00:00.000+0000".len(), "{t}");
        assert!(t.ends_with("+0000"));
    }

    #[test]
    fn own_cpu_time_reads() {
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        assert!(cpu_time(me).is_some());
        assert!(cpu_time(-5).is_none());
    }

    #[test]
    fn pty_paths_fill_serial_and_console() {
        let mut def = DomainDef::parse(
            "<domain type='kvm'><name>a</name><memory>1024</memory><os><type>hvm</type></os>\
             <devices><serial type='pty'/><console type='pty'/></devices></domain>",
        )
        .unwrap();
        command::assign_aliases(&mut def);
        let list = json!([{"label": "charserial0", "filename": "pty:/dev/pts/7"}]);
        fill_pty_paths(&mut def, &list);
        assert_eq!(def.devices.serials[0].source_path(), Some("/dev/pts/7"));
        assert_eq!(def.devices.consoles[0].source_path(), Some("/dev/pts/7"));
    }
}
