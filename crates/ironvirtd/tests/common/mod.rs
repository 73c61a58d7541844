//! Shared helpers of ironvirtd's integration tests: start the daemon on
//! private directories, speak the raw protocol, run the real virsh and
//! python3-libvirt, find the reference libvirtd.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ironvirt_proto::packet::{encode_packet, Header, MessageType, Packet, Status};
use ironvirt_proto::program::REMOTE_PROGRAM;
use ironvirt_proto::remote::ConnectOpenArgs;
use ironvirt_proto::RemoteError;
use ironvirt_xdr::XdrDecode;

/// The reference libvirtd's read-write socket (started by the project's
/// test command).
pub const REF_SOCK: &str = "/run/libvirt-ref/libvirt-sock";
/// Its read-only socket.
pub const REF_SOCK_RO: &str = "/run/libvirt-ref/libvirt-sock-ro";

/// Whether to compare with the reference daemon. Fails the test with a
/// clear message when it is not running, unless `IRONVIRT_NO_REFERENCE=1`.
pub fn reference() -> bool {
    if Path::new(REF_SOCK).exists() {
        return true;
    }
    if std::env::var("IRONVIRT_NO_REFERENCE").as_deref() == Ok("1") {
        eprintln!(
            "reference libvirtd not running; skipping the comparison (IRONVIRT_NO_REFERENCE=1)"
        );
        return false;
    }
    panic!(
        "the reference libvirtd is not running on {REF_SOCK}: start it with scripts/reference-libvirtd.sh \
         (or set IRONVIRT_NO_REFERENCE=1 to skip comparisons)"
    );
}

/// A running ironvirtd on temporary directories; stopped on drop.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub sock_dir: PathBuf,
    pub state_dir: PathBuf,
}

impl Daemon {
    pub fn start() -> Daemon {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock_dir = dir.path().join("run");
        let state_dir = dir.path().join("state");
        let mut d = Daemon {
            child: None,
            dir,
            sock_dir,
            state_dir,
        };
        d.spawn(extra);
        d
    }

