//! Each transport end to end: ssh (a stand-in `ssh` that runs libvirt's
//! remote proxy command locally, with a stand-in `nc`), ext, plain TCP,
//! TLS with a private CA (against an in-test TLS front of the reference
//! daemon, and against ironvirtd's own TLS listener), and the errors of
//! sockets that are not there.

mod common;

use common::{domain_xml, unique, Backend, Daemon};
use ironvirt_driver::{Driver, ErrorDomain, ErrorNumber, Uri};
use ironvirt_remote::RemoteDriver;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The daemons to run against: the reference (unless explicitly absent)
/// and a fresh ironvirtd.
fn backends() -> Vec<Backend> {
    Backend::reference()
        .into_iter()
        .chain(std::iter::once(Backend::ironvirtd()))
        .collect()
}

fn exercise(c: &RemoteDriver, label: &str) {
    let t = c
        .domain_lookup_by_name("test")
        .unwrap_or_else(|e| panic!("{label}: lookup: {e}"));
    assert!(c.domain_get_info(&t).expect("info").nr_virt_cpu >= 1);
    let name = unique("rtransport");
    let d = c.domain_define_xml(&domain_xml(&name), 0).expect("define");
    assert!(c.domain_get_xml_desc(&d, 0).expect("xml").contains(&name));
    c.domain_undefine(&d, 0).expect("undefine");
}

fn write_script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// A stand-in for `nc -U SOCKET`, in Python from the standard library.
const FAKE_NC: &str = r#"#!/usr/bin/python3
import os, socket, sys, threading
args = sys.argv[1:]
if "-U" not in args:
    sys.stderr.write("usage: nc [-q0] -U socket\n")
    sys.exit(1)
s = socket.socket(socket.AF_UNIX)
s.connect(args[args.index("-U") + 1])
def up():
    while True:
        d = os.read(0, 65536)
        if not d:
            break
        s.sendall(d)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while True:
    d = s.recv(65536)
    if not d:
        break
    os.write(1, d)
"#;

/// A stand-in for `ssh`: logs its arguments, then runs the remote command
/// the way sshd would, through a shell, on this host.
fn fake_ssh(dir: &Path) -> PathBuf {
    let log = dir.join("ssh-argv");
    write_script(
        dir,
        "ssh",
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > '{}'\nwhile [ \"$1\" != \"--\" ]; do shift; done\nshift; shift\nexec sh -c \"$1\"\n",
            log.display()
        ),
    )
}

#[test]
fn ssh_transport_runs_libvirts_proxy_command() {
    for b in backends() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ssh = fake_ssh(dir.path());
        let nc = write_script(dir.path(), "nc", FAKE_NC);
        let uri = format!(
            "test+ssh://admin@virthost:2222/default?command={}&netcat={}&socket={}&keyfile=/k/id&no_tty=1",
            ssh.display(),
            nc.display(),
            b.sock.display()
        );
        let c = ironvirt_remote::connect(&Uri::parse(&uri).expect("uri"), false)
            .expect("open over ssh");
        assert!(c.is_secure());
        exercise(&c, b.label);
        let argv: Vec<String> = std::fs::read_to_string(dir.path().join("ssh-argv"))
            .expect("argv log")
            .lines()
            .map(String::from)
            .collect();
        let ncq = nc.display();
        assert_eq!(
            argv,
            [
                "-p", "2222", "-l", "admin", "-i", "/k/id", "-T", "-e", "none", "-o", "BatchMode=yes", "--", "virthost",
                &format!(
                    "sh -c 'if '{ncq}' -q 2>&1 | grep \"requires an argument\" >/dev/null 2>&1; then ARG=-q0;else ARG=;fi;'{ncq}' $ARG -U {}'",
                    b.sock.display()
                ),
            ]
        );
        c.close().expect("close");
    }
}

#[test]
fn ssh_failure_names_what_ssh_said() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ssh = write_script(
        dir.path(),
        "ssh",
        "#!/bin/sh\necho 'ssh: connect to host nowhere port 22: Connection refused' >&2\nexit 255\n",
    );
    let uri = format!("qemu+ssh://nowhere/system?command={}", ssh.display());
    let e =
        ironvirt_remote::connect(&Uri::parse(&uri).expect("uri"), false).expect_err("ssh fails");
    assert_eq!(
        (e.code, e.domain),
        (ErrorNumber::SYSTEM_ERROR, ErrorDomain::RPC),
        "{e:?}"
    );
    // libvirt's form: "Cannot recv data: <ssh's stderr>: Connection reset by peer".
    assert_eq!(
        e.message,
        "Cannot recv data: ssh: connect to host nowhere port 22: Connection refused: Connection reset by peer"
    );
}

