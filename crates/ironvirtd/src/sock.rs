//! The one interface a connection needs from its socket: readiness and
//! non-blocking reads and writes, shared by UNIX, TCP and TLS streams.

use std::future::Future;
use std::io::{self, IoSlice};

/// A stream the connection loop can serve.
pub trait Sock: Send + Sync + 'static {
    /// Waits until the socket may be readable.
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send + '_;
    /// Waits until the socket may be writable.
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send + '_;
    /// Reads without blocking (`WouldBlock` when nothing is there).
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes without blocking (`WouldBlock` when the socket is full).
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Whether the transport counts as secure for `virConnectIsSecure`.
    fn is_secure(&self) -> bool;
    /// Whether the transport itself holds bytes for the peer (TLS records
    /// the socket did not take yet).
    fn has_pending_output(&self) -> bool {
        false
    }
    /// Writes what the transport itself holds (`WouldBlock` when the
    /// socket is full).
    fn try_flush(&self) -> io::Result<()> {
        Ok(())
    }
}

macro_rules! impl_sock {
    ($t:ty, $secure:expr) => {
        impl Sock for $t {
            fn readable(&self) -> impl Future<Output = io::Result<()>> + Send + '_ {
                <$t>::readable(self)
            }
            fn writable(&self) -> impl Future<Output = io::Result<()>> + Send + '_ {
                <$t>::writable(self)
            }
            fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
                <$t>::try_read(self, buf)
            }
            fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                <$t>::try_write_vectored(self, bufs)
            }
            fn is_secure(&self) -> bool {
                $secure
            }
        }
    };
}

// A UNIX socket is local, hence secure; plain TCP is neither encrypted nor
// authenticated.
impl_sock!(tokio::net::UnixStream, true);
impl_sock!(tokio::net::TcpStream, false);
