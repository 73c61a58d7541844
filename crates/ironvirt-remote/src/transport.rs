//! Choosing and opening the byte stream a connection runs over, the way
//! libvirt's remote driver does it: the transport after `+` in the URI
//! scheme (`unix`, `tcp`, `tls`, `ssh`, `ext`), the daemon's socket path,
//! the `ssh` command line and the proxy command it runs on the far side.

use crate::tls;
use ironvirt_driver::error::io_strerror;
use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result, Uri};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// libvirt's default port for plain TCP.
pub const TCP_PORT: u16 = 16509;
/// libvirt's default port for TLS.
pub const TLS_PORT: u16 = 16514;

/// Where a local daemon's sockets live when it runs as root. libvirt
/// builds this from `$LOCALSTATEDIR/run` rather than `/run` so that the
/// path also holds on a remote host reached through ssh.
pub const SYSTEM_SOCKET_DIR: &str = "/var/run/libvirt";

/// The transports of libvirt's remote driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TLS over TCP (the default when the URI names a host).
    Tls,
    /// A local UNIX socket (the default without a host).
    Unix,
    /// The `ssh` program, running a proxy to the daemon's socket remotely.
    Ssh,
    /// libvirt's libssh2 transport (not available here).
    Libssh2,
    /// A command whose standard input and output are the connection.
    Ext,
    /// Plain TCP.
    Tcp,
    /// libvirt's libssh transport (not available here).
    Libssh,
}

impl Transport {
    /// libvirt's name for the transport.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tls => "tls",
            Transport::Unix => "unix",
            Transport::Ssh => "ssh",
            Transport::Libssh2 => "libssh2",
            Transport::Ext => "ext",
            Transport::Tcp => "tcp",
            Transport::Libssh => "libssh",
        }
    }

    fn parse(s: &str) -> Option<Transport> {
        Some(match s.to_ascii_lowercase().as_str() {
            "tls" => Transport::Tls,
            "unix" => Transport::Unix,
            "ssh" => Transport::Ssh,
            "libssh2" => Transport::Libssh2,
            "ext" => Transport::Ext,
            "tcp" => Transport::Tcp,
            "libssh" => Transport::Libssh,
            _ => return None,
        })
    }
}

/// `mode=`: which daemon's socket a local connection uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The per-driver daemon's socket (`virtqemud-sock`) when it exists,
    /// else the monolithic daemon's (`libvirt-sock`).
    Auto,
    /// The monolithic daemon's socket.
    Legacy,
    /// The per-driver daemon's socket.
    Direct,
}

/// `proxy=`: what the ssh transport runs on the remote host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proxy {
    /// `virt-ssh-helper` when it is installed there, else `nc`.
    Auto,
    /// Always `nc -U SOCKET`.
    Netcat,
    /// Always `virt-ssh-helper URI`.
    Native,
}

fn remote_err(code: ErrorNumber, detail: impl Into<String>) -> Error {
    Error::new(ErrorDomain::REMOTE, code, detail)
}

/// A `VIR_ERR_SYSTEM_ERROR` in `VIR_FROM_RPC`, as libvirt's socket layer
/// reports failures: `what: strerror`.
pub(crate) fn rpc_system(what: impl std::fmt::Display, err: &std::io::Error) -> Error {
    Error::system(ErrorDomain::RPC, what, err)
}

/// Everything the URI says about how to reach the daemon.
#[derive(Clone, Debug)]
pub struct Target {
    /// The transport.
    pub transport: Transport,
    /// What CONNECT_OPEN asks the daemon to open.
    pub name: String,
    /// Host for tcp, tls and ssh.
    pub host: Option<String>,
    /// Port, when the URI gives one.
    pub port: Option<u16>,
    /// User for ssh.
    pub user: Option<String>,
    /// `socket=`.
    pub socket: Option<String>,
    /// `command=`.
    pub command: Option<String>,
    /// `netcat=`.
    pub netcat: Option<String>,
    /// `keyfile=`.
    pub keyfile: Option<String>,
    /// `pkipath=`.
    pub pkipath: Option<String>,
    /// `auth=`.
    pub auth: Option<String>,
    /// `no_verify=1`.
    pub no_verify: bool,
    /// `no_tty=1`.
    pub no_tty: bool,
    /// `no_sanity=1`.
    pub no_sanity: bool,
    /// `mode=`.
    pub mode: Mode,
    /// `proxy=`.
    pub proxy: Proxy,
    /// The driver part of the scheme (`qemu`, `test`, ...).
    pub driver: String,
    /// Whether a local connection uses the per-user daemon
    /// (libvirt's `REMOTE_DRIVER_OPEN_USER`).
    pub user_daemon: bool,
    /// Read-only connection.
    pub read_only: bool,
}

