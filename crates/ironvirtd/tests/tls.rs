//! The TLS listener with a private CA made here: the real virsh and
//! python3-libvirt connect with client certificates in libvirt's pkipath
//! layout; clients of another CA, without a certificate or off
//! `tls_allowed_dn_list` are refused while the daemon keeps serving.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A certificate authority.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf certificate and its key, both PEM.
    fn issue(&self, dn: &[(DnType, &str)], server: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = DistinguishedName::new();
        for (t, v) in dn {
            p.distinguished_name.push(t.clone(), *v);
        }
        // What libvirt's certificate checks ask for.
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        if server {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            // libvirt's client matches the host name of the URI.
            p.subject_alt_names = vec![
                SanType::IpAddress("127.0.0.1".parse().unwrap()),
                SanType::DnsName("localhost".try_into().unwrap()),
            ];
        } else {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// A client's pkipath directory: `cacert.pem`, and `clientcert.pem` with
/// `clientkey.pem` when given.
fn client_dir(base: &Path, name: &str, ca: &str, cert: Option<&(String, String)>) -> PathBuf {
    let d = base.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("cacert.pem"), ca).unwrap();
    if let Some((c, k)) = cert {
        std::fs::write(d.join("clientcert.pem"), c).unwrap();
        std::fs::write(d.join("clientkey.pem"), k).unwrap();
    }
    d
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What libvirt 9.0's client prints when libvirtd refuses its certificate
/// (no certificate, another CA's, a subject off `tls_allowed_dn_list`):
/// measured against Debian's libvirtd 9.0 with the same kinds of
/// certificates.
const REFUSED: &str = "error: Unable to read TLS confirmation: Input/output error";

/// A daemon with a TLS listener, its CA and a scratch directory.
struct Tls {
    d: Daemon,
    port: u16,
    ca: Ca,
    pki: tempfile::TempDir,
}

impl Tls {
    /// Starts ironvirtd with server credentials of a new CA and `extra`
    /// configuration lines.
    fn start(extra_conf: &str) -> Tls {
        let ca = Ca::new("ironvirt test CA");
        let pki = tempfile::tempdir().unwrap();
        let srv = pki.path().join("server");
        std::fs::create_dir_all(srv.join("private")).unwrap();
        let (cert, key) = ca.issue(
            &[
                (DnType::OrganizationName, "ironvirt"),
                (DnType::CommonName, "localhost"),
            ],
            true,
        );
        std::fs::write(srv.join("cacert.pem"), ca.pem()).unwrap();
        std::fs::write(srv.join("servercert.pem"), cert).unwrap();
        std::fs::write(srv.join("private/serverkey.pem"), key).unwrap();
        let conf = pki.path().join("ironvirtd.conf");
        std::fs::write(
            &conf,
            format!(
                "key_file = \"{s}/private/serverkey.pem\"\ncert_file = \"{s}/servercert.pem\"\n\
                 ca_file = \"{s}/cacert.pem\"\n{extra_conf}\n",
                s = srv.display()
            ),
        )
        .unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let d = Daemon::start_with(&["--config", conf.to_str().unwrap(), "--listen-tls", &addr]);
        Tls { d, port, ca, pki }
    }

    fn uri(&self, pkipath: &Path) -> String {
        format!(
            "test+tls://127.0.0.1:{}/default?pkipath={}",
            self.port,
            pkipath.display()
        )
    }

    /// A pkipath with a client certificate of this daemon's CA.
    fn good_client(&self, name: &str, cn: &str) -> PathBuf {
        let c = self.ca.issue(
            &[
                (DnType::OrganizationName, "ironvirt"),
                (DnType::CommonName, cn),
            ],
            false,
        );
        client_dir(self.pki.path(), name, &self.ca.pem(), Some(&c))
    }

    /// A pkipath whose client certificate another CA issued. The client
    /// trusts both CAs: the daemon's for the server's certificate, the
    /// other one because libvirt's client first checks its own certificate
    /// against its CA file.
    fn foreign_client(&self) -> PathBuf {
        let other = Ca::new("another CA");
        let c = other.issue(&[(DnType::CommonName, "intruder")], false);
        let cas = format!("{}{}", self.ca.pem(), other.pem());
        client_dir(self.pki.path(), "foreign", &cas, Some(&c))
    }

    /// A pkipath without any client certificate.
    fn anonymous_client(&self) -> PathBuf {
        client_dir(self.pki.path(), "anonymous", &self.ca.pem(), None)
    }

    /// Asserts that a good client is still served.
    fn assert_serving(&self) {
        let dir = self.good_client("later", "good-later");
        let o = virsh(&self.uri(&dir), &["domstate", "test"]);
        assert!(
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("running"),
            "daemon stopped serving TLS: {}{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.d.log()
        );
        common::assert_serving(&self.d);
    }
}

/// The daemon's log once it holds `needle` (the daemon may log a refusal
/// just after the client saw it); panics with the log otherwise.
fn log_with(d: &Daemon, needle: &str) -> String {
    let t = std::time::Instant::now();
    loop {
        let log = d.log();
        if log.contains(needle) {
            return log;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "'{needle}' not in the log:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn virsh_over_tls_sees_what_unix_sees() {
    let t = Tls::start("");
    let dir = t.good_client("client", "client1");
    let script = "list --all; dominfo test; domstate --reason test; nodeinfo";
    let o = virsh(&t.uri(&dir), &[script]);
    assert!(o.status.success(), "{}\n{}", text(&o), t.d.log());
    let tls = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(tls.contains(" 1    test   running"), "{tls}");
    assert!(tls.contains("Name:           test"), "{tls}");
    // Same answers as the read-write UNIX socket (CPU time is a clock).
    let unix = virsh_script(&t.d.test_uri(), script);
    let no_clock = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("CPU time:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(no_clock(&tls), no_clock(&unix));
    // Read-write access, as on the UNIX socket.
    let name = unique("tls");
    let xml = t.pki.path().join("dom.xml");
    std::fs::write(
        &xml,
        format!("<domain type='test'><name>{name}</name><memory>65536</memory><os><type>hvm</type></os></domain>"),
    )
    .unwrap();
    let o = virsh(
        &t.uri(&dir),
        &[&format!(
            "define {}; start {name}; domstate {name}; destroy {name}; undefine {name}",
            xml.display()
        )],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("Domain '{name}' started")),
        "{}",
        text(&o)
    );
}

#[test]
fn client_of_another_ca_is_refused() {
    let t = Tls::start("");
    let o = virsh(&t.uri(&t.foreign_client()), &["list", "--all"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(REFUSED), "{}", text(&o));
    t.assert_serving();
    log_with(&t.d, "refusing TLS client");
}

#[test]
fn client_without_certificate_is_refused() {
    let t = Tls::start("");
    let o = virsh(&t.uri(&t.anonymous_client()), &["list", "--all"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(REFUSED), "{}", text(&o));
    t.assert_serving();
}

#[test]
fn no_verify_accepts_any_client() {
    let t = Tls::start("tls_no_verify_certificate = 1");
    for dir in [t.foreign_client(), t.anonymous_client()] {
        let o = virsh(&t.uri(&dir), &["domstate", "test"]);
        assert!(o.status.success(), "{}\n{}", text(&o), t.d.log());
        assert!(text(&o).contains("running"));
    }
}

/// The subject of a PEM certificate as libvirtd matches it against
/// `tls_allowed_dn_list`, printed by libvirt's own `virt-pki-query-dn`.
fn libvirt_dn(pem: &Path) -> String {
    let o = Command::new("virt-pki-query-dn").arg(pem).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout)
        .unwrap()
        .trim_end_matches('\n')
        .to_string()
}

#[test]
fn allowed_dn_list_is_enforced() {
    let t = Tls::start("tls_allowed_dn_list = [ \"O=ironvirt,CN=good*\", \"CN=other\" ]");
    let good = t.good_client("good", "good-1");
    assert_eq!(
        libvirt_dn(&good.join("clientcert.pem")),
        "O=ironvirt,CN=good-1"
    );
    let o = virsh(&t.uri(&good), &["domstate", "test"]);
    assert!(o.status.success(), "{}\n{}", text(&o), t.d.log());
    // A subject with characters GnuTLS escapes.
    let bad = t.good_client("bad", "bad, \"quoted\" + <more>;");
    let o = virsh(&t.uri(&bad), &["domstate", "test"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(REFUSED), "{}", text(&o));
    // The daemon names the subject exactly as libvirtd would.
    let dn = libvirt_dn(&bad.join("clientcert.pem"));
    assert!(dn.contains("\\,") && dn.contains("\\\""), "{dn}");
    log_with(&t.d, &format!("'{dn}' is not on the list"));
    t.assert_serving();
}

#[test]
fn python_over_tls_is_secure_and_moves_big_replies() {
    let t = Tls::start("");
    let dir = t.good_client("py", "python");
    // A domain whose XML is far larger than a TLS record and the socket
    // buffers, read several times on one connection.
    let script = r#"
import libvirt, sys
c = libvirt.open(sys.argv[1])
print("secure", c.isSecure(), "encrypted", c.isEncrypted())
desc = "x" * (1 << 20)
name = sys.argv[2]
d = c.defineXML("<domain type='test'><name>%s</name><description>%s</description><memory>65536</memory><os><type>hvm</type></os></domain>" % (name, desc))
sizes = set(len(d.XMLDesc(0)) for _ in range(8))
print("sizes", len(sizes), min(sizes) > (1 << 20))
d.undefine()
print("domains", sorted(x.name() for x in c.listAllDomains()))
c.close()
"#;
    let name = unique("big");
    let o = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(t.uri(&dir))
        .arg(&name)
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}\n{}", t.d.log());
    assert!(out.contains("secure 1 encrypted 1"), "{out}");
    assert!(out.contains("sizes 1 True"), "{out}");
    assert!(out.contains("domains ['test']"), "{out}");
}

#[test]
fn missing_credentials_stop_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.conf");
    let key = dir.path().join("nokey.pem");
    let ca = Ca::new("ca");
    std::fs::write(dir.path().join("cacert.pem"), ca.pem()).unwrap();
    let (cert, _) = ca.issue(&[(DnType::CommonName, "localhost")], true);
    std::fs::write(dir.path().join("servercert.pem"), cert).unwrap();
    std::fs::write(
        &conf,
        format!(
            "key_file = \"{}\"\ncert_file = \"{d}/servercert.pem\"\nca_file = \"{d}/cacert.pem\"\n",
            key.display(),
            d = dir.path().display()
        ),
    )
    .unwrap();
    let run = |conf: &Path| {
        Command::new(env!("CARGO_BIN_EXE_ironvirtd"))
            .arg("--socket-dir")
            .arg(dir.path().join("run"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--config")
            .arg(conf)
            .arg("--listen-tls")
            .arg(format!("127.0.0.1:{}", free_port()))
            .output()
            .unwrap()
    };
    let o = run(&conf);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("cannot read server key '{}'", key.display())),
        "{err}"
    );
    // The socket directory was not left with sockets.
    assert!(!dir.path().join("run/libvirt-sock").exists());

    // libvirtd's default paths when the configuration names none.
    let sys_ca = Path::new("/etc/pki/CA/cacert.pem");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 && !sys_ca.exists() {
        let empty = dir.path().join("empty.conf");
        std::fs::write(&empty, "").unwrap();
        let o = run(&empty);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("cannot read CA certificate '/etc/pki/CA/cacert.pem'"),
            "{err}"
        );
    }

    // A key that does not belong to the certificate.
    std::fs::write(&key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let o = run(&conf);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("does not suit certificate"), "{err}");

    // A server certificate of another CA.
    let other = Ca::new("other");
    let (cert, k) = other.issue(&[(DnType::CommonName, "localhost")], true);
    std::fs::write(dir.path().join("servercert.pem"), cert).unwrap();
    std::fs::write(&key, k).unwrap();
    let o = run(&conf);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("failed validation against"), "{err}");
}

/// A TLS client of our own (rustls), which, unlike GnuTLS, sends its
/// certificate even when the daemon's CA did not issue it.
fn raw_client(
    port: u16,
    ca_pem: &str,
    cert: &(String, String),
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let chain = vec![CertificateDer::from_pem_slice(cert.0.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(cert.1.as_bytes()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let conn = rustls::ClientConnection::new(
        std::sync::Arc::new(config),
        ServerName::try_from("127.0.0.1").unwrap(),
    )
    .unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

fn call_packet(serial: u32, proc_: i32, payload: &[u8]) -> Vec<u8> {
    use ironvirt_proto::packet::{encode_packet, Header, MessageType, Status};
    let h = Header {
        prog: ironvirt_proto::program::REMOTE_PROGRAM,
        vers: 1,
        proc_,
        type_: MessageType::CALL,
        serial,
        status: Status::OK,
    };
    let mut b = encode_packet(&h, &()).unwrap();
    b.extend_from_slice(payload);
    let len = (b.len() as u32).to_be_bytes();
    b[..4].copy_from_slice(&len);
    b
}

fn read_packet(s: &mut impl std::io::Read) -> ironvirt_proto::Packet {
    let mut lw = [0u8; 4];
    s.read_exact(&mut lw).unwrap();
    let mut b = vec![0u8; u32::from_be_bytes(lw) as usize];
    b[..4].copy_from_slice(&lw);
    s.read_exact(&mut b[4..]).unwrap();
    ironvirt_proto::Packet::parse(&b).unwrap()
}

#[test]
fn certificate_of_another_ca_is_refused_when_sent() {
    use std::io::Read;
    let t = Tls::start("");
    let other = Ca::new("another CA");
    let cert = other.issue(&[(DnType::CommonName, "intruder")], false);
    let mut s = raw_client(t.port, &t.ca.pem(), &cert);
    // No confirmation byte: the connection ends (with an alert).
    let mut b = [0u8; 1];
    let r = s.read(&mut b);
    assert!(!matches!(r, Ok(1)), "{r:?}");
    log_with(&t.d, "refusing TLS client");
    t.assert_serving();
}

#[test]
fn pipelined_calls_with_a_slow_reader() {
    use ironvirt_proto::procedures::num;
    use ironvirt_proto::{MessageType, Status};
    use ironvirt_xdr::XdrEncode;
    use std::io::{Read, Write};
    let t = Tls::start("");
    let cert = t.ca.issue(
        &[
            (DnType::OrganizationName, "ironvirt"),
            (DnType::CommonName, "raw"),
        ],
        false,
    );
    let mut s = raw_client(t.port, &t.ca.pem(), &cert);
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    assert_eq!(b, [1], "confirmation byte");
    let open = ironvirt_proto::remote::ConnectOpenArgs {
        name: Some("test:///default".into()),
        flags: 0,
    };
    s.write_all(&call_packet(1, num::CONNECT_OPEN, &open.to_xdr().unwrap()))
        .unwrap();
    let r = read_packet(&mut s);
    assert_eq!(r.header.status, Status::OK);
    // Many calls at once, then their replies (megabytes: more than the
    // socket buffers hold) read only afterwards.
    let n = 400u32;
    let mut calls = Vec::new();
    for i in 0..n {
        calls.extend(call_packet(2 + i, num::CONNECT_GET_CAPABILITIES, &[]));
    }
    s.write_all(&calls).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut total = 0;
    let mut serials = Vec::new();
    while serials.len() < n as usize {
        let r = read_packet(&mut s);
        if r.header.type_ != MessageType::REPLY {
            continue;
        }
        assert_eq!(r.header.status, Status::OK);
        total += r.payload.len();
        serials.push(r.header.serial);
    }
    serials.sort_unstable();
    assert_eq!(serials, (2..2 + n).collect::<Vec<_>>());
    assert!(
        total > 1 << 20,
        "replies too small to fill buffers: {total}"
    );
    // CONNECT_IS_SECURE answers 1 on TLS.
    s.write_all(&call_packet(9999, num::CONNECT_IS_SECURE, &[]))
        .unwrap();
    let r = loop {
        let r = read_packet(&mut s);
        if r.header.type_ == MessageType::REPLY {
            break r;
        }
    };
    assert_eq!(r.header.serial, 9999);
    assert_eq!(r.payload, 1u32.to_be_bytes());
}