    /// Starts the binary on this daemon's directories and waits for it.
    pub fn spawn(&mut self, extra: &[&str]) {
        let log = std::fs::File::create(self.dir.path().join("daemon.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_ironvirtd"))
            .arg("--socket-dir")
            .arg(&self.sock_dir)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ironvirtd");
        self.child = Some(child);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if UnixStream::connect(self.rw()).is_ok() && UnixStream::connect(self.ro()).is_ok() {
                return;
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("ironvirtd exited early ({st}): {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("ironvirtd did not come up: {}", self.log());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn rw(&self) -> PathBuf {
        self.sock_dir.join("libvirt-sock")
    }

    pub fn ro(&self) -> PathBuf {
        self.sock_dir.join("libvirt-sock-ro")
    }

    /// `test:///default` through this daemon's read-write socket.
    pub fn test_uri(&self) -> String {
        format!("test+unix:///default?socket={}", self.rw().display())
    }

    pub fn test_uri_ro(&self) -> String {
        format!("test+unix:///default?socket={}", self.ro().display())
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill with a pid we spawned and a valid signal number.
        unsafe {
            libc::kill(self.pid() as i32, sig);
        }
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let t = Instant::now();
        while t.elapsed() < limit {
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.signal_child(&c, libc::SIGTERM);
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Daemon {
    fn signal_child(&self, c: &Child, sig: i32) {
        // SAFETY: kill with a pid we spawned and a valid signal number.
        unsafe {
            libc::kill(c.id() as i32, sig);
        }
    }
}

/// A raw protocol client.
pub struct Raw {
    pub s: UnixStream,
    serial: u32,
}

/// A reply as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub header: Header,
    pub payload: Vec<u8>,
}

impl Reply {
    pub fn error(&self) -> Option<RemoteError> {
        (self.header.status == Status::ERROR)
            .then(|| RemoteError::from_xdr(&self.payload).expect("error decodes"))
    }

    pub fn ok(&self) -> bool {
        self.header.status == Status::OK
    }
}

impl Raw {
    pub fn connect(path: &Path) -> Raw {
        let s =
            UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Raw { s, serial: 0 }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.s.write_all(bytes)
    }

    /// Sends a packet with the given header fields.
    pub fn send(
        &mut self,
        prog: u32,
        vers: u32,
        proc_: i32,
        type_: i32,
        status: i32,
        payload: &[u8],
    ) -> u32 {
        self.serial += 1;
        let h = Header {
            prog,
            vers,
            proc_,
            type_: MessageType(type_),
            serial: self.serial,
            status: Status(status),
        };
        let mut b = encode_packet(&h, &()).expect("encodes");
        b.extend_from_slice(payload);
        let len = (b.len() as u32).to_be_bytes();
        b[..4].copy_from_slice(&len);
        self.s.write_all(&b).expect("write");
        self.serial
    }

    /// Reads one packet; None at end of stream.
    pub fn recv(&mut self) -> Option<Reply> {
        let mut lw = [0u8; 4];
        if self.s.read_exact(&mut lw).is_err() {
            return None;
        }
        let n = u32::from_be_bytes(lw) as usize;
        assert!((28..=33_554_436).contains(&n), "bad length {n}");
        let mut b = vec![0u8; n];
        b[..4].copy_from_slice(&lw);
        self.s.read_exact(&mut b[4..]).ok()?;
        let p = Packet::parse(&b).expect("reply parses");
        Some(Reply {
            header: p.header,
            payload: p.payload,
        })
    }

    /// A call of the remote program; returns its reply.
    pub fn call(&mut self, proc_: i32, payload: &[u8]) -> Reply {
        let serial = self.send(REMOTE_PROGRAM, 1, proc_, 0, 0, payload);
        loop {
            let r = self
                .recv()
                .unwrap_or_else(|| panic!("no reply to procedure {proc_}"));
            if r.header.type_ == MessageType::REPLY {
                assert_eq!(r.header.serial, serial);
                return r;
            }
        }
    }

    /// A call that may get no reply (the connection closes).
    pub fn try_call(&mut self, proc_: i32, payload: &[u8]) -> Option<Reply> {
        self.serial += 1;
        let h = Header {
            prog: REMOTE_PROGRAM,
            vers: 1,
            proc_,
            type_: MessageType::CALL,
            serial: self.serial,
            status: Status::OK,
        };
        let mut b = encode_packet(&h, &()).expect("encodes");
        b.extend_from_slice(payload);
        let len = (b.len() as u32).to_be_bytes();
        b[..4].copy_from_slice(&len);
        self.s.write_all(&b).ok()?;
        loop {
            let r = self.recv()?;
            if r.header.type_ == MessageType::REPLY {
                return Some(r);
            }
        }
    }

    pub fn open(&mut self, uri: &str) -> Reply {
        use ironvirt_xdr::XdrEncode;
        let a = ConnectOpenArgs {
            name: Some(uri.into()),
            flags: 0,
        };
        self.call(1, &a.to_xdr().expect("encodes"))
    }

    /// Whether the peer closed the connection (within the read timeout).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.s.read(&mut b), Ok(0))
            || matches!(self.s.read(&mut b), Err(ref e) if e.kind() == std::io::ErrorKind::ConnectionReset)
    }
}

/// Runs the real virsh.
pub fn virsh(uri: &str, args: &[&str]) -> Output {
    Command::new("virsh")
        .arg("-c")
        .arg(uri)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .expect("run virsh")
}

/// Runs virsh with one command string (several commands separated by `;`
/// on one connection) and returns stdout and stderr together.
pub fn virsh_script(uri: &str, script: &str) -> String {
    let o = virsh(uri, &[script]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 6];
    ironvirt_driver::fill_random(&mut b);
    format!(
        "{prefix}-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// Asserts that the daemon still serves a new client.
pub fn assert_serving(d: &Daemon) {
    let mut c = Raw::connect(&d.rw());
    let r = c.open("test:///default");
    assert!(
        r.ok(),
        "daemon no longer answers: {:?}\n{}",
        r.error(),
        d.log()
    );
    let r = c.call(ironvirt_proto::procedures::num::CONNECT_GET_TYPE, &[]);
    assert!(r.ok());
}
