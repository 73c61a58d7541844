//! `remote_error` (identical on the wire to `virNetMessageError`): how an
//! error travels in a REPLY with status ERROR, or a STREAM with status ERROR.

use crate::types::{limits::REMOTE_STRING_MAX, NonnullDomain, NonnullNetwork};
use ironvirt_driver::{Error, ErrorDomain, ErrorLevel, ErrorNumber};
use ironvirt_xdr::xdr_struct;

xdr_struct! {
    /// `remote_error`. `dom` and `net` are never filled by libvirt 9.0.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct RemoteError {
        pub code: i32,
        pub domain: i32,
        pub message: Option<String> [REMOTE_STRING_MAX],
        pub level: i32,
        pub dom: Option<NonnullDomain>,
        pub str1: Option<String> [REMOTE_STRING_MAX],
        pub str2: Option<String> [REMOTE_STRING_MAX],
        pub str3: Option<String> [REMOTE_STRING_MAX],
        pub int1: i32,
        pub int2: i32,
        pub net: Option<NonnullNetwork>,
    }
}

impl From<&Error> for RemoteError {
    /// The wire form of an error, as libvirt's daemon fills it.
    fn from(e: &Error) -> Self {
        RemoteError {
            code: e.code.0,
            domain: e.domain.0,
            message: Some(e.message.clone()),
            level: e.level as i32,
            dom: None,
            str1: e.str1.clone(),
            str2: e.str2.clone(),
            str3: e.str3.clone(),
            int1: e.int1,
            int2: e.int2,
            net: None,
        }
    }
}

impl From<Error> for RemoteError {
    fn from(e: Error) -> Self {
        RemoteError::from(&e)
    }
}

impl RemoteError {
    /// The error as libvirt's client raises it: a missing message becomes
    /// "Unknown error", an RPC "unknown procedure" error from the server
    /// becomes `VIR_ERR_NO_SUPPORT`, and the error codes renumbered in
    /// libvirt 0.8.0 are mapped the way libvirt's client maps them.
    pub fn into_error(self) -> Error {
        let mut code = self.code;
        match code {
            // VIR_ERR_INVALID_NWFILTER, NO_NWFILTER, BUILD_FIREWALL from an
            // old server meant INVALID_SECRET, NO_SECRET, CONFIG_UNSUPPORTED.
            61..=63 if self.domain != ErrorDomain::NWFILTER.0 => code += 4,
            // VIR_WAR_NO_SECRET from QEMU meant OPERATION_TIMEOUT.
            64 if self.domain == ErrorDomain::QEMU.0 => code = ErrorNumber::OPERATION_TIMEOUT.0,
            // VIR_ERR_INVALID_SECRET from Xen meant MIGRATE_PERSIST_FAILED.
            65 if self.domain == ErrorDomain::XEN.0 => code = ErrorNumber::MIGRATE_PERSIST_FAILED.0,
            _ => {}
        }
        let level = ErrorLevel::from_i32(self.level);
        if (self.domain == ErrorDomain::REMOTE.0 || self.domain == ErrorDomain::RPC.0)
            && code == ErrorNumber::RPC.0
            && level == ErrorLevel::Error
            && self
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with("unknown procedure"))
        {
            code = ErrorNumber::NO_SUPPORT.0;
        }
        Error {
            code: ErrorNumber(code),
            domain: ErrorDomain(self.domain),
            level,
            message: self.message.unwrap_or_else(|| "Unknown error".to_string()),
            str1: self.str1,
            str2: self.str2,
            str3: self.str3,
            int1: self.int1,
            int2: self.int2,
        }
    }
}

impl From<RemoteError> for Error {
    fn from(e: RemoteError) -> Self {
        e.into_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironvirt_xdr::{XdrDecode, XdrEncode};

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }

    /// The reference daemon's answer to DOMAIN_DESTROY on its read-only socket.
    const READONLY_DESTROY: &str = "0000001d00000014000000010000003f6f7065726174696f6e20666f7262696464656e3a2072656164206f6e6c79206163636573732070726576656e747320766972446f6d61696e44657374726f7900000000020000000000000001000000176f7065726174696f6e20666f7262696464656e3a20257300000000010000002a72656164206f6e6c79206163636573732070726576656e747320766972446f6d61696e44657374726f79000000000000ffffffffffffffff00000000";

    #[test]
    fn measured_error_round_trips() {
        let bytes = unhex(READONLY_DESTROY);
        let r = RemoteError::from_xdr(&bytes).expect("decodes");
        assert_eq!(r.to_xdr().expect("encodes"), bytes);
        let e = r.clone().into_error();
        assert_eq!(e.code, ErrorNumber::OPERATION_DENIED);
        assert_eq!(e.domain, ErrorDomain::DOMAIN);
        assert_eq!(
            e.message,
            "operation forbidden: read only access prevents virDomainDestroy"
        );
        assert_eq!((e.int1, e.int2), (-1, -1));
        // Our own error for the same refusal encodes to the same bytes.
        let ours = Error::new(
            ErrorDomain::DOMAIN,
            ErrorNumber::OPERATION_DENIED,
            "read only access prevents virDomainDestroy",
        );
        assert_eq!(RemoteError::from(&ours), r);
    }

    #[test]
    fn client_side_mapping() {
        let mut r = RemoteError::from(&crate::procedures::unknown_procedure(999));
        assert_eq!(r.clone().into_error().code, ErrorNumber::NO_SUPPORT);
        r.message = None;
        let e = r.into_error();
        assert_eq!(e.message, "Unknown error");
        assert_eq!(e.code, ErrorNumber::RPC);
        let old = RemoteError::from(&Error::raw(ErrorDomain::QEMU, ErrorNumber(62), "x"));
        assert_eq!(old.into_error().code, ErrorNumber::NO_SECRET);
        let nw = RemoteError::from(&Error::raw(ErrorDomain::NWFILTER, ErrorNumber(62), "x"));
        assert_eq!(nw.into_error().code, ErrorNumber::NO_NWFILTER);
    }
}
