//! The remote driver: libvirt's RPC protocol, client side.
//!
//! [`open`] connects to a libvirt daemon — libvirtd, virtqemud, ironvirtd —
//! the way libvirt's own client does and returns a [`Driver`] whose every
//! method is a call to that daemon:
//!
//! | URI | transport |
//! |---|---|
//! | `qemu:///system`, `test+unix:///default` | the local daemon's UNIX socket (`/var/run/libvirt/libvirt-sock`, `-ro` read-only, `$XDG_RUNTIME_DIR/libvirt/libvirt-sock` for an unprivileged `/session`) |
//! | `qemu+unix:///system?socket=PATH` | that socket |
//! | `qemu+tcp://host[:16509]/system` | plain TCP |
//! | `qemu+tls://host[:16514]/system` (also `qemu://host/system`) | TLS with libvirt's PKI files (`pkipath=`, `no_verify=1`, `no_sanity=1`) |
//! | `qemu+ssh://user@host[:port]/system` | the `ssh` program running `virt-ssh-helper` or `nc` remotely (`keyfile=`, `no_tty=1`, `no_verify=1`, `command=`, `socket=`, `netcat=`, `proxy=`) |
//! | `qemu+ext:///system?command=CMD` | CMD's standard input and output |
//!
//! The handshake is libvirt's: AUTH_LIST (no authentication and polkit are
//! handled; SASL is refused clearly), the keepalive feature probe,
//! CONNECT_OPEN with the URI stripped of what only the client uses, then
//! the event- and close-callback feature probes.
//!
//! [`RemoteDriver`] adds what the trait does not carry: close notification
//! ([`RemoteDriver::on_close`]), keepalive and call-timeout settings, and
//! raw calls of any procedure.
//!
//! ```no_run
//! use ironvirt_driver::{Driver, Uri};
//! let uri = Uri::parse("test+unix:///default?socket=/run/libvirt-ref/libvirt-sock")?;
//! let conn = ironvirt_remote::open(&uri, false)?;
//! let dom = conn.domain_lookup_by_name("test")?;
//! println!("{:?}", conn.domain_get_info(&dom)?);
//! # Ok::<(), ironvirt_driver::Error>(())
//! ```

mod client;
mod driver;
pub mod tls;
pub mod transport;

use ironvirt_driver::{Driver, Result, Uri};
use std::sync::Arc;

pub use client::{CloseCallback, CloseReason};
pub use driver::{AuthPolkitRet, ConnectOptions, RemoteDriver};
pub use transport::{Mode, Proxy, Target, Transport};

/// Opens a connection to the daemon the URI names, with keepalive on
/// (5 seconds, 6 PINGs, as virsh) and no call timeout.
pub fn open(uri: &Uri, read_only: bool) -> Result<Arc<dyn Driver>> {
    Ok(Arc::new(connect(uri, read_only)?))
}

/// [`open`], returning the concrete driver (for [`RemoteDriver::on_close`]
/// and the other connection-level settings).
pub fn connect(uri: &Uri, read_only: bool) -> Result<RemoteDriver> {
    RemoteDriver::connect(
        uri,
        &ConnectOptions {
            read_only,
            ..ConnectOptions::default()
        },
    )
}
