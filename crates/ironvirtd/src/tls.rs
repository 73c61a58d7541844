//! The TLS listener, as libvirtd's `listen_tls`: X.509 certificates in
//! libvirt's places, a client certificate required and checked against the
//! CA (`tls_no_verify_certificate = 0`) and optionally against
//! `tls_allowed_dn_list`, TLS 1.2 or 1.3.
//!
//! The wire protocol of a TLS connection, as libvirt's client expects it:
//! after the handshake the daemon checks the client's certificate and
//! sends one byte, 1, through the encrypted channel; a client it refuses
//! is closed without that byte. RPC packets follow, exactly as on a UNIX
//! socket.

use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

use crate::config::Config;
use crate::sock::Sock;

/// libvirtd's TLS port.
pub const DEFAULT_PORT: u16 = 16514;

/// Where the daemon's credentials are and how clients are checked
/// (libvirtd.conf names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `key_file`: the server's private key (PEM).
    pub key: PathBuf,
    /// `cert_file`: the server's certificate (PEM; may hold intermediates
    /// after it).
    pub cert: PathBuf,
    /// `ca_file`: the CA certificates clients' certificates must chain to.
    pub ca: PathBuf,
    /// `crl_file`: revoked client certificates; ignored when the file does
    /// not exist, as libvirtd does.
    pub crl: PathBuf,
    /// Whether a client must present a valid certificate
    /// (`tls_no_verify_certificate = 0`, the default).
    pub verify: bool,
    /// `tls_allowed_dn_list`: shell patterns one of which the client
    /// certificate's subject must match; None allows every subject.
    pub allowed_dn: Option<Vec<String>>,
}

impl Settings {
    /// The settings from the configuration file, with libvirtd's default
    /// paths for this user: `/etc/pki/...` as root, `~/.pki/libvirt/`
    /// otherwise.
    pub fn from_config(cfg: &Config, root: bool, home: &Path) -> Result<Settings, String> {
        let path = |key: &str| -> Result<Option<PathBuf>, String> {
            match (cfg.str(key), cfg.int(key)) {
                (Some(s), _) => Ok(Some(PathBuf::from(s))),
                (None, Some(_)) => Err(format!("{key} must be a quoted string")),
                (None, None) => Ok(None),
            }
        };
        let (key, cert, ca) = (path("key_file")?, path("cert_file")?, path("ca_file")?);
        let crl = path("crl_file")?;
        let (mut dflt_key, mut dflt_cert, mut dflt_ca, mut dflt_crl) = default_paths(root, home);
        if !root {
            // As libvirtd: a file missing from ~/.pki/libvirt is taken from
            // the system's place (the key and certificate as a pair).
            let (sk, sc, sa, sr) = default_paths(true, home);
            if !dflt_ca.exists() {
                dflt_ca = sa;
            }
            if !dflt_crl.exists() {
                dflt_crl = sr;
            }
            if !dflt_key.exists() || !dflt_cert.exists() {
                (dflt_key, dflt_cert) = (sk, sc);
            }
        }
        // As libvirtd: naming any of the three files means naming all.
        let (key, cert, ca) = match (key, cert, ca) {
            (None, None, None) => (dflt_key, dflt_cert, dflt_ca),
            (Some(k), Some(c), Some(a)) => (k, c, a),
            (_, _, None) => {
                return Err("No CA certificate path set to match server key/cert".into())
            }
            (_, None, _) => return Err("No server certificate path set to match server key".into()),
            (None, _, _) => return Err("No server key path set to match server cert".into()),
        };
        // SASL on top of TLS is not offered: refuse rather than serve
        // clients the administrator meant to authenticate.
        match cfg.str("auth_tls") {
            None | Some("none") => {}
            Some(other) => {
                return Err(format!(
                    "auth_tls = \"{other}\" is not supported; only \"none\" (the client certificate is the credential)"
                ))
            }
        }
        if cfg.str("tls_priority").is_some() {
            tracing::warn!("tls_priority is a GnuTLS priority string and is ignored: TLS 1.3 and 1.2 with rustls' default cipher suites are offered");
        }
        let verify = match cfg.int("tls_no_verify_certificate") {
            None | Some(0) => true,
            Some(_) => false,
        };
        let allowed_dn = match cfg.list("tls_allowed_dn_list") {
            Some(l) => Some(l.to_vec()),
            None if cfg.str("tls_allowed_dn_list").is_some() => {
                return Err("tls_allowed_dn_list must be a list of strings".into())
            }
            None => None,
        };
        Ok(Settings {
            key,
            cert,
            ca,
            crl: crl.unwrap_or(dflt_crl),
            verify,
            allowed_dn,
        })
    }
}

