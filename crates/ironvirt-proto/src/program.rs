//! Program numbers that share libvirt's sockets, and the keepalive program.

use ironvirt_driver::{Error, ErrorDomain, ErrorNumber};

/// The remote program: every public API (`REMOTE_PROGRAM`).
pub const REMOTE_PROGRAM: u32 = 0x2000_8086;
/// Its version (`REMOTE_PROTOCOL_VERSION`).
pub const REMOTE_VERSION: u32 = 1;
/// The keepalive program (`KEEPALIVE_PROGRAM`, "keep" in ASCII).
pub const KEEPALIVE_PROGRAM: u32 = 0x6b65_6570;
/// Its version.
pub const KEEPALIVE_VERSION: u32 = 1;
/// The QEMU-specific program (`virDomainQemuMonitorCommand`, ...).
pub const QEMU_PROGRAM: u32 = 0x2000_8087;
/// Its version.
pub const QEMU_VERSION: u32 = 1;
/// The LXC-specific program (`virDomainLxcOpenNamespace`).
pub const LXC_PROGRAM: u32 = 0x0006_8000;
/// Its version.
pub const LXC_VERSION: u32 = 1;
/// The administration program (served on the admin socket).
pub const ADMIN_PROGRAM: u32 = 0x0690_0690;
/// Its version.
pub const ADMIN_VERSION: u32 = 1;

/// Keepalive procedures; both travel as type MESSAGE with serial 0, status
/// OK and an empty payload.
pub mod keepalive {
    /// A request for a [`PONG`].
    pub const PING: i32 = 1;
    /// The answer to a [`PING`].
    pub const PONG: i32 = 2;
}

/// Which program a header addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// [`REMOTE_PROGRAM`].
    Remote,
    /// [`KEEPALIVE_PROGRAM`].
    Keepalive,
    /// [`QEMU_PROGRAM`].
    Qemu,
    /// [`LXC_PROGRAM`].
    Lxc,
    /// [`ADMIN_PROGRAM`].
    Admin,
    /// Anything else.
    Unknown(u32),
}

impl Program {
    /// The program for a header's `prog` field.
    pub fn identify(prog: u32) -> Program {
        match prog {
            REMOTE_PROGRAM => Program::Remote,
            KEEPALIVE_PROGRAM => Program::Keepalive,
            QEMU_PROGRAM => Program::Qemu,
            LXC_PROGRAM => Program::Lxc,
            ADMIN_PROGRAM => Program::Admin,
            other => Program::Unknown(other),
        }
    }

    /// The program's number.
    pub fn number(self) -> u32 {
        match self {
            Program::Remote => REMOTE_PROGRAM,
            Program::Keepalive => KEEPALIVE_PROGRAM,
            Program::Qemu => QEMU_PROGRAM,
            Program::Lxc => LXC_PROGRAM,
            Program::Admin => ADMIN_PROGRAM,
            Program::Unknown(n) => n,
        }
    }
}

/// The error libvirt's daemon answers to a call for a program (or program
/// version) it does not serve: `VIR_ERR_RPC` in `VIR_FROM_RPC`, "Cannot
/// find program P version V" with both numbers printed as signed decimals.
/// Only calls get it; other message types for unknown programs are dropped.
pub fn unknown_program(prog: u32, vers: u32) -> Error {
    Error::new(
        ErrorDomain::RPC,
        ErrorNumber::RPC,
        format!(
            "Cannot find program {} version {}",
            prog as i32, vers as i32
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs() {
        assert_eq!(Program::identify(0x2000_8086), Program::Remote);
        assert_eq!(
            Program::identify(u32::from_be_bytes(*b"keep")),
            Program::Keepalive
        );
        assert_eq!(Program::identify(0x2000_8087), Program::Qemu);
        assert_eq!(Program::identify(0x0006_8000), Program::Lxc);
        assert_eq!(Program::identify(0x0690_0690), Program::Admin);
        assert_eq!(Program::identify(5), Program::Unknown(5));
        assert_eq!(Program::Qemu.number(), QEMU_PROGRAM);
        let e = unknown_program(QEMU_PROGRAM, 1);
        assert_eq!(e.message, "Cannot find program 536903815 version 1");
        assert_eq!(e.code, ErrorNumber::RPC);
    }
}
