//! libvirt's RPC wire protocol: framing, programs, procedures, messages.
//!
//! * [`packet`]: the length word and header, [`packet::FrameDecoder`] for
//!   splitting a stream, [`packet::encode_packet`] for building one.
//! * [`program`]: program numbers (remote, keepalive, QEMU, LXC, admin).
//! * [`procedures`]: every procedure of the remote program with its public
//!   API name, read-only rule and priority; [`procedures::num`] holds the
//!   numbers by name.
//! * [`types`]: handles, typed parameters and protocol limits.
//! * [`remote`]: argument, reply and event structs.
//! * [`error`]: `remote_error` and its conversion to and from
//!   [`ironvirt_driver::Error`].
//! * [`convert`]: wire structs to and from the driver seam's types.
//!
//! Decoding a call (daemon side):
//!
//! ```
//! use ironvirt_proto::{packet::{FrameDecoder, Header}, procedures, remote, reply_packet};
//! # let bytes = ironvirt_proto::packet::encode_packet(
//! #     &Header::call(0x20008086, 1, 23, 6), &remote::DomainLookupByNameArgs { name: "test".into() }).unwrap();
//! let mut frames = FrameDecoder::new();
//! frames.extend(&bytes);
//! let call = frames.next_packet().unwrap().unwrap();
//! let proc_ = procedures::lookup(call.header.proc_).unwrap();
//! assert_eq!(proc_.api, "virDomainLookupByName");
//! let args: remote::DomainLookupByNameArgs = call.decode().unwrap();
//! assert_eq!(args.name, "test");
//! let dom = remote::DomainRet { dom: ironvirt_proto::types::NonnullDomain { name: args.name, uuid: [0; 16], id: -1 } };
//! let reply: Vec<u8> = reply_packet(&call.header, &dom).unwrap();
//! assert_eq!(&reply[20..24], &6u32.to_be_bytes()); // the call's serial
//! ```

pub mod convert;
pub mod error;
pub mod fuzzing;
pub mod packet;
pub mod procedures;
pub mod program;
pub mod remote;
pub mod types;

use std::fmt;

pub use error::RemoteError;
pub use packet::{Header, MessageType, Packet, Status};
pub use procedures::Procedure;

use ironvirt_driver::{Error, ErrorDomain, ErrorNumber};
use ironvirt_xdr::XdrEncode;

/// What can go wrong at the protocol layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtoError {
    /// A payload or header did not decode (or encode).
    Xdr(ironvirt_xdr::Error),
    /// A length word below the length word plus header (28).
    PacketTooSmall(usize),
    /// A length word (or packet to send) over libvirt's 32 MiB limit.
    PacketTooLarge(usize),
    /// A buffer handed to [`Packet::parse`] that is not exactly one packet.
    LengthMismatch {
        /// What the length word says.
        declared: usize,
        /// The buffer's size.
        actual: usize,
    },
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Xdr(e) => write!(f, "{e}"),
            ProtoError::PacketTooSmall(n) => {
                write!(
                    f,
                    "packet {n} bytes received from server too small, want {}",
                    packet::PACKET_MIN
                )
            }
            ProtoError::PacketTooLarge(n) => {
                write!(
                    f,
                    "packet {n} bytes received from server too large, want {}",
                    packet::PACKET_MAX
                )
            }
            ProtoError::LengthMismatch { declared, actual } => {
                write!(f, "packet length word says {declared} bytes, got {actual}")
            }
        }
    }
}

impl std::error::Error for ProtoError {}

impl From<ironvirt_xdr::Error> for ProtoError {
    fn from(e: ironvirt_xdr::Error) -> Self {
        ProtoError::Xdr(e)
    }
}

impl From<ProtoError> for Error {
    /// `VIR_ERR_RPC` in `VIR_FROM_RPC`, as libvirt reports malformed
    /// traffic; a payload that does not decode gets libvirt's exact words
    /// ("Unable to decode message payload", measured).
    fn from(e: ProtoError) -> Self {
        let msg = match &e {
            ProtoError::Xdr(_) => "Unable to decode message payload".to_string(),
            _ => e.to_string(),
        };
        Error::new(ErrorDomain::RPC, ErrorNumber::RPC, msg)
    }
}

