//! The TLS transport: libvirt's PKI file locations, a rustls client
//! configuration, the handshake and libvirt's one-byte confirmation, and a
//! reader/writer pair that lets one thread read while others write.

use crate::transport::{home_dir, rpc_system};
use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The CA certificate of a root client (and of every client without its own).
pub const SYSTEM_CACERT: &str = "/etc/pki/CA/cacert.pem";
/// The CA's revocation list.
pub const SYSTEM_CACRL: &str = "/etc/pki/CA/cacrl.pem";
/// A root client's certificate.
pub const SYSTEM_CLIENTCERT: &str = "/etc/pki/libvirt/clientcert.pem";
/// A root client's private key.
pub const SYSTEM_CLIENTKEY: &str = "/etc/pki/libvirt/private/clientkey.pem";

/// The files a TLS client uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiFiles {
    /// CA certificate(s) the server's certificate must chain to.
    pub cacert: PathBuf,
    /// Revocation list, used when it exists.
    pub cacrl: PathBuf,
    /// Client certificate, used when it exists.
    pub cert: PathBuf,
    /// Client private key.
    pub key: PathBuf,
}

impl PkiFiles {
    /// libvirt's choice of files: everything under `pkipath` when given;
    /// else, for an unprivileged user, what exists of `~/.pki/libvirt/`
    /// (the certificate and key only as a pair); the system paths for the rest.
    pub fn locate(pkipath: Option<&str>, try_user: bool) -> PkiFiles {
        if let Some(p) = pkipath {
            let p = Path::new(p);
            return PkiFiles {
                cacert: p.join("cacert.pem"),
                cacrl: p.join("cacrl.pem"),
                cert: p.join("clientcert.pem"),
                key: p.join("clientkey.pem"),
            };
        }
        let mut f = PkiFiles {
            cacert: SYSTEM_CACERT.into(),
            cacrl: SYSTEM_CACRL.into(),
            cert: SYSTEM_CLIENTCERT.into(),
            key: SYSTEM_CLIENTKEY.into(),
        };
        if try_user {
            let dir = home_dir().join(".pki").join("libvirt");
            if dir.join("cacert.pem").exists() {
                f.cacert = dir.join("cacert.pem");
            }
            if dir.join("cacrl.pem").exists() {
                f.cacrl = dir.join("cacrl.pem");
            }
            if dir.join("clientcert.pem").exists() && dir.join("clientkey.pem").exists() {
                f.cert = dir.join("clientcert.pem");
                f.key = dir.join("clientkey.pem");
            }
        }
        f
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn sys_err(msg: String) -> Error {
    Error::new(ErrorDomain::RPC, ErrorNumber::SYSTEM_ERROR, msg)
}

/// Builds the client configuration from libvirt's PKI files. `sanity`
/// checks that the files parse before connecting (libvirt's `no_sanity=1`
/// turns it off); `verify` checks the server's certificate chain and name
/// (`no_verify=1` turns it off).
pub fn client_config(
    pkipath: Option<&str>,
    try_user: bool,
    sanity: bool,
    verify: bool,
) -> Result<Arc<ClientConfig>> {
    let files = PkiFiles::locate(pkipath, try_user);
    config_from_files(&files, sanity, verify)
}

/// [`client_config`] for explicit files.
pub fn config_from_files(
    files: &PkiFiles,
    sanity: bool,
    verify: bool,
) -> Result<Arc<ClientConfig>> {
    let provider = provider();
    let have_cert = files.cert.exists();
    let client_chain = if have_cert {
        let chain: std::result::Result<Vec<CertificateDer<'static>>, _> =
            CertificateDer::pem_file_iter(&files.cert).and_then(|it| it.collect());
        match chain {
            Ok(c) if !c.is_empty() => Some(c),
            _ if sanity || files.key.exists() => {
                return Err(sys_err(format!(
                    "Unable to import client certificate {}",
                    files.cert.display()
                )))
            }
            _ => None,
        }
    } else {
        None
    };
    let ca_bytes = std::fs::read(&files.cacert).map_err(|e| {
        rpc_system(
            format!("Cannot read CA certificate '{}'", files.cacert.display()),
            &e,
        )
    })?;
    let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&ca_bytes)
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            sys_err(format!(
                "Unable to import CA certificate list {}",
                files.cacert.display()
            ))
        })?;
    if cas.is_empty() {
        return Err(sys_err(format!(
            "Unable to import CA certificate list {}",
            files.cacert.display()
        )));
    }
    let mut roots = RootCertStore::empty();
    for c in cas {
        roots.add(c).map_err(|e| {
            sys_err(format!(
                "Unable to set x509 CA certificate: {}: {e}",
                files.cacert.display()
            ))
        })?;
    }
    let crls: Vec<CertificateRevocationListDer<'static>> = if files.cacrl.exists() {
        CertificateRevocationListDer::pem_file_iter(&files.cacrl)
            .and_then(|it| it.collect())
            .map_err(|_| {
                sys_err(format!(
                    "Unable to import CA revocation list {}",
                    files.cacrl.display()
                ))
            })?
    } else {
        Vec::new()
    };
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(ErrorDomain::RPC, format!("TLS setup failed: {e}")))?;
    let builder = if verify {
        let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .with_crls(crls)
            .build()
            .map_err(|e| {
                sys_err(format!(
                    "Unable to set x509 CA certificate: {}: {e}",
                    files.cacert.display()
                ))
            })?;
        builder.with_webpki_verifier(v)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    };
    let config = match client_chain {
        Some(chain) if files.key.exists() => {
            let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|_| {
                sys_err(format!(
                    "Unable to import private key {}",
                    files.key.display()
                ))
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                sys_err(format!(
                    "Unable to load x509 key/certificate {}/{}: {e}",
                    files.cert.display(),
                    files.key.display()
                ))
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// `no_verify=1`: any server certificate is accepted, but the handshake's
/// signatures are still checked.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn handshake_error(e: &std::io::Error) -> Error {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(c)) => {
            sys_err(format!("Unable to verify TLS peer: {c:?}"))
        }
        Some(r) => sys_err(format!("TLS handshake failed {r}")),
        None => rpc_system("TLS handshake failed", e),
    }
}

