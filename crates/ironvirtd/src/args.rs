//! Command-line options of ironvirtd.

use std::path::PathBuf;

/// How the daemon was asked to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Directory holding `libvirt-sock` and `libvirt-sock-ro`.
    pub socket_dir: Option<PathBuf>,
    /// Root of every file the daemon writes.
    pub state_dir: Option<PathBuf>,
    /// Configuration file (`key = value` lines, libvirtd.conf style).
    pub config: Option<PathBuf>,
    /// Optional plain TCP listener address.
    pub listen_tcp: Option<String>,
    /// Optional TLS listener address.
    pub listen_tls: Option<String>,
    /// Log each call.
    pub verbose: bool,
}

pub const USAGE: &str = "\
Usage: ironvirtd [OPTIONS]

Serves libvirt's RPC protocol on a read-write and a read-only UNIX socket.

Options:
  --socket-dir DIR     directory for libvirt-sock and libvirt-sock-ro
                       (default: /run/libvirt as root, $XDG_RUNTIME_DIR/libvirt otherwise)
  --state-dir DIR      root of every file the daemon writes
                       (default: /var/lib/ironvirt as root, ~/.local/share/ironvirt otherwise)
  --config FILE        configuration file
  --listen-tcp ADDR    also listen on plain TCP at ADDR (host:port); off by default
  --listen-tls ADDR    also listen on TLS at ADDR (host:port, or host alone for
                       libvirt's port 16514); credentials from the config file's
                       key_file, cert_file, ca_file, crl_file, or libvirtd's
                       defaults (/etc/pki/... as root, ~/.pki/libvirt/ otherwise)
  -v, --verbose        log every call
  -h, --help           show this help
  -V, --version        show the version
";

/// What the command line asks for.
pub enum Parsed {
    Run(Options),
    Help,
    Version,
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut o = Options::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .ok_or_else(|| format!("option '{name}' needs a value")),
            }
        };
        match flag.as_str() {
            "--socket-dir" => o.socket_dir = Some(value("--socket-dir")?.into()),
            "--state-dir" => o.state_dir = Some(value("--state-dir")?.into()),
            "--config" | "-f" => o.config = Some(value("--config")?.into()),
            "--listen-tcp" => o.listen_tcp = Some(value("--listen-tcp")?),
            "--listen-tls" => o.listen_tls = Some(value("--listen-tls")?),
            "--verbose" | "-v" => o.verbose = true,
            "--help" | "-h" => return Ok(Parsed::Help),
            "--version" | "-V" => return Ok(Parsed::Version),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(Parsed::Run(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: &[&str]) -> Result<Options, String> {
        match parse(v.iter().map(|s| s.to_string()))? {
            Parsed::Run(o) => Ok(o),
            _ => Err("not run".into()),
        }
    }

    #[test]
    fn flags() {
        let o = run(&[
            "--socket-dir",
            "/s",
            "--state-dir=/t",
            "-v",
            "--listen-tcp",
            "127.0.0.1:16509",
            "--listen-tls=[::1]:16514",
        ])
        .unwrap();
        assert_eq!(o.socket_dir.unwrap(), PathBuf::from("/s"));
        assert_eq!(o.state_dir.unwrap(), PathBuf::from("/t"));
        assert!(o.verbose);
        assert_eq!(o.listen_tcp.as_deref(), Some("127.0.0.1:16509"));
        assert_eq!(o.listen_tls.as_deref(), Some("[::1]:16514"));
        assert!(run(&["--socket-dir"])
            .unwrap_err()
            .contains("needs a value"));
        assert!(run(&["--bogus"]).unwrap_err().contains("unknown option"));
    }
}
