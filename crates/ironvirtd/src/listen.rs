//! The daemon's listening sockets: `libvirt-sock` (read-write) and
//! `libvirt-sock-ro` (read-only) in the socket directory, optionally TCP.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// File name of the read-write socket.
pub const RW_SOCK: &str = "libvirt-sock";
/// File name of the read-only socket.
pub const RO_SOCK: &str = "libvirt-sock-ro";

/// libvirt's default socket directory for this user.
pub fn default_socket_dir() -> PathBuf {
    if is_root() {
        PathBuf::from("/run/libvirt")
    } else if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        PathBuf::from(x).join("libvirt")
    } else {
        home().join(".cache/libvirt")
    }
}

/// The default root of the daemon's files.
pub fn default_state_dir() -> PathBuf {
    if is_root() {
        PathBuf::from("/var/lib/ironvirt")
    } else {
        home().join(".local/share/ironvirt")
    }
}

/// The user's home directory.
pub fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

/// Whether the daemon runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Binds a UNIX socket at `path` with mode `perms`. A socket file that a live
/// process answers on is left alone and reported; a stale one is replaced.
pub fn bind_unix(path: &Path, perms: u32) -> Result<UnixListener, String> {
    if path.exists() {
        match UnixStream::connect(path) {
            Ok(_) => {
                return Err(format!(
                    "socket '{}' is in use by another running daemon; stop it or choose another --socket-dir",
                    path.display()
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused || e.kind() == io::ErrorKind::NotFound => {
                tracing::info!(path = %path.display(), "removing stale socket");
                std::fs::remove_file(path).map_err(|e| format!("cannot remove stale socket '{}': {e}", path.display()))?;
            }
            Err(e) => return Err(format!("cannot check socket '{}': {e}", path.display())),
        }
    }
    let l = UnixListener::bind(path)
        .map_err(|e| format!("cannot bind socket '{}': {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(perms))
        .map_err(|e| format!("cannot set permissions of '{}': {e}", path.display()))?;
    l.set_nonblocking(true)
        .map_err(|e| format!("cannot make '{}' non-blocking: {e}", path.display()))?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_socket_replaced_live_socket_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(RW_SOCK);
        {
            let _l = bind_unix(&p, 0o700).unwrap();
            let err = bind_unix(&p, 0o700).unwrap_err();
            assert!(err.contains("in use"), "{err}");
        }
        // the listener is gone, the file stays: stale
        assert!(p.exists());
        let _l = bind_unix(&p, 0o700).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
