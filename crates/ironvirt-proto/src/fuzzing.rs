//! One entry point that runs untrusted bytes through every decoder a
//! daemon or client applies to traffic, for the `packet` fuzz target and
//! the deterministic random-input test. It must never panic.

use crate::error::RemoteError;
use crate::packet::{FrameDecoder, Header, Packet};
use crate::remote::{self, reencode_args, reencode_ret, SIGNATURES};
use crate::types::TypedParam;
use ironvirt_xdr::{Decoder, XdrDecode, XdrEncode};

/// Feeds `data` to the frame decoder (whole and in pieces), and decodes it
/// as a header, a whole packet, a remote error, CONNECT_OPEN arguments,
/// typed parameters and the arguments and reply of every procedure this
/// crate has structs for. Whatever decodes must encode again to the same
/// length or fail cleanly (lossy UTF-8 may change lengths, so only the
/// absence of a panic is required there).
pub fn decode_everything(data: &[u8]) {
    // Stream framing, in one piece and split at every 7th byte.
    let mut f = FrameDecoder::new();
    f.extend(data);
    while let Ok(Some(p)) = f.next_packet() {
        decode_payload(&p);
    }
    let mut f = FrameDecoder::new();
    for chunk in data.chunks(7) {
        f.extend(chunk);
        let _ = f.needed();
        match f.next_packet() {
            Ok(Some(p)) => decode_payload(&p),
            Ok(None) => {}
            Err(_) => break,
        }
    }
    if let Ok(p) = Packet::parse(data) {
        let _ = p.to_bytes();
    }
    let _ = Header::from_xdr(data);
    if let Ok(e) = RemoteError::from_xdr(data) {
        let _ = e.to_xdr();
        let _ = e.into_error();
    }
    if let Ok(a) = remote::ConnectOpenArgs::from_xdr(data) {
        let _ = a.to_xdr();
    }
    let mut d = Decoder::new(data);
    let _ = ironvirt_xdr::decode_array::<TypedParam>(
        &mut d,
        crate::types::limits::REMOTE_DOMAIN_JOB_STATS_MAX,
    );
    for &(n, _, _) in SIGNATURES {
        let _ = reencode_args(n, data);
        let _ = reencode_ret(n, data);
    }
}

fn decode_payload(p: &Packet) {
    let n = p.header.proc_;
    let _ = reencode_args(n, &p.payload);
    let _ = reencode_ret(n, &p.payload);
    let _ = RemoteError::from_xdr(&p.payload);
    if let Some(proc_) = crate::procedures::lookup(n) {
        let _ = proc_.check_readonly(0);
        let _ = proc_.no_support();
    }
}
