//! Choosing and opening the hypervisor driver a `CONNECT_OPEN` asks for.
//!
//! * `test:///default` and `test:///abs/path.xml`: a new [`TestDriver`]
//!   connection each time (the default state is shared by every open one).
//! * `qemu:///system` and `qemu:///session`: the daemon's one
//!   [`QemuDriver`], created on the first such open (never at start-up:
//!   loading its definitions must not slow the daemon down).
//! * an empty name: the first driver that accepts it, as libvirtd probes;
//!   only the QEMU driver accepts an empty name.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ironvirt_driver::{Driver, Error, ErrorDomain, ErrorNumber, Uri};
use ironvirt_qemu::{QemuConfig, QemuDriver};
use ironvirt_test::TestDriver;

/// Which driver a connection uses; decides which calls may block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The in-memory test driver: every call is quick.
    Test,
    /// The QEMU driver: probes, disk writes and processes may take long.
    Qemu,
}

/// An open hypervisor connection.
#[derive(Clone)]
pub struct Opened {
    /// The driver.
    pub drv: Arc<dyn Driver>,
    /// Which one it is.
    pub kind: Kind,
    /// Whether the daemon shares this driver between connections (then
    /// closing one connection must not close the driver).
    pub shared: bool,
}

/// What a URI resolves to before anything is opened.
#[derive(Debug)]
pub enum Target {
    /// A test driver URI.
    Test(Uri),
    /// The QEMU driver.
    Qemu,
}

/// The daemon's drivers.
pub struct Drivers {
    state_dir: PathBuf,
    privileged: bool,
    qemu: Mutex<Option<Arc<QemuDriver>>>,
}

fn no_connect(name: &str) -> Error {
    Error::new(ErrorDomain::NONE, ErrorNumber::NO_CONNECT, name)
}

impl Drivers {
    /// Drivers whose files live under `state_dir`; `privileged` selects
    /// `qemu:///system` (root) or `qemu:///session`.
    pub fn new(state_dir: PathBuf, privileged: bool) -> Drivers {
        Drivers {
            state_dir,
            privileged,
            qemu: Mutex::new(None),
        }
    }

    /// Resolves the name a client sent in `CONNECT_OPEN` (quick, no I/O).
    pub fn resolve(&self, name: Option<&str>) -> Result<Target, Error> {
        let name = match name {
            // libvirtd answers an absent name this way (measured on 9.0).
            None => {
                return Err(Error::new(
                    ErrorDomain::RPC,
                    ErrorNumber::INTERNAL_ERROR,
                    "connection not open",
                ))
            }
            Some(n) => n,
        };
        if name.is_empty() {
            return Ok(Target::Qemu);
        }
        if !name.contains(':') {
            return Err(no_connect(&format!(
                "URI '{name}' does not include a driver name"
            )));
        }
        let uri = Uri::parse(name)?;
        // The daemon does not forward to other hosts or transports.
        if uri.transport.is_some() || uri.host.as_deref().is_some_and(|h| !h.is_empty()) {
            return Err(no_connect(name));
        }
        match uri.driver.as_str() {
            "test" => Ok(Target::Test(uri)),
            "qemu" => {
                let (mine, other) = if self.privileged {
                    ("/system", "/session")
                } else {
                    ("/session", "/system")
                };
                // A privileged QEMU driver serves qemu:///session too (measured).
                if uri.path == mine || (self.privileged && uri.path == other) {
                    Ok(Target::Qemu)
                } else {
                    Err(Error::new(
                        ErrorDomain::NONE,
                        ErrorNumber::INTERNAL_ERROR,
                        format!("unexpected qemu URI path '{}', try qemu://{mine}", uri.path),
                    ))
                }
            }
            _ => Err(no_connect(name)),
        }
    }

    /// Whether opening `target` may block (the QEMU driver's first open
    /// loads every definition from disk).
    pub fn open_may_block(&self, target: &Target) -> bool {
        matches!(target, Target::Qemu) && lock(&self.qemu).is_none()
    }

    /// Opens `target`.
    pub fn open(&self, target: Target) -> Result<Opened, Error> {
        match target {
            Target::Test(uri) => Ok(Opened {
                drv: Arc::new(TestDriver::open_uri(&uri)?),
                kind: Kind::Test,
                shared: false,
            }),
            Target::Qemu => Ok(Opened {
                drv: self.qemu_driver()?,
                kind: Kind::Qemu,
                shared: true,
            }),
        }
    }

    fn qemu_config(&self) -> QemuConfig {
        let mut cfg = QemuConfig::new(self.state_dir.clone(), self.privileged);
        // Every file the daemon writes lives under its state dir.
        cfg.nvram_dir = Some(self.state_dir.join("qemu").join("nvram"));
        cfg
    }

    /// The QEMU driver, created on first use.
    fn qemu_driver(&self) -> Result<Arc<QemuDriver>, Error> {
        let mut slot = lock(&self.qemu);
        if let Some(d) = &*slot {
            return Ok(d.clone());
        }
        let d = QemuDriver::new(self.qemu_config())?;
        tracing::info!(state_dir = %self.state_dir.display(), "QEMU driver loaded");
        *slot = Some(d.clone());
        Ok(d)
    }

    /// At daemon start: when guests were left running (status files) or
    /// domains are marked autostart, the QEMU driver is created now, so
    /// that it reconnects to its guests and starts the autostart ones
    /// before clients come, as libvirtd does. Otherwise it waits for the
    /// first `qemu://` client, so that start-up stays quick.
    pub fn start_early(&self) {
        let cfg = self.qemu_config();
        if !QemuDriver::has_status_files(&cfg) && !QemuDriver::has_autostart(&cfg) {
            return;
        }
        match self.qemu_driver() {
            Ok(d) => {
                for (name, e) in d.autostart_domains() {
                    tracing::error!(domain = %name, "cannot autostart: {e}");
                }
            }
            Err(e) => tracing::error!("cannot load the QEMU driver: {e}"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_libvirtd() {
        let d = Drivers::new(PathBuf::from("/nonexistent"), true);
        assert!(matches!(
            d.resolve(Some("test:///default")),
            Ok(Target::Test(_))
        ));
        assert!(matches!(
            d.resolve(Some("qemu:///system")),
            Ok(Target::Qemu)
        ));
        assert!(matches!(
            d.resolve(Some("qemu:///session")),
            Ok(Target::Qemu)
        ));
        assert!(matches!(d.resolve(Some("")), Ok(Target::Qemu)));
        let e = d.resolve(Some("foo:///x")).unwrap_err();
        assert_eq!(e.message, "no connection driver available for foo:///x");
        assert_eq!(
            (e.code, e.domain),
            (ErrorNumber::NO_CONNECT, ErrorDomain::NONE)
        );
        let e = d.resolve(Some("bogus")).unwrap_err();
        assert_eq!(
            e.message,
            "no connection driver available for URI 'bogus' does not include a driver name"
        );
        let e = d.resolve(Some("qemu:///foo")).unwrap_err();
        assert_eq!(
            e.message,
            "internal error: unexpected qemu URI path '/foo', try qemu:///system"
        );
        let e = d.resolve(Some("test+unix:///default")).unwrap_err();
        assert_eq!(e.code, ErrorNumber::NO_CONNECT);
        let e = d.resolve(None).unwrap_err();
        assert_eq!(e.message, "internal error: connection not open");
        let u = Drivers::new(PathBuf::from("/nonexistent"), false);
        assert!(u.resolve(Some("qemu:///system")).is_err());
    }
}