/// Shorthand for protocol results.
pub type Result<T> = std::result::Result<T, ProtoError>;

/// The successful reply to `call`, whole (length word included), with
/// `body` as payload (`&()` for `void`).
pub fn reply_packet<T: XdrEncode + ?Sized>(call: &Header, body: &T) -> Result<Vec<u8>> {
    packet::encode_packet(&call.reply(), body)
}

/// The error reply to `call`.
pub fn error_packet(call: &Header, err: &Error) -> Vec<u8> {
    let rerr = RemoteError::from(err);
    match packet::encode_packet(&call.error_reply(), &rerr) {
        Ok(b) => b,
        // Only a message over 4 MiB can fail to encode: send it cut short.
        Err(_) => {
            let mut short = err.clone();
            short.message = short.message.chars().take(1024).collect();
            short.str1 = None;
            short.str2 = None;
            short.str3 = None;
            packet::encode_packet(&call.error_reply(), &RemoteError::from(&short))
                .unwrap_or_default()
        }
    }
}

/// The reply to `call` for a driver result: the encoded value, or the error.
pub fn result_packet<T: XdrEncode>(
    call: &Header,
    result: std::result::Result<T, Error>,
) -> Vec<u8> {
    match result {
        Ok(v) => match reply_packet(call, &v) {
            Ok(b) => b,
            Err(e) => error_packet(call, &Error::from(e)),
        },
        Err(e) => error_packet(call, &e),
    }
}

/// An event message of the remote program (type MESSAGE, status OK).
/// libvirt's daemon sends events with serial 1 (measured; the protocol
/// description says 0), so this does too.
pub fn event_packet<T: XdrEncode + ?Sized>(proc_: i32, body: &T) -> Result<Vec<u8>> {
    let h = Header {
        prog: program::REMOTE_PROGRAM,
        vers: program::REMOTE_VERSION,
        proc_,
        type_: MessageType::MESSAGE,
        serial: 1,
        status: Status::OK,
    };
    packet::encode_packet(&h, body)
}

/// A keepalive message (`program::keepalive::PING` or `PONG`): type
/// MESSAGE, serial 0, empty payload.
pub fn keepalive_packet(proc_: i32) -> Vec<u8> {
    let h = Header {
        prog: program::KEEPALIVE_PROGRAM,
        vers: program::KEEPALIVE_VERSION,
        proc_,
        type_: MessageType::MESSAGE,
        serial: 0,
        status: Status::OK,
    };
    packet::encode_packet(&h, &()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_and_keepalive_packets() {
        let call = Header::call(program::REMOTE_PROGRAM, 1, 12, 3);
        let e = Error::new(ErrorDomain::DOMAIN, ErrorNumber::OPERATION_DENIED, "x");
        let b = error_packet(&call, &e);
        let p = Packet::parse(&b).expect("parses");
        assert_eq!(p.header.status, Status::ERROR);
        assert_eq!(p.header.type_, MessageType::REPLY);
        assert_eq!(p.header.serial, 3);
        let back: RemoteError = p.decode().expect("decodes");
        assert_eq!(back.into_error(), e);

        let huge = Error::raw(ErrorDomain::RPC, ErrorNumber::RPC, "y".repeat(5_000_000));
        let p = Packet::parse(&error_packet(&call, &huge)).expect("parses");
        assert_eq!(
            p.decode::<RemoteError>()
                .expect("decodes")
                .message
                .map(|m| m.len()),
            Some(1024)
        );

        let ping = keepalive_packet(program::keepalive::PING);
        assert_eq!(ping.len(), 28);
        let p = Packet::parse(&ping).expect("parses");
        assert_eq!(p.header.prog, program::KEEPALIVE_PROGRAM);
        assert_eq!(p.header.type_, MessageType::MESSAGE);

        let ok = result_packet(&call, Ok(5u32));
        assert_eq!(Packet::parse(&ok).expect("parses").payload, [0, 0, 0, 5]);
    }

    #[test]
    fn proto_errors_become_rpc_errors() {
        let e = Error::from(ProtoError::PacketTooLarge(1 << 30));
        assert_eq!((e.code, e.domain), (ErrorNumber::RPC, ErrorDomain::RPC));
    }
}