fn bool_param(uri: &Uri, name: &str) -> Result<bool> {
    match uri.param(name) {
        None => Ok(false),
        Some(v) => match v.parse::<i64>() {
            Ok(n) => Ok(n != 0),
            Err(_) => Err(remote_err(
                ErrorNumber::INVALID_ARG,
                format!("Failed to parse value of URI component {name}"),
            )),
        },
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The per-user runtime directory libvirt uses for session daemons:
/// `$XDG_RUNTIME_DIR/libvirt`, else `~/.cache/libvirt`.
pub fn user_runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("libvirt"),
        _ => home_dir().join(".cache").join("libvirt"),
    }
}

pub(crate) fn home_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => PathBuf::from("/"),
    }
}

impl Target {
    /// Reads the URI as libvirt's remote driver does. Fails with libvirt's
    /// errors for an unknown transport, a UNIX socket with a host, an `ext`
    /// URI without `command`, and bad `mode`/`proxy` values.
    pub fn from_uri(uri: &Uri, read_only: bool) -> Result<Target> {
        Self::from_uri_as(uri, read_only, euid())
    }

    fn from_uri_as(uri: &Uri, read_only: bool, euid: u32) -> Result<Target> {
        let transport = match &uri.transport {
            Some(t) => {
                let t = Transport::parse(t).ok_or_else(|| {
                    remote_err(
                        ErrorNumber::INVALID_ARG,
                        "remote_open: transport in URL not recognised (should be tls|unix|ssh|ext|tcp|libssh2|libssh)",
                    )
                })?;
                if t == Transport::Unix {
                    if let Some(h) = &uri.host {
                        return Err(remote_err(
                            ErrorNumber::INVALID_ARG,
                            format!("using unix socket and remote server '{h}' is not supported."),
                        ));
                    }
                }
                t
            }
            None if uri.host.is_some() => Transport::Tls,
            None => Transport::Unix,
        };
        let mode = match uri.param("mode") {
            None | Some("auto") => Mode::Auto,
            Some("legacy") => Mode::Legacy,
            Some("direct") => Mode::Direct,
            Some(other) => {
                return Err(remote_err(
                    ErrorNumber::INVALID_ARG,
                    format!("Unknown remote mode '{other}'"),
                ))
            }
        };
        let proxy = match uri.param("proxy") {
            None | Some("auto") => Proxy::Auto,
            Some("netcat") => Proxy::Netcat,
            Some("native") => Proxy::Native,
            // libvirt 9.0's wording, spelling included.
            Some(other) => {
                return Err(remote_err(
                    ErrorNumber::INVALID_ARG,
                    format!("Unnkown proxy type '{other}'"),
                ))
            }
        };
        let command = uri.param("command").map(str::to_string);
        if transport == Transport::Ext && command.is_none() {
            return Err(remote_err(
                ErrorNumber::INVALID_ARG,
                "remote_open: for 'ext' transport, command is required",
            ));
        }
        // libvirt's remoteGetURIDaemonInfo: an unprivileged user reaches
        // their own session daemon for `/session` and for `test+...` URIs.
        let scheme_is_test_plus = uri.transport.is_some() && uri.driver == "test";
        let user_daemon = (uri.path == "/session" || scheme_is_test_plus) && euid > 0;
        Ok(Target {
            transport,
            name: uri.for_daemon(),
            host: uri.host.clone(),
            port: uri.port,
            user: uri.user.clone(),
            socket: uri.param("socket").map(str::to_string),
            command,
            netcat: uri.param("netcat").map(str::to_string),
            keyfile: uri.param("keyfile").map(str::to_string),
            pkipath: uri.param("pkipath").map(str::to_string),
            auth: uri.param("auth").map(str::to_string),
            no_verify: bool_param(uri, "no_verify")?,
            no_tty: bool_param(uri, "no_tty")?,
            no_sanity: bool_param(uri, "no_sanity")?,
            mode,
            proxy,
            driver: uri.driver.clone(),
            user_daemon,
            read_only,
        })
    }