/// Runs the handshake over `sock`, then waits for the byte libvirt's
/// daemon sends once it has accepted the client's certificate (`\1`).
pub(crate) fn handshake(
    config: Arc<ClientConfig>,
    host: &str,
    mut sock: TcpStream,
) -> Result<(TlsReader, TlsWriter)> {
    let name = ServerName::try_from(host.to_string()).map_err(|_| {
        Error::invalid_arg(
            ErrorDomain::RPC,
            format!("invalid TLS server name '{host}'"),
        )
    })?;
    let mut conn = ClientConnection::new(config, name)
        .map_err(|e| Error::internal(ErrorDomain::RPC, format!("TLS setup failed: {e}")))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .map_err(|e| handshake_error(&e))?;
    }
    let mut byte = [0u8; 1];
    let confirmed = {
        let mut s = rustls::Stream::new(&mut conn, &mut sock);
        matches!(s.read(&mut byte), Ok(1))
    };
    if !confirmed || byte[0] != 1 {
        return Err(Error::new(
            ErrorDomain::RPC,
            ErrorNumber::RPC,
            "server verification (of our certificate or IP address) failed",
        ));
    }
    let wsock = sock
        .try_clone()
        .map_err(|e| rpc_system("Unable to duplicate socket", &e))?;
    let shared = Arc::new(TlsShared {
        conn: Mutex::new(conn),
        sock_w: Mutex::new(wsock),
    });
    Ok((
        TlsReader {
            shared: Arc::clone(&shared),
            sock,
            raw: vec![0; 65536],
            start: 0,
            end: 0,
        },
        TlsWriter { shared },
    ))
}