#[test]
fn ext_transport_talks_over_a_commands_stdio() {
    for b in backends() {
        let dir = tempfile::tempdir().expect("temp dir");
        let nc = write_script(dir.path(), "nc", FAKE_NC);
        let cmd = write_script(
            dir.path(),
            "proxy",
            &format!(
                "#!/bin/sh\nexec '{}' -U '{}'\n",
                nc.display(),
                b.sock.display()
            ),
        );
        let uri = format!("test+ext:///default?command={}", cmd.display());
        let c = ironvirt_remote::connect(&Uri::parse(&uri).expect("uri"), false)
            .expect("open over ext");
        assert!(!c.is_secure(), "libvirt never calls an ext command secure");
        exercise(&c, b.label);
    }
    // A command that exits at once: libvirt's words (measured with /bin/true).
    let e = ironvirt_remote::connect(
        &Uri::parse("qemu+ext:///system?command=/bin/true").expect("uri"),
        false,
    )
    .expect_err("exits");
    assert_eq!(e.message, "Cannot recv data: : Connection reset by peer");
    assert_eq!(e.int1, 104);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Waits until something listens on `port` of 127.0.0.1.
fn wait_port(port: u16, d: &Daemon) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on port {port}; daemon log:\n{}",
            d.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn tcp_transport() {
    let port = free_port();
    let d = Daemon::start(&["--listen-tcp", &format!("127.0.0.1:{port}")]);
    wait_port(port, &d);
    let c = ironvirt_remote::connect(
        &Uri::parse(&format!("test+tcp://127.0.0.1:{port}/default")).expect("uri"),
        false,
    )
    .expect("open over tcp");
    assert!(!c.is_secure());
    exercise(&c, "ironvirtd");
    drop(d);
    let e = ironvirt_remote::connect(
        &Uri::parse("qemu+tcp://127.0.0.1:1/system").expect("uri"),
        false,
    )
    .expect_err("refused");
    assert_eq!(
        (e.code, e.domain, e.int1),
        (ErrorNumber::SYSTEM_ERROR, ErrorDomain::RPC, 111)
    );
    assert_eq!(
        e.message,
        "unable to connect to server at '127.0.0.1:1': Connection refused"
    );
}

#[test]
fn missing_socket_reads_like_libvirt() {
    let e = ironvirt_remote::connect(
        &Uri::parse("qemu+unix:///system?socket=/nonexist").expect("uri"),
        false,
    )
    .expect_err("no socket");
    assert_eq!(
        (e.code, e.domain, e.int1),
        (ErrorNumber::SYSTEM_ERROR, ErrorDomain::RPC, 2)
    );
    assert_eq!(
        e.message,
        "Failed to connect socket to '/nonexist': No such file or directory"
    );
}

/// A private PKI: a CA, a server certificate for 127.0.0.1/localhost and a
/// client certificate, laid out as libvirt's `pkipath` expects.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    server_cert: String,
    server_key: String,
}

fn make_pki(with_client_cert: bool) -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "ironvirt test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");

    let srv_key = KeyPair::generate().expect("server key");
    let mut srv = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    srv.distinguished_name.push(DnType::CommonName, "localhost");
    srv.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let srv_cert = srv
        .signed_by(&srv_key, &ca_cert, &ca_key)
        .expect("server cert");

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("cacert.pem"), ca_cert.pem()).expect("write");
    if with_client_cert {
        let cl_key = KeyPair::generate().expect("client key");
        let mut cl = CertificateParams::new(Vec::<String>::new()).expect("client params");
        cl.distinguished_name.push(DnType::CommonName, "client");
        cl.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cl_cert = cl
            .signed_by(&cl_key, &ca_cert, &ca_key)
            .expect("client cert");
        std::fs::write(dir.path().join("clientcert.pem"), cl_cert.pem()).expect("write");
        std::fs::write(dir.path().join("clientkey.pem"), cl_key.serialize_pem()).expect("write");
    }
    // The daemon side, in libvirtd's file names.
    std::fs::write(dir.path().join("servercert.pem"), srv_cert.pem()).expect("write");
    std::fs::write(dir.path().join("serverkey.pem"), srv_key.serialize_pem()).expect("write");
    Pki {
        dir,
        ca_pem: ca_cert.pem(),
        server_cert: srv_cert.pem(),
        server_key: srv_key.serialize_pem(),
    }
}

impl Pki {
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A TLS listener in front of a daemon's UNIX socket that behaves like
/// libvirtd's: it requires a client certificate from `ca_pem`'s CA and
/// confirms the handshake with a `\1` byte.
fn tls_front(pki: &Pki, upstream: PathBuf) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(c.expect("ca pem")).expect("add ca");
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .expect("client verifier");
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.server_cert.as_bytes())
            .map(|c| c.expect("cert"))
            .collect();
    let key = PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).expect("key");
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .expect("server config"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { return };
            let config = Arc::clone(&config);
            let upstream = upstream.clone();
            std::thread::spawn(move || serve_tls(config, s, &upstream));
        }
    });
    port
}