    /// The daemon socket to use when `socket=` is not given (libvirt's
    /// remoteGetUNIXSocket). For ssh this is the path on the remote host.
    pub fn default_socket(&self) -> Result<String> {
        let dir = |user: bool| -> String {
            if user {
                user_runtime_dir().to_string_lossy().into_owned()
            } else {
                SYSTEM_SOCKET_DIR.to_string()
            }
        };
        let sock = |prefix: &str| -> String {
            if self.user_daemon {
                format!("{}/{prefix}-sock", dir(true))
            } else {
                format!(
                    "{}/{prefix}-{}",
                    dir(false),
                    if self.read_only { "sock-ro" } else { "sock" }
                )
            }
        };
        let direct_prefix = if self.driver.is_empty() || self.driver == "remote" {
            "libvirt".to_string()
        } else {
            format!("virt{}d", self.driver)
        };
        let direct = sock(&direct_prefix);
        let legacy = sock("libvirt");
        let mode = match self.mode {
            Mode::Auto if self.transport == Transport::Unix => {
                if std::path::Path::new(&direct).exists() {
                    Mode::Direct
                } else {
                    // Debian's libvirt 9.0 is built with legacy as the default.
                    Mode::Legacy
                }
            }
            Mode::Auto => Mode::Legacy,
            m => m,
        };
        match mode {
            Mode::Direct if self.transport != Transport::Unix => Err(remote_err(
                ErrorNumber::OPERATION_UNSUPPORTED,
                format!(
                    "Cannot use direct socket mode for {} transport",
                    self.transport.name()
                ),
            )),
            Mode::Direct => Ok(direct),
            _ => Ok(legacy),
        }
    }

    /// The argument vector (program first) the ssh transport runs, exactly
    /// as libvirt 9.0 lays it out.
    pub fn ssh_argv(&self) -> Result<Vec<String>> {
        let mut argv = vec![self.command.clone().unwrap_or_else(|| "ssh".to_string())];
        if let Some(p) = self.port {
            argv.push("-p".into());
            argv.push(p.to_string());
        }
        if let Some(u) = &self.user {
            argv.push("-l".into());
            argv.push(u.clone());
        }
        if let Some(k) = &self.keyfile {
            argv.push("-i".into());
            argv.push(k.clone());
        }
        argv.extend(["-T", "-e", "none"].map(String::from));
        if self.no_tty {
            argv.extend(["-o", "BatchMode=yes"].map(String::from));
        }
        if self.no_verify {
            argv.extend(["-o", "StrictHostKeyChecking=no"].map(String::from));
        }
        argv.push("--".into());
        argv.push(self.host.clone().unwrap_or_else(|| "localhost".to_string()));
        argv.push(self.ssh_remote_command()?);
        Ok(argv)
    }

    /// The command the ssh transport runs on the remote host: a proxy
    /// between its standard input/output and the daemon.
    pub fn ssh_remote_command(&self) -> Result<String> {
        let explicit_socket = self.socket.is_some();
        let socket = match &self.socket {
            Some(s) => s.clone(),
            None => self.default_socket()?,
        };
        let nc = escape_shell(&escape_shell(self.netcat.as_deref().unwrap_or("nc")));
        let netcat = format!(
            "if '{nc}' -q 2>&1 | grep \"requires an argument\" >/dev/null 2>&1; then ARG=-q0;else ARG=;fi;'{nc}' $ARG -U {socket}"
        );
        let ro = if self.read_only { "-r " } else { "" };
        let helper = format!(
            "virt-ssh-helper {ro}'{}'",
            escape_shell(&escape_shell(&self.name))
        );
        let proxy = match self.proxy {
            // Naming a socket or a netcat binary asks for netcat.
            Proxy::Auto if explicit_socket || self.netcat.is_some() => Proxy::Netcat,
            p => p,
        };
        Ok(match proxy {
            Proxy::Netcat => format!("sh -c '{netcat}'"),
            Proxy::Native => format!("sh -c '{helper}'"),
            Proxy::Auto => format!(
                "sh -c 'which virt-ssh-helper 1>/dev/null 2>&1; if test $? = 0; then     {helper}; else    {netcat}; fi'"
            ),
        })
    }
}

