//! libvirt's error model: an error number (`virErrorNumber`), the part of the
//! system that raised it (`virErrorDomain`), a level and a message.
//!
//! The numbers are the ones libvirt uses on the wire and in its public API, so
//! an [`Error`] can travel in libvirt's `remote_error` struct and a real client
//! prints it exactly as it prints libvirt's own errors.

use std::fmt;

/// A `virErrorNumber`: what went wrong.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ErrorNumber(pub i32);

macro_rules! numbers {
    ($ty:ident { $($name:ident = $val:expr),* $(,)? }) => {
        #[allow(missing_docs)]
        impl $ty {
            $(pub const $name: $ty = $ty($val);)*

            /// The libvirt constant name without its prefix, if the value is known.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

numbers!(ErrorNumber {
    OK = 0, INTERNAL_ERROR = 1, NO_MEMORY = 2, NO_SUPPORT = 3, UNKNOWN_HOST = 4,
    NO_CONNECT = 5, INVALID_CONN = 6, INVALID_DOMAIN = 7, INVALID_ARG = 8,
    OPERATION_FAILED = 9, GET_FAILED = 10, POST_FAILED = 11, HTTP_ERROR = 12,
    SEXPR_SERIAL = 13, NO_XEN = 14, XEN_CALL = 15, OS_TYPE = 16, NO_KERNEL = 17,
    NO_ROOT = 18, NO_SOURCE = 19, NO_TARGET = 20, NO_NAME = 21, NO_OS = 22,
    NO_DEVICE = 23, NO_XENSTORE = 24, DRIVER_FULL = 25, CALL_FAILED = 26,
    XML_ERROR = 27, DOM_EXIST = 28, OPERATION_DENIED = 29, OPEN_FAILED = 30,
    READ_FAILED = 31, PARSE_FAILED = 32, CONF_SYNTAX = 33, WRITE_FAILED = 34,
    XML_DETAIL = 35, INVALID_NETWORK = 36, NETWORK_EXIST = 37, SYSTEM_ERROR = 38,
    RPC = 39, GNUTLS_ERROR = 40, WAR_NO_NETWORK = 41, NO_DOMAIN = 42,
    NO_NETWORK = 43, INVALID_MAC = 44, AUTH_FAILED = 45, INVALID_STORAGE_POOL = 46,
    INVALID_STORAGE_VOL = 47, WAR_NO_STORAGE = 48, NO_STORAGE_POOL = 49,
    NO_STORAGE_VOL = 50, WAR_NO_NODE = 51, INVALID_NODE_DEVICE = 52,
    NO_NODE_DEVICE = 53, NO_SECURITY_MODEL = 54, OPERATION_INVALID = 55,
    WAR_NO_INTERFACE = 56, NO_INTERFACE = 57, INVALID_INTERFACE = 58,
    MULTIPLE_INTERFACES = 59, WAR_NO_NWFILTER = 60, INVALID_NWFILTER = 61,
    NO_NWFILTER = 62, BUILD_FIREWALL = 63, WAR_NO_SECRET = 64, INVALID_SECRET = 65,
    NO_SECRET = 66, CONFIG_UNSUPPORTED = 67, OPERATION_TIMEOUT = 68,
    MIGRATE_PERSIST_FAILED = 69, HOOK_SCRIPT_FAILED = 70,
    INVALID_DOMAIN_SNAPSHOT = 71, NO_DOMAIN_SNAPSHOT = 72, INVALID_STREAM = 73,
    ARGUMENT_UNSUPPORTED = 74, STORAGE_PROBE_FAILED = 75, STORAGE_POOL_BUILT = 76,
    SNAPSHOT_REVERT_RISKY = 77, OPERATION_ABORTED = 78, AUTH_CANCELLED = 79,
    NO_DOMAIN_METADATA = 80, MIGRATE_UNSAFE = 81, OVERFLOW = 82,
    BLOCK_COPY_ACTIVE = 83, OPERATION_UNSUPPORTED = 84, SSH = 85,
    AGENT_UNRESPONSIVE = 86, RESOURCE_BUSY = 87, ACCESS_DENIED = 88,
    DBUS_SERVICE = 89, STORAGE_VOL_EXIST = 90, CPU_INCOMPATIBLE = 91,
    XML_INVALID_SCHEMA = 92, MIGRATE_FINISH_OK = 93, AUTH_UNAVAILABLE = 94,
    NO_SERVER = 95, NO_CLIENT = 96, AGENT_UNSYNCED = 97, LIBSSH = 98,
    DEVICE_MISSING = 99, INVALID_NWFILTER_BINDING = 100, NO_NWFILTER_BINDING = 101,
    INVALID_DOMAIN_CHECKPOINT = 102, NO_DOMAIN_CHECKPOINT = 103,
    NO_DOMAIN_BACKUP = 104, INVALID_NETWORK_PORT = 105, NETWORK_PORT_EXIST = 106,
    NO_NETWORK_PORT = 107, NO_HOSTNAME = 108, CHECKPOINT_INCONSISTENT = 109,
    MULTIPLE_DOMAINS = 110,
});

/// A `virErrorDomain`: which part of the system raised the error.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ErrorDomain(pub i32);

numbers!(ErrorDomain {
    NONE = 0, XEN = 1, XEND = 2, XENSTORE = 3, SEXPR = 4, XML = 5, DOM = 6, RPC = 7,
    PROXY = 8, CONF = 9, QEMU = 10, NET = 11, TEST = 12, REMOTE = 13, OPENVZ = 14,
    XENXM = 15, STATS_LINUX = 16, LXC = 17, STORAGE = 18, NETWORK = 19, DOMAIN = 20,
    UML = 21, NODEDEV = 22, XEN_INOTIFY = 23, SECURITY = 24, VBOX = 25, INTERFACE = 26,
    ONE = 27, ESX = 28, PHYP = 29, SECRET = 30, CPU = 31, XENAPI = 32, NWFILTER = 33,
    HOOK = 34, DOMAIN_SNAPSHOT = 35, AUDIT = 36, SYSINFO = 37, STREAMS = 38,
    VMWARE = 39, EVENT = 40, LIBXL = 41, LOCKING = 42, HYPERV = 43, CAPABILITIES = 44,
    URI = 45, AUTH = 46, DBUS = 47, PARALLELS = 48, DEVICE = 49, SSH = 50,
    LOCKSPACE = 51, INITCTL = 52, IDENTITY = 53, CGROUP = 54, ACCESS = 55,
    SYSTEMD = 56, BHYVE = 57, CRYPTO = 58, FIREWALL = 59, POLKIT = 60, THREAD = 61,
    ADMIN = 62, LOGGING = 63, XENXL = 64, PERF = 65, LIBSSH = 66, RESCTRL = 67,
    FIREWALLD = 68, DOMAIN_CHECKPOINT = 69, TPM = 70, BPF = 71, CH = 72,
});

/// A `virErrorLevel`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ErrorLevel {
    /// No error.
    None = 0,
    /// A warning.
    Warning = 1,
    /// An error.
    Error = 2,
}

impl ErrorLevel {
    /// The level for a wire value; unknown values count as errors.
    pub fn from_i32(v: i32) -> Self {
        match v {
            0 => ErrorLevel::None,
            1 => ErrorLevel::Warning,
            _ => ErrorLevel::Error,
        }
    }
}

/// An error as libvirt reports it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Error {
    /// What went wrong.
    pub code: ErrorNumber,
    /// Which part of the system raised it.
    pub domain: ErrorDomain,
    /// How serious it is.
    pub level: ErrorLevel,
    /// The whole human-readable message, prefix included.
    pub message: String,
    /// Extra strings, as libvirt fills them (str1 is the message's prefix).
    pub str1: Option<String>,
    /// Extra string (usually the detail).
    pub str2: Option<String>,
    /// Extra string.
    pub str3: Option<String>,
    /// Extra number.
    pub int1: i32,
    /// Extra number.
    pub int2: i32,
}

/// Shorthand for results whose error is an [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The message prefix libvirt puts in front of the detail for a code: the
/// first element is used without a detail, the second with one (`%s` marks
/// where the detail goes).
fn prefix(code: ErrorNumber) -> (&'static str, &'static str) {
    match code.0 {
        1 => ("internal error", "internal error: %s"),
        2 => ("out of memory", "out of memory"),
        3 => (
            "this function is not supported by the connection driver",
            "this function is not supported by the connection driver: %s",
        ),
        5 => (
            "no connection driver available",
            "no connection driver available for %s",
        ),
        6 => (
            "invalid connection pointer in",
            "invalid connection pointer in %s",
        ),
        7 => ("invalid domain pointer in", "invalid domain pointer in %s"),
        8 => ("invalid argument", "invalid argument: %s"),
        9 => ("operation failed", "operation failed: %s"),
        16 => ("unknown OS type", "unknown OS type %s"),
        19 => (
            "missing source information for device",
            "missing source information for device %s",
        ),
        21 => ("missing name information", "missing name information in %s"),
        22 => (
            "missing operating system information",
            "missing operating system information for %s",
        ),
        27 => (
            "XML description is invalid or not well formed",
            "XML error: %s",
        ),
        28 => ("this domain exists already", "domain %s exists already"),
        29 => (
            "operation forbidden for read only access",
            "operation forbidden: %s",
        ),
        30 => (
            "failed to open configuration file",
            "failed to open configuration file %s",
        ),
        31 => (
            "failed to read configuration file",
            "failed to read configuration file %s",
        ),
        32 => (
            "failed to parse configuration file",
            "failed to parse configuration file %s",
        ),
        33 => (
            "configuration file syntax error",
            "configuration file syntax error: %s",
        ),
        34 => (
            "failed to write configuration file",
            "failed to write configuration file: %s",
        ),
        35 => ("parser error", "%s"),
        37 => ("this network exists already", "network %s exists already"),
        38 => ("system call error", "%s"),
        39 => ("RPC error", "%s"),
        40 => ("GNUTLS call error", "%s"),
        42 => ("Domain not found", "Domain not found: %s"),
        43 => ("Network not found", "Network not found: %s"),
        44 => ("invalid MAC address", "invalid MAC address: %s"),
        45 => ("authentication failed", "authentication failed: %s"),
        49 => ("Storage pool not found", "Storage pool not found: %s"),
        50 => ("Storage volume not found", "Storage volume not found: %s"),
        53 => ("Node device not found", "Node device not found: %s"),
        54 => ("Security model not found", "Security model not found: %s"),
        55 => (
            "Requested operation is not valid",
            "Requested operation is not valid: %s",
        ),
        57 => ("Interface not found", "Interface not found: %s"),
        66 => ("Secret not found", "Secret not found: %s"),
        67 => ("unsupported configuration", "unsupported configuration: %s"),
        68 => (
            "Timed out during operation",
            "Timed out during operation: %s",
        ),
        72 => ("Domain snapshot not found", "Domain snapshot not found: %s"),
        73 => ("invalid stream pointer", "invalid stream pointer in %s"),
        74 => ("argument unsupported", "argument unsupported: %s"),
        78 => ("operation aborted", "operation aborted: %s"),
        79 => ("authentication cancelled", "authentication cancelled: %s"),
        80 => ("metadata not found", "metadata not found: %s"),
        82 => ("numerical overflow", "numerical overflow: %s"),
        83 => ("block copy still active", "block copy still active: %s"),
        84 => ("Operation not supported", "Operation not supported: %s"),
        85 => ("SSH transport error", "SSH transport error: %s"),
        86 => (
            "Guest agent is not responding",
            "Guest agent is not responding: %s",
        ),
        87 => ("resource busy", "resource busy: %s"),
        88 => ("access denied", "access denied: %s"),
        91 => (
            "the CPU is incompatible with host CPU",
            "the CPU is incompatible with host CPU: %s",
        ),
        92 => (
            "XML document failed to validate against schema",
            "XML document failed to validate against schema: %s",
        ),
        99 => ("device not found", "device not found: %s"),
        108 => ("no hostname found", "no hostname found: %s"),
        110 => (
            "multiple matching domains found",
            "multiple matching domains found: %s",
        ),
        _ => ("unexpected error", "%s"),
    }
}

impl Error {
    /// An error with libvirt's message prefix for `code` in front of `detail`,
    /// as libvirt's own drivers report them.
    pub fn new(domain: ErrorDomain, code: ErrorNumber, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let (bare, with) = prefix(code);
        let message = if detail.is_empty() {
            bare.to_string()
        } else {
            with.replacen("%s", &detail, 1)
        };
        Error {
            code,
            domain,
            level: ErrorLevel::Error,
            message,
            str1: Some(if detail.is_empty() {
                bare.to_string()
            } else {
                with.to_string()
            }),
            str2: if detail.is_empty() {
                None
            } else {
                Some(detail)
            },
            str3: None,
            int1: -1,
            int2: -1,
        }
    }

    /// An error whose message is taken as it is (for example one that came
    /// over the wire from another daemon).
    pub fn raw(domain: ErrorDomain, code: ErrorNumber, message: impl Into<String>) -> Self {
        Error {
            code,
            domain,
            level: ErrorLevel::Error,
            message: message.into(),
            str1: None,
            str2: None,
            str3: None,
            int1: -1,
            int2: -1,
        }
    }

    /// `VIR_ERR_NO_SUPPORT` for an API the driver does not implement.
    pub fn no_support(domain: ErrorDomain, api: &str) -> Self {
        Error::new(domain, ErrorNumber::NO_SUPPORT, api)
    }

    /// `VIR_ERR_INVALID_ARG` with a detail.
    pub fn invalid_arg(domain: ErrorDomain, detail: impl Into<String>) -> Self {
        Error::new(domain, ErrorNumber::INVALID_ARG, detail)
    }

    /// `VIR_ERR_INTERNAL_ERROR` with a detail.
    pub fn internal(domain: ErrorDomain, detail: impl Into<String>) -> Self {
        Error::new(domain, ErrorNumber::INTERNAL_ERROR, detail)
    }

    /// `VIR_ERR_OPERATION_INVALID` with a detail.
    pub fn operation_invalid(domain: ErrorDomain, detail: impl Into<String>) -> Self {
        Error::new(domain, ErrorNumber::OPERATION_INVALID, detail)
    }

    /// libvirt's flag check: `VIR_ERR_INVALID_ARG` naming the unknown bits
    /// (`flags & !allowed`) and the driver function, or `Ok` when there
    /// are none.
    pub fn check_flags(domain: ErrorDomain, flags: u32, allowed: u32, func: &str) -> Result<()> {
        let bad = flags & !allowed;
        if bad != 0 {
            return Err(Error::raw(
                domain,
                ErrorNumber::INVALID_ARG,
                format!("unsupported flags (0x{bad:x}) in function {func}"),
            ));
        }
        Ok(())
    }

    /// `VIR_ERR_NO_DOMAIN` for a name lookup: `no domain with matching name 'x'`.
    pub fn no_domain_name(domain: ErrorDomain, name: &str) -> Self {
        Error::new(
            domain,
            ErrorNumber::NO_DOMAIN,
            format!("no domain with matching name '{name}'"),
        )
    }

    /// `VIR_ERR_NO_DOMAIN` for a UUID lookup.
    pub fn no_domain_uuid(domain: ErrorDomain, uuid: &str) -> Self {
        Error::new(
            domain,
            ErrorNumber::NO_DOMAIN,
            format!("no domain with matching uuid '{uuid}'"),
        )
    }

    /// `VIR_ERR_NO_DOMAIN` for an id lookup.
    pub fn no_domain_id(domain: ErrorDomain, id: i32) -> Self {
        Error::new(
            domain,
            ErrorNumber::NO_DOMAIN,
            format!("no domain with matching id {id}"),
        )
    }

    /// `VIR_ERR_XML_ERROR` with a detail.
    pub fn xml(detail: impl Into<String>) -> Self {
        Error::new(ErrorDomain::DOMAIN, ErrorNumber::XML_ERROR, detail)
    }

    /// `VIR_ERR_CONFIG_UNSUPPORTED` with a detail.
    pub fn config_unsupported(domain: ErrorDomain, detail: impl Into<String>) -> Self {
        Error::new(domain, ErrorNumber::CONFIG_UNSUPPORTED, detail)
    }

    /// `VIR_ERR_SYSTEM_ERROR`: `what: strerror`.
    pub fn system(domain: ErrorDomain, what: impl fmt::Display, err: &std::io::Error) -> Self {
        let mut e = Error::new(
            domain,
            ErrorNumber::SYSTEM_ERROR,
            format!("{what}: {}", io_strerror(err)),
        );
        e.int1 = err.raw_os_error().unwrap_or(-1);
        e
    }
}

/// The C library's wording of an I/O error, without Rust's " (os error N)".
pub fn io_strerror(err: &std::io::Error) -> String {
    let s = err.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_libvirt_wording() {
        let e = Error::no_domain_name(ErrorDomain::TEST, "x");
        assert_eq!(
            e.to_string(),
            "Domain not found: no domain with matching name 'x'"
        );
        assert_eq!(e.code.0, 42);
        let e = Error::new(ErrorDomain::QEMU, ErrorNumber::INTERNAL_ERROR, "");
        assert_eq!(e.to_string(), "internal error");
        assert_eq!(ErrorNumber::CONFIG_UNSUPPORTED.0, 67);
        assert_eq!(ErrorNumber(42).name(), Some("NO_DOMAIN"));
        assert_eq!(ErrorDomain::QEMU.name(), Some("QEMU"));
        assert!(Error::check_flags(ErrorDomain::QEMU, 0x1, 0x1, "f").is_ok());
        let e = Error::check_flags(ErrorDomain::QEMU, 0x5, 0x1, "qemuX").unwrap_err();
        assert_eq!(e.message, "unsupported flags (0x4) in function qemuX");
        assert_eq!(e.code, ErrorNumber::INVALID_ARG);
    }

    #[test]
    fn system_error_drops_rust_suffix() {
        let io = std::io::Error::from_raw_os_error(2);
        let e = Error::system(ErrorDomain::CONF, "cannot open '/x'", &io);
        assert_eq!(e.to_string(), "cannot open '/x': No such file or directory");
        assert_eq!(e.int1, 2);
    }
}