/// libvirtd's default key, certificate, CA and CRL paths.
pub fn default_paths(root: bool, home: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    if root {
        (
            "/etc/pki/libvirt/private/serverkey.pem".into(),
            "/etc/pki/libvirt/servercert.pem".into(),
            "/etc/pki/CA/cacert.pem".into(),
            "/etc/pki/CA/cacrl.pem".into(),
        )
    } else {
        let d = home.join(".pki/libvirt");
        (
            d.join("serverkey.pem"),
            d.join("servercert.pem"),
            d.join("cacert.pem"),
            d.join("cacrl.pem"),
        )
    }
}

/// Everything a TLS connection needs, loaded once at start.
pub struct Context {
    config: Arc<ServerConfig>,
    verify: bool,
    allowed_dn: Option<Vec<String>>,
}

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} '{}': {e}", path.display()))
}

fn certs(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_file(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot parse {what} '{}': {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} '{}' holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

impl Context {
    /// Loads and checks the credentials; an error names the file at fault.
    pub fn load(s: &Settings) -> Result<Context, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let ca_certs = certs("CA certificate", &s.ca)?;
        let chain = certs("server certificate", &s.cert)?;
        let key_pem = read_file("server key", &s.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| format!("cannot parse server key '{}': {e}", s.key.display()))?;

        let mut roots = RootCertStore::empty();
        for c in &ca_certs {
            roots
                .add(c.clone())
                .map_err(|e| format!("cannot use CA certificate '{}': {e}", s.ca.display()))?;
        }
        let roots = Arc::new(roots);

        // Our own certificate must chain to the CA, as libvirtd checks.
        let parsed = ParsedCertificate::try_from(&chain[0]).map_err(|e| {
            format!(
                "cannot parse server certificate '{}': {e}",
                s.cert.display()
            )
        })?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &roots,
            &chain[1..],
            UnixTime::now(),
            provider.signature_verification_algorithms.all,
        )
        .map_err(|e| {
            format!(
                "Our own certificate {} failed validation against {}: {e}",
                s.cert.display(),
                s.ca.display()
            )
        })?;

        let crls = match std::fs::read(&s.crl) {
            Ok(pem) => CertificateRevocationListDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("cannot parse CRL '{}': {e}", s.crl.display()))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::debug!(path = %s.crl.display(), "no CRL");
                Vec::new()
            }
            Err(e) => return Err(format!("cannot read CRL '{}': {e}", s.crl.display())),
        };
        let webpki = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
            .with_crls(crls)
            .allow_unknown_revocation_status()
            .build()
            .map_err(|e| format!("cannot use CA certificate '{}': {e}", s.ca.display()))?;
        let verifier: Arc<dyn ClientCertVerifier> = if s.verify {
            webpki
        } else {
            Arc::new(Lenient(webpki))
        };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| {
                format!(
                    "server key '{}' does not suit certificate '{}': {e}",
                    s.key.display(),
                    s.cert.display()
                )
            })?;
        // libvirt's client reads the confirmation byte right after its
        // handshake and fails when a session ticket comes first; it never
        // resumes sessions anyway.
        config.send_tls13_tickets = 0;
        Ok(Context {
            config: Arc::new(config),
            verify: s.verify,
            allowed_dn: s.allowed_dn.clone(),
        })
    }

    /// Runs the handshake on a new connection, checks the client and sends
    /// the confirmation byte; the connection is then ready for RPC.
    pub async fn accept(&self, tcp: tokio::net::TcpStream) -> Result<TlsSock, String> {
        let mut tls = rustls::ServerConnection::new(self.config.clone())
            .map_err(|e| format!("cannot start TLS: {e}"))?;
        loop {
            send_all(&mut tls, &tcp).await?;
            if !tls.is_handshaking() {
                break;
            }
            tcp.readable().await.map_err(|e| e.to_string())?;
            match tls.read_tls(&mut Io(&tcp)) {
                Ok(0) => return Err("client closed the connection during the TLS handshake".into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.to_string()),
            }
            if let Err(e) = tls.process_new_packets() {
                // Tell the client why (the alert is queued).
                let _ = tls.write_tls(&mut Io(&tcp));
                return Err(format!("TLS handshake failed: {e}"));
            }
        }
        self.check_client(&tls)?;
        tls.writer()
            .write_all(&[1])
            .map_err(|e| format!("cannot confirm the TLS session: {e}"))?;
        send_all(&mut tls, &tcp).await?;
        Ok(TlsSock {
            tcp,
            tls: Mutex::new(tls),
        })
    }

    /// What libvirtd checks after the handshake (the certificate itself was
    /// verified during it): the subject against `tls_allowed_dn_list`.
    fn check_client(&self, tls: &rustls::ServerConnection) -> Result<(), String> {
        let Some(cert) = tls.peer_certificates().and_then(|c| c.first()) else {
            if self.verify {
                return Err("No certificate was found".into());
            }
            return Ok(());
        };
        let dn = match x509_dn(cert) {
            Ok(dn) => dn,
            Err(e) if self.verify => return Err(e),
            Err(_) => return Ok(()),
        };
        tracing::debug!(%dn, "TLS client certificate");
        if let Some(list) = &self.allowed_dn {
            if !list.iter().any(|p| crate::x509::fnmatch(p, &dn)) {
                if !self.verify {
                    tracing::info!(%dn, "ignoring a client DN off tls_allowed_dn_list as tls_no_verify_certificate asks");
                    return Ok(());
                }
                return Err(format!(
                    "Client's Distinguished Name '{dn}' is not on the list of allowed clients (tls_allowed_dn_list); \
                     'virt-pki-query-dn clientcert.pem' prints a certificate's"
                ));
            }
        }
        Ok(())
    }
}