/// Quotes `s` for `/bin/sh` the way libvirt does: unchanged when it holds
/// no shell metacharacter, else in single quotes with `'` as `'\''`.
pub fn escape_shell(s: &str) -> String {
    if s.is_empty() {
        return "''".to_string();
    }
    const META: &str = "\r\t\n !\"#$&'()*;<>?[\\]^`{|}~";
    if !s.chars().any(|c| META.contains(c)) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\'");
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// What ends the stream (and so wakes a reader blocked on it).
pub(crate) enum Closer {
    Unix(UnixStream),
    Tcp(TcpStream),
    Child(Arc<Mutex<Child>>),
}

impl Closer {
    pub(crate) fn close(&self) {
        match self {
            Closer::Unix(s) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            Closer::Tcp(s) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            Closer::Child(c) => {
                if let Ok(mut c) = c.lock() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        }
    }
}

/// Collects (the start of) a child's standard error, which libvirt puts in
/// the error it reports when the child's stream ends.
pub(crate) struct StderrCapture {
    text: Mutex<Vec<u8>>,
    done: Mutex<Option<mpsc::Receiver<()>>>,
}

impl StderrCapture {
    fn start(mut err: impl Read + Send + 'static) -> Arc<StderrCapture> {
        let (tx, rx) = mpsc::channel();
        let cap = Arc::new(StderrCapture {
            text: Mutex::new(Vec::new()),
            done: Mutex::new(Some(rx)),
        });
        let c = Arc::clone(&cap);
        let spawned = std::thread::Builder::new()
            .name("remote-stderr".into())
            .spawn(move || {
                let mut buf = [0u8; 1024];
                loop {
                    match err.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if let Ok(mut t) = c.text.lock() {
                                let room = 1024usize.saturating_sub(t.len());
                                t.extend_from_slice(&buf[..n.min(room)]);
                            }
                        }
                    }
                }
                let _ = tx.send(());
            });
        if spawned.is_err() {
            if let Ok(mut d) = cap.done.lock() {
                *d = None;
            }
        }
        cap
    }

    /// What the child wrote, waiting a little for it to finish writing.
    pub(crate) fn text(&self) -> String {
        if let Ok(mut d) = self.done.lock() {
            if let Some(rx) = d.take() {
                let _ = rx.recv_timeout(Duration::from_millis(500));
            }
        }
        let t = self.text.lock().map(|t| t.clone()).unwrap_or_default();
        String::from_utf8_lossy(&t)
            .trim_end_matches('\n')
            .to_string()
    }
}

/// The reading half of a stream: bytes, the file descriptor to wait on
/// for more of them, and whether some are already held past it.
pub(crate) trait RxHalf: Read + Send {
    /// The descriptor that becomes readable when more input arrives.
    fn raw_fd(&self) -> RawFd;

    /// Whether input is held inside the reader itself (decrypted or not
    /// yet decrypted bytes), where waiting on [`RxHalf::raw_fd`] would not
    /// see it.
    fn has_buffered(&mut self) -> bool {
        false
    }
}