fn serve_tls(config: Arc<rustls::ServerConfig>, mut tcp: TcpStream, upstream: &Path) {
    let Ok(mut conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    while conn.is_handshaking() {
        if conn.complete_io(&mut tcp).is_err() {
            return;
        }
    }
    if conn.writer().write_all(&[1]).is_err() || conn.complete_io(&mut tcp).is_err() {
        return;
    }
    let Ok(unix) = UnixStream::connect(upstream) else {
        return;
    };
    let conn = Arc::new(Mutex::new(conn));
    let (c2, mut tcp_w, mut unix_r) = (
        Arc::clone(&conn),
        tcp.try_clone().expect("clone"),
        unix.try_clone().expect("clone"),
    );
    // Daemon -> client.
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = unix_r.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut out = Vec::new();
            {
                let mut c = c2.lock().expect("conn");
                if c.writer().write_all(&buf[..n]).is_err() {
                    break;
                }
                while c.wants_write() {
                    if c.write_tls(&mut out).is_err() {
                        break;
                    }
                }
            }
            if tcp_w.write_all(&out).is_err() {
                break;
            }
        }
        let _ = tcp_w.shutdown(std::net::Shutdown::Both);
    });
    // Client -> daemon.
    let mut unix_w = unix;
    let mut raw = vec![0u8; 65536];
    loop {
        let n = match tcp.read(&mut raw) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut plain = Vec::new();
        {
            let mut c = conn.lock().expect("conn");
            let mut slice = &raw[..n];
            while !slice.is_empty() {
                if c.read_tls(&mut slice).is_err() || c.process_new_packets().is_err() {
                    return;
                }
                let mut buf = [0u8; 65536];
                loop {
                    match c.reader().read(&mut buf) {
                        Ok(0) => break,
                        Ok(k) => plain.extend_from_slice(&buf[..k]),
                        Err(_) => break,
                    }
                }
            }
        }
        if unix_w.write_all(&plain).is_err() {
            break;
        }
    }
    let _ = unix_w.shutdown(std::net::Shutdown::Both);
}

fn tls_uri(port: u16, pkipath: &Path, extra: &str) -> Uri {
    Uri::parse(&format!(
        "test+tls://127.0.0.1:{port}/default?pkipath={}{extra}",
        pkipath.display()
    ))
    .expect("uri")
}

/// Checks the TLS client against a libvirt-style TLS listener on `port`
/// whose certificates come from `pki`.
fn check_tls(port: u16, pki: &Pki, label: &str) {
    let c = ironvirt_remote::connect(&tls_uri(port, pki.path(), ""), false)
        .unwrap_or_else(|e| panic!("{label}: TLS open: {e}"));
    assert!(c.is_secure() && c.is_encrypted());
    exercise(&c, label);
    // Many calls in flight over one TLS session.
    let c = Arc::new(c);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                for _ in 0..100 {
                    let d = c.domain_lookup_by_name("test").expect("lookup");
                    c.domain_get_info(&d).expect("info");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    // A large reply (several TLS records).
    assert!(c.get_capabilities().expect("caps").len() > 1000);

    // Without a client certificate the daemon refuses us.
    let nocert = make_pki(false);
    std::fs::copy(
        pki.path().join("cacert.pem"),
        nocert.path().join("cacert.pem"),
    )
    .expect("copy ca");
    let e = ironvirt_remote::connect(&tls_uri(port, nocert.path(), ""), false)
        .expect_err("no client cert");
    assert_eq!(
        (e.code, e.domain),
        (ErrorNumber::RPC, ErrorDomain::RPC),
        "{label}: {e:?}"
    );
    assert_eq!(
        e.message,
        "server verification (of our certificate or IP address) failed"
    );

    // Trusting another CA, we refuse the daemon...
    let other = make_pki(true);
    let e =
        ironvirt_remote::connect(&tls_uri(port, other.path(), ""), false).expect_err("wrong CA");
    assert_eq!(
        (e.code, e.domain),
        (ErrorNumber::SYSTEM_ERROR, ErrorDomain::RPC),
        "{label}: {e:?}"
    );
    assert!(
        e.message.starts_with("Unable to verify TLS peer"),
        "{label}: {e:?}"
    );
    // ... unless told not to verify; then the daemon refuses our certificate.
    let e = ironvirt_remote::connect(&tls_uri(port, other.path(), "&no_verify=1"), false)
        .expect_err("our cert");
    assert_eq!(
        e.message, "server verification (of our certificate or IP address) failed",
        "{label}"
    );
}

#[test]
fn tls_with_a_private_ca_against_a_libvirt_style_listener() {
    for b in backends() {
        let pki = make_pki(true);
        let port = tls_front(&pki, b.sock.clone());
        check_tls(port, &pki, b.label);
    }
}

#[test]
fn tls_against_ironvirtds_listener() {
    let pki = make_pki(true);
    let conf = pki.path().join("ironvirtd.conf");
    std::fs::write(
        &conf,
        format!(
            "key_file = \"{0}/serverkey.pem\"\ncert_file = \"{0}/servercert.pem\"\nca_file = \"{0}/cacert.pem\"\n",
            pki.path().display()
        ),
    )
    .expect("config");
    let port = free_port();
    let d = Daemon::start(&[
        "--config",
        &conf.display().to_string(),
        "--listen-tls",
        &format!("127.0.0.1:{port}"),
    ]);
    wait_port(port, &d);
    check_tls(port, &pki, "ironvirtd");
}
