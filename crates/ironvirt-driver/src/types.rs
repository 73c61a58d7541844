//! Plain values that cross the driver seam.

use std::fmt;

/// A domain's UUID (16 raw bytes, as on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// Parses libvirt's accepted forms: 32 hex digits, with or without dashes
    /// (libvirt skips dashes and blanks anywhere between the digits).
    pub fn parse(s: &str) -> Option<Uuid> {
        let s = s.trim();
        let mut out = [0u8; 16];
        let mut n = 0usize;
        let mut hi: Option<u8> = None;
        for c in s.chars() {
            if c == '-' || c == ' ' {
                continue;
            }
            let v = c.to_digit(16)? as u8;
            match hi.take() {
                None => hi = Some(v),
                Some(h) => {
                    if n >= 16 {
                        return None;
                    }
                    out[n] = h << 4 | v;
                    n += 1;
                }
            }
        }
        (n == 16 && hi.is_none()).then_some(Uuid(out))
    }

    /// A random (version 4) UUID.
    pub fn random() -> Uuid {
        let mut b = [0u8; 16];
        fill_random(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Uuid(b)
    }
}

/// Fills `buf` from the kernel's random source, falling back to a hash of
/// the time and process when that is unavailable.
pub fn fill_random(buf: &mut [u8]) {
    use std::io::Read;
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(buf).is_ok() {
            return;
        }
    }
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    for chunk in buf.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
        )
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

/// What identifies a domain across the seam: libvirt's `remote_nonnull_domain`.
/// `id` is -1 for an inactive domain.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DomainRef {
    /// Name.
    pub name: String,
    /// UUID.
    pub uuid: Uuid,
    /// Id while running, -1 otherwise.
    pub id: i32,
}

/// `virNodeInfo`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct NodeInfo {
    /// CPU model (at most 31 characters on the wire).
    pub model: String,
    /// Memory size in KiB.
    pub memory: u64,
    /// Number of active CPUs.
    pub cpus: u32,
    /// Expected CPU frequency in MHz.
    pub mhz: u32,
    /// NUMA cells.
    pub nodes: u32,
    /// Sockets per NUMA cell.
    pub sockets: u32,
    /// Cores per socket.
    pub cores: u32,
    /// Threads per core.
    pub threads: u32,
}

/// `virDomainInfo`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct DomainInfo {
    /// A [`DomainState`] value.
    pub state: u8,
    /// Maximum memory in KiB.
    pub max_mem: u64,
    /// Current memory in KiB.
    pub memory: u64,
    /// Number of virtual CPUs.
    pub nr_virt_cpu: u16,
    /// CPU time used, in nanoseconds.
    pub cpu_time: u64,
}

/// `virDomainState`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(i32)]
#[allow(missing_docs)]
pub enum DomainState {
    NoState = 0,
    Running = 1,
    Blocked = 2,
    Paused = 3,
    Shutdown = 4,
    Shutoff = 5,
    Crashed = 6,
    PmSuspended = 7,
}

impl DomainState {
    /// The state for a wire value.
    pub fn from_i32(v: i32) -> Option<Self> {
        use DomainState::*;
        Some(match v {
            0 => NoState,
            1 => Running,
            2 => Blocked,
            3 => Paused,
            4 => Shutdown,
            5 => Shutoff,
            6 => Crashed,
            7 => PmSuspended,
            _ => return None,
        })
    }
}

/// Reasons, per state, as libvirt numbers them.
#[allow(missing_docs)]
pub mod reason {
    pub mod running {
        pub const UNKNOWN: i32 = 0;
        pub const BOOTED: i32 = 1;
        pub const MIGRATED: i32 = 2;
        pub const RESTORED: i32 = 3;
        pub const FROM_SNAPSHOT: i32 = 4;
        pub const UNPAUSED: i32 = 5;
        pub const MIGRATION_CANCELED: i32 = 6;
        pub const SAVE_CANCELED: i32 = 7;
        pub const WAKEUP: i32 = 8;
        pub const CRASHED: i32 = 9;
        pub const POSTCOPY: i32 = 10;
    }
    pub mod paused {
        pub const UNKNOWN: i32 = 0;
        pub const USER: i32 = 1;
        pub const MIGRATION: i32 = 2;
        pub const SAVE: i32 = 3;
        pub const DUMP: i32 = 4;
        pub const IOERROR: i32 = 5;
        pub const WATCHDOG: i32 = 6;
        pub const FROM_SNAPSHOT: i32 = 7;
        pub const SHUTTING_DOWN: i32 = 8;
        pub const SNAPSHOT: i32 = 9;
        pub const CRASHED: i32 = 10;
        pub const STARTING_UP: i32 = 11;
    }
    pub mod shutdown {
        pub const UNKNOWN: i32 = 0;
        pub const USER: i32 = 1;
    }
    pub mod shutoff {
        pub const UNKNOWN: i32 = 0;
        pub const SHUTDOWN: i32 = 1;
        pub const DESTROYED: i32 = 2;
        pub const CRASHED: i32 = 3;
        pub const MIGRATED: i32 = 4;
        pub const SAVED: i32 = 5;
        pub const FAILED: i32 = 6;
        pub const FROM_SNAPSHOT: i32 = 7;
        pub const DAEMON: i32 = 8;
    }
}

