//! Connection URIs in libvirt's grammar:
//! `driver[+transport]://[user@][host][:port]/path[?param=value&...]`.

use crate::error::{Error, ErrorDomain, ErrorNumber, Result};

/// A parsed connection URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    /// The URI as it was given.
    pub original: String,
    /// `qemu`, `test`, ... (the part of the scheme before `+`).
    pub driver: String,
    /// `unix`, `tcp`, `tls`, `ssh`, `ext`, `libssh2`, `libssh`, when given.
    pub transport: Option<String>,
    /// User name before `@`.
    pub user: Option<String>,
    /// Host name, empty for a local URI.
    pub host: Option<String>,
    /// Port, when given.
    pub port: Option<u16>,
    /// Path, e.g. `/system`, `/default`, `/abs/path/node.xml`.
    pub path: String,
    /// Query parameters, decoded, in order.
    pub params: Vec<(String, String)>,
    /// The fragment after `#`, as written.
    pub fragment: Option<String>,
}

fn bad(uri: &str) -> Error {
    Error::new(
        ErrorDomain::URI,
        ErrorNumber::INTERNAL_ERROR,
        format!("Unable to parse URI {uri}"),
    )
}

fn percent_decode(s: &str, uri: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3).ok_or_else(|| bad(uri))?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad(uri))?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad(uri))?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad(uri))
}

impl Uri {
    /// Parses `s`; a malformed URI gives libvirt's "Unable to parse URI" error.
    pub fn parse(s: &str) -> Result<Uri> {
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(s));
        }
        let (scheme, rest) = s.split_once(':').ok_or_else(|| bad(s))?;
        if scheme.is_empty()
            || !scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(bad(s));
        }
        let (driver, transport) = match scheme.split_once('+') {
            Some((d, t)) if !d.is_empty() && !t.is_empty() && !t.contains('+') => {
                (d.to_string(), Some(t.to_string()))
            }
            Some(_) => return Err(bad(s)),
            None => (scheme.to_string(), None),
        };
        let (rest, fragment) = match rest.split_once('#') {
            Some((r, f)) => (r, Some(f.to_string())),
            None => (rest, None),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = if let Some(after) = rest.strip_prefix("//") {
            match after.find('/') {
                Some(i) => (Some(&after[..i]), &after[i..]),
                None => (Some(after), ""),
            }
        } else {
            (None, rest)
        };
        let mut user = None;
        let mut host = None;
        let mut port = None;
        if let Some(auth) = authority {
            let hostport = match auth.rsplit_once('@') {
                Some((u, h)) => {
                    user = Some(percent_decode(u, s)?);
                    h
                }
                None => auth,
            };
            let (h, p) = if let Some(v6) = hostport.strip_prefix('[') {
                let (h, after) = v6.split_once(']').ok_or_else(|| bad(s))?;
                (h, after.strip_prefix(':'))
            } else {
                match hostport.rsplit_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (hostport, None),
                }
            };
            if let Some(p) = p {
                if !p.is_empty() {
                    port = Some(p.parse::<u16>().map_err(|_| bad(s))?);
                }
            }
            if !h.is_empty() {
                if h.chars().any(|c| "/?#@[]".contains(c)) {
                    return Err(bad(s));
                }
                host = Some(percent_decode(h, s)?);
            }
        }
        let mut params = Vec::new();
        if let Some(q) = query {
            for pair in q.split(['&', ';']).filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                params.push((percent_decode(k, s)?, percent_decode(v, s)?));
            }
        }
        Ok(Uri {
            original: s.to_string(),
            driver,
            transport,
            user,
            host,
            port,
            path: percent_decode(path, s)?,
            params,
            fragment,
        })
    }

    /// The value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the URI names a local, in-process or local-daemon connection
    /// (no host and no transport).
    pub fn is_local(&self) -> bool {
        self.host.is_none() && self.transport.is_none()
    }

    /// The URI without the transport, host and parameters that only the
    /// client side uses: what the daemon is asked to open (e.g.
    /// `qemu+ssh://h/system?keyfile=k` → `qemu:///system`). The remaining
    /// parameters are percent-encoded again and a fragment is kept, as
    /// libvirt's remote driver sends them.
    pub fn for_daemon(&self) -> String {
        const CLIENT_ONLY: &[&str] = &[
            "name",
            "command",
            "socket",
            "auth",
            "authfile",
            "netcat",
            "keyfile",
            "no_sanity",
            "no_verify",
            "no_tty",
            "pkipath",
            "known_hosts",
            "known_hosts_verify",
            "sshauth",
            "mode",
            "proxy",
            "tls_priority",
        ];
        if let Some(name) = self.param("name") {
            return name.to_string();
        }
        let mut out = format!("{}://{}", self.driver, self.path);
        let kept: Vec<String> = self
            .params
            .iter()
            .filter(|(k, _)| !CLIENT_ONLY.contains(&k.as_str()))
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
        if let Some(f) = &self.fragment {
            out.push('#');
            out.push_str(f);
        }
        out
    }
}

/// Escapes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let u = Uri::parse("test:///default").unwrap();
        assert_eq!(
            (u.driver.as_str(), u.transport, u.host, u.path.as_str()),
            ("test", None, None, "/default")
        );
        let u =
            Uri::parse("qemu+ssh://root@example.com:2222/system?keyfile=/k%20y&no_tty=1").unwrap();
        assert_eq!(u.driver, "qemu");
        assert_eq!(u.transport.as_deref(), Some("ssh"));
        assert_eq!(u.user.as_deref(), Some("root"));
        assert_eq!(u.host.as_deref(), Some("example.com"));
        assert_eq!(u.port, Some(2222));
        assert_eq!(u.path, "/system");
        assert_eq!(u.param("keyfile"), Some("/k y"));
        assert_eq!(u.param("no_tty"), Some("1"));
        assert_eq!(u.for_daemon(), "qemu:///system");
        let u = Uri::parse("qemu+tcp://h/system?x=%2F%3F%26%3D%3A&no_sanity=1&authfile=/a#frag")
            .unwrap();
        assert_eq!(u.param("x"), Some("/?&=:"));
        assert_eq!(u.fragment.as_deref(), Some("frag"));
        assert_eq!(u.for_daemon(), "qemu:///system?x=%2F%3F%26%3D%3A#frag");
        let u = Uri::parse("qemu+unix:///system?socket=/run/x/libvirt-sock").unwrap();
        assert_eq!(u.param("socket"), Some("/run/x/libvirt-sock"));
        assert!(
            Uri::parse("qemu+tcp://[::1]:16509/system")
                .unwrap()
                .host
                .as_deref()
                == Some("::1")
        );
        assert_eq!(
            Uri::parse("test:///abs/node.xml").unwrap().path,
            "/abs/node.xml"
        );
    }

    #[test]
    fn malformed_uris_are_refused() {
        for bad in [
            "",
            "foo bar",
            "nocolon",
            "://x",
            "1abc:///x",
            "qemu+:///system",
            "qemu://h:99999/system",
            "qemu://h:x/system",
            "a%zz:///",
        ] {
            let e = Uri::parse(bad).unwrap_err();
            assert!(
                e.message.starts_with("internal error: Unable to parse URI"),
                "{bad}: {e}"
            );
        }
    }
}
