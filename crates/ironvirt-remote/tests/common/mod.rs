//! What the client tests share: the two daemons they run against (the
//! reference libvirtd and ironvirtd), unique names, a packet-aware proxy
//! that can cut a connection mid-call, and a scriptable mock daemon.

#![allow(dead_code)]

use ironvirt_proto::packet::{
    encode_packet, packet_length, Header, MessageType, Packet, Status, LEN_SIZE,
};
use ironvirt_proto::program;
use ironvirt_xdr::XdrEncode;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The reference libvirtd's sockets (started by the project's test entry point).
pub const REFERENCE_SOCK: &str = "/run/libvirt-ref/libvirt-sock";

/// A daemon to run the suite against.
pub struct Backend {
    pub label: &'static str,
    pub sock: PathBuf,
    pub sock_ro: PathBuf,
    pub daemon: Option<Daemon>,
}

impl Backend {
    /// `test:///default` on the reference libvirtd (its socket from
    /// IRONVIRT_REFERENCE_SOCK, else [`REFERENCE_SOCK`]); `None` (the test is
    /// skipped) only when IRONVIRT_NO_REFERENCE=1 says it is absent on purpose.
    pub fn reference() -> Option<Backend> {
        let sock = std::env::var_os("IRONVIRT_REFERENCE_SOCK")
            .map_or_else(|| PathBuf::from(REFERENCE_SOCK), PathBuf::from);
        let sock_ro = PathBuf::from(format!("{}-ro", sock.display()));
        if !sock.exists() {
            if std::env::var("IRONVIRT_NO_REFERENCE").as_deref() == Ok("1") {
                eprintln!("reference libvirtd not running and IRONVIRT_NO_REFERENCE=1: skipped");
                return None;
            }
            panic!(
                "the reference libvirtd socket {} is missing: start it with scripts/reference-libvirtd.sh, \
                 or set IRONVIRT_NO_REFERENCE=1 to skip the tests against it",
                sock.display()
            );
        }
        Some(Backend {
            label: "reference",
            sock,
            sock_ro,
            daemon: None,
        })
    }

    /// A fresh ironvirtd on private sockets.
    pub fn ironvirtd() -> Backend {
        let d = Daemon::start(&[]);
        Backend {
            label: "ironvirtd",
            sock: d.sock.clone(),
            sock_ro: d.sock_ro.clone(),
            daemon: Some(d),
        }
    }

    /// The read-write URI of the test driver.
    pub fn uri(&self) -> String {
        format!("test+unix:///default?socket={}", self.sock.display())
    }

    /// The read-only URI.
    pub fn uri_ro(&self) -> String {
        format!("test+unix:///default?socket={}", self.sock_ro.display())
    }
}

/// Finds the ironvirtd binary: `$IRONVIRTD`, else beside this test's own
/// target directory (`target/<profile>/ironvirtd`, built by
/// `cargo build --workspace --bins`), else under CARGO_TARGET_DIR or the
/// workspace's `target/`.
pub fn ironvirtd_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("IRONVIRTD") {
        return PathBuf::from(p);
    }
    let mut tried = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/<profile>/deps/<test> -> target/<profile>/ironvirtd
        if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
            tried.push(profile_dir.join("ironvirtd"));
        }
    }
    let targets: Vec<PathBuf> = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::iter::once(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        ))
        .collect();
    for t in targets {
        for profile in ["debug", "release"] {
            tried.push(t.join(profile).join("ironvirtd"));
        }
    }
    for p in &tried {
        if p.is_file() {
            return p.clone();
        }
    }
    panic!(
        "ironvirtd binary not found (looked at {tried:?}); build it first with `cargo build --workspace --bins` \
         or point IRONVIRTD at it"
    );
}

/// A running ironvirtd; killed when dropped.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub sock_ro: PathBuf,
}