/// Flags of `virConnectListAllDomains`.
#[allow(missing_docs)]
pub mod list_flags {
    pub const ACTIVE: u32 = 1 << 0;
    pub const INACTIVE: u32 = 1 << 1;
    pub const PERSISTENT: u32 = 1 << 2;
    pub const TRANSIENT: u32 = 1 << 3;
    pub const RUNNING: u32 = 1 << 4;
    pub const PAUSED: u32 = 1 << 5;
    pub const SHUTOFF: u32 = 1 << 6;
    pub const OTHER: u32 = 1 << 7;
    pub const MANAGEDSAVE: u32 = 1 << 8;
    pub const NO_MANAGEDSAVE: u32 = 1 << 9;
    pub const AUTOSTART: u32 = 1 << 10;
    pub const NO_AUTOSTART: u32 = 1 << 11;
    pub const HAS_SNAPSHOT: u32 = 1 << 12;
    pub const NO_SNAPSHOT: u32 = 1 << 13;
    pub const HAS_CHECKPOINT: u32 = 1 << 14;
    pub const NO_CHECKPOINT: u32 = 1 << 15;
}

/// Flags of `virDomainGetXMLDesc`.
#[allow(missing_docs)]
pub mod xml_flags {
    pub const SECURE: u32 = 1 << 0;
    pub const INACTIVE: u32 = 1 << 1;
    pub const UPDATE_CPU: u32 = 1 << 2;
    pub const MIGRATABLE: u32 = 1 << 3;
}

/// Flags of `virDomainDefineXMLFlags` and `virDomainCreateXML`.
#[allow(missing_docs)]
pub mod define_flags {
    /// `VIR_DOMAIN_DEFINE_VALIDATE` (and `VIR_DOMAIN_START_VALIDATE` for create-xml is 1 << 4).
    pub const VALIDATE: u32 = 1 << 0;
    pub const START_PAUSED: u32 = 1 << 0;
    pub const START_AUTODESTROY: u32 = 1 << 1;
    pub const START_BYPASS_CACHE: u32 = 1 << 2;
    pub const START_FORCE_BOOT: u32 = 1 << 3;
    pub const START_VALIDATE: u32 = 1 << 4;
}

/// Flags of `virDomainUndefineFlags`.
#[allow(missing_docs)]
pub mod undefine_flags {
    pub const MANAGED_SAVE: u32 = 1 << 0;
    pub const SNAPSHOTS_METADATA: u32 = 1 << 1;
    pub const NVRAM: u32 = 1 << 2;
    pub const KEEP_NVRAM: u32 = 1 << 3;
    pub const CHECKPOINTS_METADATA: u32 = 1 << 4;
    pub const TPM: u32 = 1 << 5;
    pub const KEEP_TPM: u32 = 1 << 6;
}

/// `virDomainEventType` values and their details.
#[allow(missing_docs)]
pub mod event {
    pub const DEFINED: i32 = 0;
    pub const UNDEFINED: i32 = 1;
    pub const STARTED: i32 = 2;
    pub const SUSPENDED: i32 = 3;
    pub const RESUMED: i32 = 4;
    pub const STOPPED: i32 = 5;
    pub const SHUTDOWN: i32 = 6;
    pub const PMSUSPENDED: i32 = 7;
    pub const CRASHED: i32 = 8;

    pub mod defined {
        pub const ADDED: i32 = 0;
        pub const UPDATED: i32 = 1;
        pub const RENAMED: i32 = 2;
        pub const FROM_SNAPSHOT: i32 = 3;
    }
    pub mod undefined {
        pub const REMOVED: i32 = 0;
        pub const RENAMED: i32 = 1;
    }
    pub mod started {
        pub const BOOTED: i32 = 0;
        pub const MIGRATED: i32 = 1;
        pub const RESTORED: i32 = 2;
        pub const FROM_SNAPSHOT: i32 = 3;
        pub const WAKEUP: i32 = 4;
    }
    pub mod suspended {
        pub const PAUSED: i32 = 0;
    }
    pub mod resumed {
        pub const UNPAUSED: i32 = 0;
    }
    pub mod stopped {
        pub const SHUTDOWN: i32 = 0;
        pub const DESTROYED: i32 = 1;
        pub const CRASHED: i32 = 2;
        pub const MIGRATED: i32 = 3;
        pub const SAVED: i32 = 4;
        pub const FAILED: i32 = 5;
        pub const FROM_SNAPSHOT: i32 = 6;
    }
    pub mod shutdown {
        pub const FINISHED: i32 = 0;
        pub const GUEST: i32 = 1;
        pub const HOST: i32 = 2;
    }
}

/// A domain lifecycle event (`VIR_DOMAIN_EVENT_ID_LIFECYCLE`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LifecycleEvent {
    /// The domain the event is about.
    pub dom: DomainRef,
    /// An [`event`] type.
    pub event: i32,
    /// Its detail.
    pub detail: i32,
}

/// `virSecurityModel`: (model, doi).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SecurityModel {
    /// Model name, empty when there is none.
    pub model: String,
    /// Domain of interpretation.
    pub doi: String,
}

/// `virSecurityLabel`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SecurityLabel {
    /// The label, empty when there is none.
    pub label: String,
    /// Whether it is enforced.
    pub enforcing: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_round_trip() {
        let u = Uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193f").unwrap();
        assert_eq!(u.to_string(), "6695eb01-f6a4-8304-79aa-97f2502e193f");
        assert_eq!(Uuid::parse("6695eb01f6a4830479aa97f2502e193f"), Some(u));
        assert_eq!(Uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193"), None);
        assert_eq!(Uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193fa"), None);
        assert_eq!(Uuid::parse("zz95eb01-f6a4-8304-79aa-97f2502e193f"), None);
        let r = Uuid::random();
        assert_eq!(Uuid::parse(&r.to_string()), Some(r));
        assert_ne!(r, Uuid::random());
    }
}