impl RxHalf for UnixStream {
    fn raw_fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

impl RxHalf for TcpStream {
    fn raw_fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

impl RxHalf for ChildStdout {
    fn raw_fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

/// An open byte stream to the daemon, split for one reader and writers.
pub(crate) struct Stream {
    pub reader: Box<dyn RxHalf>,
    pub writer: Box<dyn Write + Send>,
    pub closer: Closer,
    /// Standard error of the child process behind the stream, if any.
    pub stderr: Option<Arc<StderrCapture>>,
    /// libvirt's `is_secure`: unix, tls and ssh are; tcp and ext are not.
    pub secure: bool,
    /// Whether the stream is encrypted (TLS).
    pub encrypted: bool,
}

/// Opens the stream the target describes.
pub(crate) fn connect(t: &Target) -> Result<Stream> {
    match t.transport {
        Transport::Unix => {
            let path = match &t.socket {
                Some(s) => s.clone(),
                None => t.default_socket()?,
            };
            connect_unix(&path)
        }
        Transport::Tcp => {
            let s = connect_tcp(
                t.host.as_deref().unwrap_or("localhost"),
                t.port.unwrap_or(TCP_PORT),
            )?;
            let r = s
                .try_clone()
                .map_err(|e| rpc_system("Unable to duplicate socket", &e))?;
            let c = s
                .try_clone()
                .map_err(|e| rpc_system("Unable to duplicate socket", &e))?;
            Ok(Stream {
                reader: Box::new(r),
                writer: Box::new(s),
                closer: Closer::Tcp(c),
                stderr: None,
                secure: false,
                encrypted: false,
            })
        }
        Transport::Tls => {
            let host = t.host.as_deref().unwrap_or("localhost");
            let config = tls::client_config(
                t.pkipath.as_deref(),
                euid() != 0,
                !t.no_sanity,
                !t.no_verify,
            )?;
            let s = connect_tcp(host, t.port.unwrap_or(TLS_PORT))?;
            let (reader, writer) = tls::handshake(
                config,
                host,
                s.try_clone()
                    .map_err(|e| rpc_system("Unable to duplicate socket", &e))?,
            )?;
            Ok(Stream {
                reader: Box::new(reader),
                writer: Box::new(writer),
                closer: Closer::Tcp(s),
                stderr: None,
                secure: true,
                encrypted: true,
            })
        }
        Transport::Ssh => {
            let argv = t.ssh_argv()?;
            spawn(&argv, true)
        }
        Transport::Ext => {
            let cmd = t.command.clone().unwrap_or_default();
            spawn(&[cmd], false)
        }
        Transport::Libssh2 | Transport::Libssh => Err(remote_err(
            ErrorNumber::NO_SUPPORT,
            format!(
                "transport '{}' is not available in ironvirt; use the 'ssh' transport",
                t.transport.name()
            ),
        )),
    }
}

pub(crate) fn connect_unix(path: &str) -> Result<Stream> {
    let s = UnixStream::connect(path)
        .map_err(|e| rpc_system(format!("Failed to connect socket to '{path}'"), &e))?;
    let r = s
        .try_clone()
        .map_err(|e| rpc_system("Unable to duplicate socket", &e))?;
    let c = s
        .try_clone()
        .map_err(|e| rpc_system("Unable to duplicate socket", &e))?;
    Ok(Stream {
        reader: Box::new(r),
        writer: Box::new(s),
        closer: Closer::Unix(c),
        stderr: None,
        secure: true,
        encrypted: false,
    })
}

fn connect_tcp(host: &str, port: u16) -> Result<TcpStream> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            let msg = io_strerror(&e);
            let msg = msg
                .strip_prefix("failed to lookup address information: ")
                .unwrap_or(&msg)
                .to_string();
            Error::new(
                ErrorDomain::RPC,
                ErrorNumber::SYSTEM_ERROR,
                format!("Unable to resolve address '{host}' service '{port}': {msg}"),
            )
        })?
        .collect();
    let mut last = std::io::Error::from(std::io::ErrorKind::AddrNotAvailable);
    for a in addrs {
        match TcpStream::connect(a) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(rpc_system(
        format!("unable to connect to server at '{host}:{port}'"),
        &last,
    ))
}

fn spawn(argv: &[String], secure: bool) -> Result<Stream> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| remote_err(ErrorNumber::INVALID_ARG, "empty command"))?;
    let mut tries = 0;
    let mut child = loop {
        match Command::new(prog)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => break c,
            // A program that was just written may still be open for writing
            // in a process forked meanwhile: try again shortly.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 10 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(rpc_system(format!("cannot execute binary {prog}"), &e)),
        }
    };
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::internal(
            ErrorDomain::RPC,
            "child process has no standard input or output",
        ));
    };
    let capture = stderr.map(StderrCapture::start);
    Ok(Stream {
        reader: Box::new(stdout),
        writer: Box::new(stdin),
        closer: Closer::Child(Arc::new(Mutex::new(child))),
        stderr: capture,
        secure,
        encrypted: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str, ro: bool) -> Target {
        Target::from_uri_as(&Uri::parse(uri).expect("parses"), ro, 0).expect("valid")
    }

    fn err(uri: &str) -> Error {
        Target::from_uri_as(&Uri::parse(uri).expect("parses"), false, 0).expect_err("invalid")
    }

    // Every expected argv below was recorded from libvirt 9.0's virsh with
    // a fake `ssh` on PATH that logs its arguments.
    #[test]
    fn ssh_argv_as_libvirt_lays_it_out() {
        let helper_then_nc = |ro: &str, name: &str, sock: &str| {
            format!(
                "sh -c 'which virt-ssh-helper 1>/dev/null 2>&1; if test $? = 0; then     virt-ssh-helper {ro}{name}; else    if 'nc' -q 2>&1 | grep \"requires an argument\" >/dev/null 2>&1; then ARG=-q0;else ARG=;fi;'nc' $ARG -U {sock}; fi'"
            )
        };
        let t = target("qemu+ssh://bob@example.com:2222/system", false);
        assert_eq!(
            t.ssh_argv().expect("argv"),
            vec![
                "ssh".to_string(),
                "-p".into(),
                "2222".into(),
                "-l".into(),
                "bob".into(),
                "-T".into(),
                "-e".into(),
                "none".into(),
                "--".into(),
                "example.com".into(),
                helper_then_nc("", "'qemu:///system'", "/var/run/libvirt/libvirt-sock"),
            ]
        );
        let t = target("qemu+ssh://example.com/system?keyfile=/k/id&no_tty=1&no_verify=1&netcat=/bin/mync&socket=/x/sock&known_hosts=/kh", true);
        assert_eq!(
            t.ssh_argv().expect("argv"),
            vec![
                "ssh".to_string(), "-i".into(), "/k/id".into(), "-T".into(), "-e".into(), "none".into(), "-o".into(),
                "BatchMode=yes".into(), "-o".into(), "StrictHostKeyChecking=no".into(), "--".into(), "example.com".into(),
                "sh -c 'if '/bin/mync' -q 2>&1 | grep \"requires an argument\" >/dev/null 2>&1; then ARG=-q0;else ARG=;fi;'/bin/mync' $ARG -U /x/sock'".into(),
            ]
        );
        let t = target("qemu+ssh://example.com/system", true);
        assert_eq!(
            t.ssh_remote_command().expect("cmd"),
            helper_then_nc(
                "-r ",
                "'qemu:///system'",
                "/var/run/libvirt/libvirt-sock-ro"
            )
        );
        let t = target("test+ssh://example.com/default?mode=legacy", false);
        assert_eq!(
            t.ssh_remote_command().expect("cmd"),
            helper_then_nc("", "'test:///default'", "/var/run/libvirt/libvirt-sock")
        );
        let t = target("qemu+ssh://example.com/session?proxy=netcat", false);
        assert_eq!(
            t.ssh_remote_command().expect("cmd"),
            "sh -c 'if 'nc' -q 2>&1 | grep \"requires an argument\" >/dev/null 2>&1; then ARG=-q0;else ARG=;fi;'nc' $ARG -U /var/run/libvirt/libvirt-sock'"
        );
        let t = target("qemu+ssh://example.com/system?proxy=native", false);
        assert_eq!(
            t.ssh_remote_command().expect("cmd"),
            "sh -c 'virt-ssh-helper 'qemu:///system''"
        );
        let t = target(
            "qemu+ssh://a%40b@[::1]:22/system?proxy=native&socket=/s&name=qemu:///custom",
            false,
        );
        let argv = t.ssh_argv().expect("argv");
        assert_eq!(
            &argv[1..9],
            ["-p", "22", "-l", "a@b", "-T", "-e", "none", "--"]
        );
        assert_eq!(argv[9], "::1");
        assert_eq!(argv[10], "sh -c 'virt-ssh-helper 'qemu:///custom''");
        let t = target("qemu+ssh://example.com/system?netcat=/bin/my%20nc", false);
        assert_eq!(
            t.ssh_remote_command().expect("cmd"),
            "sh -c 'if '''\\''/bin/my nc'\\'''' -q 2>&1 | grep \"requires an argument\" >/dev/null 2>&1; then ARG=-q0;else ARG=;fi;'''\\''/bin/my nc'\\'''' $ARG -U /var/run/libvirt/libvirt-sock'"
        );
        let t = target(
            "qemu+ssh://example.com/system?netcat=/bin/my%27nc&socket=/my%20sock",
            false,
        );
        assert_eq!(
            t.ssh_remote_command().expect("cmd"),
            "sh -c 'if '''\\''/bin/my'\\''\\'\\'''\\''nc'\\'''' -q 2>&1 | grep \"requires an argument\" >/dev/null 2>&1; then ARG=-q0;else ARG=;fi;'''\\''/bin/my'\\''\\'\\'''\\''nc'\\'''' $ARG -U /my sock'"
        );
        let t = target("qemu+ssh://example.com/", false);
        assert_eq!(
            t.ssh_remote_command().expect("cmd"),
            helper_then_nc("", "'qemu:///'", "/var/run/libvirt/libvirt-sock")
        );
        let t = target("qemu+ssh://example.com/system?command=/opt/myssh", false);
        assert_eq!(t.ssh_argv().expect("argv")[0], "/opt/myssh");
    }

    #[test]
    fn errors_as_libvirt_words_them() {
        let e = err("qemu+bogus:///system");
        assert_eq!(
            (e.code, e.domain),
            (ErrorNumber::INVALID_ARG, ErrorDomain::REMOTE)
        );
        assert_eq!(e.message, "invalid argument: remote_open: transport in URL not recognised (should be tls|unix|ssh|ext|tcp|libssh2|libssh)");
        assert_eq!(
            err("qemu+unix://host/system").message,
            "invalid argument: using unix socket and remote server 'host' is not supported."
        );
        assert_eq!(
            err("qemu+ext:///system").message,
            "invalid argument: remote_open: for 'ext' transport, command is required"
        );
        assert_eq!(
            err("qemu+ssh://h/system?proxy=bogus").message,
            "invalid argument: Unnkown proxy type 'bogus'"
        );
        assert_eq!(
            err("qemu+ssh://h/system?mode=bogus").message,
            "invalid argument: Unknown remote mode 'bogus'"
        );
        let e = target("qemu+ssh://h/system?mode=direct", false)
            .ssh_remote_command()
            .expect_err("direct over ssh");
        assert_eq!(
            (e.code, e.domain),
            (ErrorNumber::OPERATION_UNSUPPORTED, ErrorDomain::REMOTE)
        );
        assert_eq!(
            e.message,
            "Operation not supported: Cannot use direct socket mode for ssh transport"
        );
    }

    #[test]
    fn transport_and_socket_selection() {
        assert_eq!(target("qemu:///system", false).transport, Transport::Unix);
        assert_eq!(
            target("qemu://host/system", false).transport,
            Transport::Tls
        );
        assert_eq!(
            target("QEMU+TCP://host/system", false).transport,
            Transport::Tcp
        );
        assert_eq!(
            target("qemu:///system", false)
                .default_socket()
                .expect("path"),
            "/var/run/libvirt/libvirt-sock"
        );
        assert_eq!(
            target("qemu:///system", true)
                .default_socket()
                .expect("path"),
            "/var/run/libvirt/libvirt-sock-ro"
        );
        assert_eq!(
            target("qemu:///system?mode=direct", true)
                .default_socket()
                .expect("path"),
            "/var/run/libvirt/virtqemud-sock-ro"
        );
        // As root, /session and test+unix still use the system daemon.
        assert_eq!(
            target("qemu:///session", false)
                .default_socket()
                .expect("path"),
            "/var/run/libvirt/libvirt-sock"
        );
        let u = Uri::parse("qemu:///session").expect("parses");
        let t = Target::from_uri_as(&u, true, 1000).expect("valid");
        assert!(t.user_daemon);
        let path = t.default_socket().expect("path");
        assert!(path.ends_with("/libvirt/libvirt-sock"), "{path}");
        let u = Uri::parse("test+unix:///default").expect("parses");
        assert!(
            Target::from_uri_as(&u, false, 1000)
                .expect("valid")
                .user_daemon
        );
        let u = Uri::parse("qemu:///system").expect("parses");
        assert!(
            !Target::from_uri_as(&u, false, 1000)
                .expect("valid")
                .user_daemon
        );
        assert_eq!(
            target("test+unix:///default?socket=/x/y", false).name,
            "test:///default"
        );
    }

    #[test]
    fn shell_escaping() {
        assert_eq!(escape_shell(""), "''");
        assert_eq!(escape_shell("nc"), "nc");
        assert_eq!(escape_shell("a b"), "'a b'");
        assert_eq!(escape_shell("it's"), "'it'\\''s'");
    }
}