impl Daemon {
    /// Starts ironvirtd with private socket and state directories and
    /// `extra` arguments, and waits for its socket.
    pub fn start(extra: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let sockdir = dir.path().join("run");
        let state = dir.path().join("state");
        std::fs::create_dir_all(&sockdir).expect("socket dir");
        std::fs::create_dir_all(&state).expect("state dir");
        let bin = ironvirtd_binary();
        let log = std::fs::File::create(dir.path().join("ironvirtd.log")).expect("log file");
        let child = Command::new(&bin)
            .arg("--socket-dir")
            .arg(&sockdir)
            .arg("--state-dir")
            .arg(&state)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut d = Daemon {
            child: Some(child),
            sock: sockdir.join("libvirt-sock"),
            sock_ro: sockdir.join("libvirt-sock-ro"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if UnixStream::connect(&d.sock).is_ok() {
                return d;
            }
            if let Some(Ok(Some(status))) = d.child.as_mut().map(Child::try_wait) {
                panic!(
                    "ironvirtd exited with {status} before listening; log:\n{}",
                    d.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "ironvirtd did not listen on {} within 20 s; log:\n{}",
                    d.sock.display(),
                    d.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's standard error so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ironvirtd.log")).unwrap_or_default()
    }

    /// Kills the daemon at once (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A name no other test (or concurrent run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{t:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A minimal domain for the test driver.
pub fn domain_xml(name: &str) -> String {
    format!(
        "<domain type='test'><name>{name}</name><memory unit='KiB'>65536</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64'>hvm</type></os></domain>"
    )
}

/// Reads one whole packet (length word included) from `r`.
pub fn read_raw(r: &mut impl Read) -> Option<Vec<u8>> {
    let mut len = [0u8; LEN_SIZE];
    r.read_exact(&mut len).ok()?;
    let n = packet_length(len).ok()?;
    let mut buf = vec![0u8; n];
    buf[..LEN_SIZE].copy_from_slice(&len);
    r.read_exact(&mut buf[LEN_SIZE..]).ok()?;
    Some(buf)
}

/// A UNIX-socket proxy in front of a daemon that can drop the connection
/// the moment a client sends a given procedure: to the client it looks
/// exactly like the daemon dying in the middle of that call.
pub struct CuttingProxy {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
}

impl CuttingProxy {
    pub fn start(upstream: &Path, cut_on_proc: i32) -> CuttingProxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let sock = dir.path().join("proxy-sock");
        let listener = UnixListener::bind(&sock).expect("bind proxy");
        let upstream = upstream.to_path_buf();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = UnixStream::connect(&upstream) else {
                    return;
                };
                let (mut c_r, mut s_w) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let (mut s_r, mut c_w) = (
                    server.try_clone().expect("clone"),
                    client.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    while let Some(p) = read_raw(&mut c_r) {
                        let proc_ = i32::from_be_bytes([p[12], p[13], p[14], p[15]]);
                        if proc_ == cut_on_proc {
                            let _ = client.shutdown(std::net::Shutdown::Both);
                            let _ = server.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        if s_w.write_all(&p).is_err() {
                            return;
                        }
                    }
                    let _ = server.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    loop {
                        match s_r.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if c_w.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = c_w.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CuttingProxy { dir, sock }
    }

    pub fn uri(&self) -> String {
        format!("test+unix:///default?socket={}", self.sock.display())
    }
}

/// What a mock daemon does with one incoming packet.
pub enum Action {
    /// Send these whole packets.
    Send(Vec<Vec<u8>>),
    /// Send nothing.
    Nothing,
    /// Close the connection.
    Close,
    /// The built-in handshake answer (AUTH_LIST, features, open, close).
    Default,
}

/// A scripted daemon on a UNIX socket: answers the handshake (AUTH_LIST
/// with no authentication, every feature supported, CONNECT_OPEN) and
/// hands everything to `script` first, which may answer [`Action::Default`]
/// for the built-in answer. Each packet it receives is logged.
pub struct MockDaemon {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub received: Arc<Mutex<Vec<Packet>>>,
}

/// The successful reply to `call` carrying `body`.
pub fn reply<T: XdrEncode + ?Sized>(call: &Header, body: &T) -> Vec<u8> {
    ironvirt_proto::reply_packet(call, body).expect("encodes")
}

/// A remote-program message (event).
pub fn message<T: XdrEncode + ?Sized>(proc_: i32, body: &T) -> Vec<u8> {
    let h = Header {
        prog: program::REMOTE_PROGRAM,
        vers: program::REMOTE_VERSION,
        proc_,
        type_: MessageType::MESSAGE,
        serial: 1,
        status: Status::OK,
    };
    encode_packet(&h, body).expect("encodes")
}

impl MockDaemon {
    pub fn start<F>(auth_types: Vec<ironvirt_proto::types::AuthType>, script: F) -> MockDaemon
    where
        F: Fn(&Packet) -> Action + Send + Sync + 'static,
    {
        use ironvirt_proto::procedures::num;
        use ironvirt_proto::remote::{AuthListRet, ConnectSupportsFeatureRet};
        let dir = tempfile::tempdir().expect("temp dir");
        let sock = dir.path().join("mock-sock");
        let listener = UnixListener::bind(&sock).expect("bind mock");
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let script = Arc::new(script);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let log = Arc::clone(&log);
                let script = Arc::clone(&script);
                let auth_types = auth_types.clone();
                std::thread::spawn(move || {
                    let mut w = conn.try_clone().expect("clone");
                    while let Some(raw) = read_raw(&mut conn) {
                        let Ok(p) = Packet::parse(&raw) else { return };
                        log.lock().expect("log").push(p.clone());
                        let h = p.header;
                        let action = match script(&p) {
                            Action::Default
                                if h.prog == program::REMOTE_PROGRAM
                                    && h.type_ == MessageType::CALL =>
                            {
                                match h.proc_ {
                                    num::AUTH_LIST => Action::Send(vec![reply(
                                        &h,
                                        &AuthListRet {
                                            types: auth_types.clone(),
                                        },
                                    )]),
                                    num::CONNECT_SUPPORTS_FEATURE => Action::Send(vec![reply(
                                        &h,
                                        &ConnectSupportsFeatureRet { supported: 1 },
                                    )]),
                                    num::CONNECT_OPEN
                                    | num::CONNECT_CLOSE
                                    | num::CONNECT_REGISTER_CLOSE_CALLBACK => {
                                        Action::Send(vec![reply(&h, &())])
                                    }
                                    _ => Action::Nothing,
                                }
                            }
                            Action::Default => Action::Nothing,
                            other => other,
                        };
                        match action {
                            Action::Send(ps) => {
                                for b in ps {
                                    if w.write_all(&b).is_err() {
                                        return;
                                    }
                                }
                            }
                            Action::Nothing | Action::Default => {}
                            Action::Close => {
                                let _ = conn.shutdown(std::net::Shutdown::Both);
                                return;
                            }
                        }
                    }
                });
            }
        });
        MockDaemon {
            dir,
            sock,
            received,
        }
    }

    pub fn uri(&self) -> String {
        format!("test+unix:///default?socket={}", self.sock.display())
    }

    /// Waits until a packet matching `pred` has arrived.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Packet) -> bool) -> Packet {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(p) = self.received.lock().expect("log").iter().find(|p| pred(p)) {
                return p.clone();
            }
            assert!(
                Instant::now() < deadline,
                "the mock daemon never received {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Runs `f` on its own thread and fails the test if it does not finish
/// within `limit`: a guard against hangs, not a timing assertion.
pub fn must_finish<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(_) => panic!("{what}: still blocked after {limit:?} (hang)"),
    }
}