fn x509_dn(cert: &CertificateDer<'_>) -> Result<String, String> {
    crate::x509::subject_dn(cert.as_ref())
}

/// Writes every pending TLS record, waiting for the socket as needed.
async fn send_all(
    tls: &mut rustls::ServerConnection,
    tcp: &tokio::net::TcpStream,
) -> Result<(), String> {
    while tls.wants_write() {
        match tls.write_tls(&mut Io(tcp)) {
            Ok(0) => return Err("cannot write to the client".into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tcp.writable().await.map_err(|e| e.to_string())?
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// `tls_no_verify_certificate = 1`: a certificate is asked for but not
/// required, and a bad one is logged and accepted, as libvirtd does.
/// Signatures in the handshake are still checked (they prove the client
/// holds the key of the certificate it sent).
#[derive(Debug)]
struct Lenient(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for Lenient {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if let Err(e) = self.0.verify_client_cert(end_entity, intermediates, now) {
            tracing::info!(
                "ignoring a bad client certificate ({e}) as tls_no_verify_certificate asks"
            );
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Non-blocking reads and writes of a tokio TCP stream as `Read`/`Write`.
struct Io<'a>(&'a tokio::net::TcpStream);

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An established TLS connection, served like any other socket.
pub struct TlsSock {
    tcp: tokio::net::TcpStream,
    tls: Mutex<rustls::ServerConnection>,
}

impl TlsSock {
    fn lock(&self) -> MutexGuard<'_, rustls::ServerConnection> {
        // Only the connection's own task uses the lock; a poisoned one
        // still holds a consistent session.
        self.tls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a read would return something without the socket: plaintext
    /// already decrypted, the peer's close, or an error to report.
    fn buffered(&self) -> bool {
        match self.lock().process_new_packets() {
            Ok(st) => st.plaintext_bytes_to_read() > 0 || st.peer_has_closed(),
            Err(_) => true,
        }
    }
}

/// Writes pending TLS records until done or the socket is full.
fn flush_tls(tls: &mut rustls::ServerConnection, tcp: &tokio::net::TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(&mut Io(tcp)) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl Sock for TlsSock {
    async fn readable(&self) -> io::Result<()> {
        if self.buffered() {
            return Ok(());
        }
        self.tcp.readable().await
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send + '_ {
        self.tcp.writable()
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut tls = self.lock();
        let mut eof = false;
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                // the peer closed TCP without close_notify: an end all the same
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && eof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            // Nothing decrypted: read more records (WouldBlock ends here).
            eof = tls.read_tls(&mut Io(&self.tcp))? == 0;
            let res = tls.process_new_packets();
            // Answers the records may need (alerts, key updates).
            match flush_tls(&mut tls, &self.tcp) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            res.map_err(tls_error)?;
        }
    }

    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut tls = self.lock();
        // Records of earlier writes go first.
        flush_tls(&mut tls, &self.tcp)?;
        let n = tls.writer().write_vectored(bufs)?;
        match flush_tls(&mut tls, &self.tcp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn is_secure(&self) -> bool {
        true
    }

    fn has_pending_output(&self) -> bool {
        self.lock().wants_write()
    }

    fn try_flush(&self) -> io::Result<()> {
        flush_tls(&mut self.lock(), &self.tcp)
    }
}

impl Drop for TlsSock {
    fn drop(&mut self) {
        // A polite close when the socket takes it at once.
        let tls = self.tls.get_mut().unwrap_or_else(|p| p.into_inner());
        tls.send_close_notify();
        let _ = flush_tls(tls, &self.tcp);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn settings_defaults_and_overrides() {
        let home = Path::new("/home/u");
        let s = Settings::from_config(&Config::default(), true, home).unwrap();
        assert_eq!(s.key, Path::new("/etc/pki/libvirt/private/serverkey.pem"));
        assert_eq!(s.cert, Path::new("/etc/pki/libvirt/servercert.pem"));
        assert_eq!(s.ca, Path::new("/etc/pki/CA/cacert.pem"));
        assert_eq!(s.crl, Path::new("/etc/pki/CA/cacrl.pem"));
        assert!(s.verify);
        assert_eq!(s.allowed_dn, None);

        // A user's own files, and the system's for those missing.
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let pki = home.join(".pki/libvirt");
        std::fs::create_dir_all(&pki).unwrap();
        std::fs::write(pki.join("cacert.pem"), "").unwrap();
        std::fs::write(pki.join("serverkey.pem"), "").unwrap();
        let s = Settings::from_config(&Config::default(), false, home).unwrap();
        assert_eq!(s.ca, pki.join("cacert.pem"));
        assert_eq!(s.key, Path::new("/etc/pki/libvirt/private/serverkey.pem"));
        assert_eq!(s.cert, Path::new("/etc/pki/libvirt/servercert.pem"));
        std::fs::write(pki.join("servercert.pem"), "").unwrap();
        let s = Settings::from_config(&Config::default(), false, home).unwrap();
        assert_eq!(s.key, pki.join("serverkey.pem"));
        assert_eq!(s.cert, pki.join("servercert.pem"));
        assert_eq!(s.crl, Path::new("/etc/pki/CA/cacrl.pem"));

        let cfg = Config::parse(
            "key_file = \"/k\"\ncert_file = \"/c\"\nca_file = \"/a\"\ncrl_file = \"/r\"\n\
             tls_no_verify_certificate = 1\ntls_allowed_dn_list = [\"CN=a*\", \"CN=b\"]\n",
        )
        .unwrap();
        let s = Settings::from_config(&cfg, true, home).unwrap();
        assert_eq!(
            (s.key, s.cert, s.ca, s.crl),
            ("/k".into(), "/c".into(), "/a".into(), "/r".into())
        );
        assert!(!s.verify);
        assert_eq!(s.allowed_dn.unwrap(), vec!["CN=a*", "CN=b"]);

        let e = Settings::from_config(&Config::parse("auth_tls = \"sasl\"").unwrap(), true, home)
            .unwrap_err();
        assert!(e.contains("auth_tls"), "{e}");
        let e = Settings::from_config(&Config::parse("key_file = \"/k\"").unwrap(), true, home)
            .unwrap_err();
        assert!(e.contains("No CA certificate path"), "{e}");
        let e = Settings::from_config(
            &Config::parse("key_file = \"/k\"\nca_file=\"/a\"").unwrap(),
            true,
            home,
        )
        .unwrap_err();
        assert!(e.contains("No server certificate path"), "{e}");
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings {
            key: dir.path().join("k.pem"),
            cert: dir.path().join("c.pem"),
            ca: dir.path().join("ca.pem"),
            crl: dir.path().join("crl.pem"),
            verify: true,
            allowed_dn: None,
        };
        let e = Context::load(&s).err().unwrap();
        assert!(e.contains("ca.pem") && e.contains("CA certificate"), "{e}");
        std::fs::write(&s.ca, "not pem").unwrap();
        let e = Context::load(&s).err().unwrap();
        assert!(e.contains("holds no PEM certificate"), "{e}");
    }
}