struct TlsShared {
    conn: Mutex<ClientConnection>,
    /// Serialises writes of encrypted records to the socket. Taken while
    /// `conn` is still held, so records reach the wire in the order they
    /// were sealed, then `conn` is let go so the reader is never stuck
    /// behind a slow write.
    sock_w: Mutex<TcpStream>,
}

fn poisoned() -> std::io::Error {
    std::io::Error::other("TLS state lock poisoned")
}

impl TlsShared {
    fn conn(&self) -> std::io::Result<MutexGuard<'_, ClientConnection>> {
        self.conn.lock().map_err(|_| poisoned())
    }

    /// Sends whatever records `conn` has ready, releasing `conn` first.
    fn flush(&self, mut conn: MutexGuard<'_, ClientConnection>) -> std::io::Result<()> {
        if !conn.wants_write() {
            return Ok(());
        }
        let mut out = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut out)?;
        }
        let mut sock = self.sock_w.lock().map_err(|_| poisoned())?;
        drop(conn);
        sock.write_all(&out)
    }
}

/// The reading half of a TLS stream.
pub(crate) struct TlsReader {
    shared: Arc<TlsShared>,
    sock: TcpStream,
    raw: Vec<u8>,
    start: usize,
    end: usize,
}

impl Read for TlsReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut eof = false;
        loop {
            {
                let mut conn = self.shared.conn()?;
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if eof {
                    return Ok(0);
                }
                if self.start < self.end {
                    let mut s = &self.raw[self.start..self.end];
                    let n = conn.read_tls(&mut s)?;
                    self.start += n;
                    conn.process_new_packets().map_err(std::io::Error::other)?;
                    self.shared.flush(conn)?;
                    continue;
                }
            }
            let n = self.sock.read(&mut self.raw)?;
            self.start = 0;
            self.end = n;
            if n == 0 {
                let mut conn = self.shared.conn()?;
                let _ = conn.read_tls(&mut &b""[..]);
                conn.process_new_packets().map_err(std::io::Error::other)?;
                eof = true;
            }
        }
    }
}

impl crate::transport::RxHalf for TlsReader {
    fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.sock.as_raw_fd()
    }

    fn has_buffered(&mut self) -> bool {
        if self.start < self.end {
            return true;
        }
        match self.shared.conn() {
            // Nothing new to process: this only reports what is held.
            Ok(mut conn) => conn.process_new_packets().map_or(true, |s| {
                s.plaintext_bytes_to_read() > 0 || s.peer_has_closed()
            }),
            Err(_) => true,
        }
    }
}

/// The writing half of a TLS stream.
pub(crate) struct TlsWriter {
    shared: Arc<TlsShared>,
}

impl Write for TlsWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut conn = self.shared.conn()?;
        let n = conn.writer().write(buf)?;
        self.shared.flush(conn)?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let conn = self.shared.conn()?;
        self.shared.flush(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_locations() {
        let f = PkiFiles::locate(None, false);
        assert_eq!(f.cacert, PathBuf::from("/etc/pki/CA/cacert.pem"));
        assert_eq!(f.cert, PathBuf::from("/etc/pki/libvirt/clientcert.pem"));
        assert_eq!(
            f.key,
            PathBuf::from("/etc/pki/libvirt/private/clientkey.pem")
        );
        let f = PkiFiles::locate(Some("/p"), true);
        assert_eq!(f.cacert, PathBuf::from("/p/cacert.pem"));
        assert_eq!(f.cert, PathBuf::from("/p/clientcert.pem"));
        assert_eq!(f.key, PathBuf::from("/p/clientkey.pem"));
    }

    #[test]
    fn missing_ca_is_reported_like_libvirt() {
        let e = client_config(Some("/nonexistent-pki"), false, true, true).expect_err("no CA");
        assert_eq!(
            (e.code, e.domain),
            (ErrorNumber::SYSTEM_ERROR, ErrorDomain::RPC)
        );
        assert_eq!(
            e.message,
            "Cannot read CA certificate '/nonexistent-pki/cacert.pem': No such file or directory"
        );
    }
}
