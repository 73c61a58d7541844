//! Packet framing: a 4-byte big-endian length (counting itself), a 24-byte
//! header, then the payload.
//!
//! ```text
//! +--------+------+------+------+------+--------+--------+-----------+
//! | length | prog | vers | proc | type | serial | status | payload   |
//! | u32    | u32  | u32  | i32  | i32  | u32    | i32    | ...       |
//! +--------+------+------+------+------+--------+--------+-----------+
//! ```
//!
//! [`FrameDecoder`] splits a byte stream into [`Packet`]s and refuses bad
//! lengths as soon as the length word is in, before buffering the body.

use crate::{ProtoError, Result};
use ironvirt_xdr::{Decoder, Encoder, XdrDecode, XdrEncode};

/// Size of the length word (`VIR_NET_MESSAGE_LEN_MAX`).
pub const LEN_SIZE: usize = 4;
/// Size of the encoded header (`VIR_NET_MESSAGE_HEADER_MAX`).
pub const HEADER_SIZE: usize = 24;
/// Largest message after the length word (`VIR_NET_MESSAGE_MAX`, 32 MiB).
pub const MESSAGE_MAX: usize = 33_554_432;
/// Largest payload (`VIR_NET_MESSAGE_PAYLOAD_MAX`).
pub const PAYLOAD_MAX: usize = MESSAGE_MAX - HEADER_SIZE;
/// Initial buffer size libvirt allocates for a message (`VIR_NET_MESSAGE_INITIAL`).
pub const MESSAGE_INITIAL: usize = 65_536;
/// The payload limit older clients had (`VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX`).
pub const LEGACY_PAYLOAD_MAX: usize = 262_120;
/// Longest string in the generic message error (`VIR_NET_MESSAGE_STRING_MAX`).
pub const MESSAGE_STRING_MAX: u32 = 4_194_304;
/// Most file descriptors one message may pass (`VIR_NET_MESSAGE_NUM_FDS_MAX`).
pub const NUM_FDS_MAX: usize = 32;
/// Smallest valid value of the length word: length word plus header.
pub const PACKET_MIN: usize = LEN_SIZE + HEADER_SIZE;
/// Largest valid value of the length word.
pub const PACKET_MAX: usize = LEN_SIZE + MESSAGE_MAX;

/// `virNetMessageType`, kept as the raw value so unknown types reach the
/// dispatcher (which answers them) instead of failing the decode.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MessageType(pub i32);

#[allow(missing_docs)]
impl MessageType {
    pub const CALL: MessageType = MessageType(0);
    pub const REPLY: MessageType = MessageType(1);
    pub const MESSAGE: MessageType = MessageType(2);
    pub const STREAM: MessageType = MessageType(3);
    pub const CALL_WITH_FDS: MessageType = MessageType(4);
    pub const REPLY_WITH_FDS: MessageType = MessageType(5);
    pub const STREAM_HOLE: MessageType = MessageType(6);

    /// libvirt's name for the type, if known.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "CALL",
            1 => "REPLY",
            2 => "MESSAGE",
            3 => "STREAM",
            4 => "CALL_WITH_FDS",
            5 => "REPLY_WITH_FDS",
            6 => "STREAM_HOLE",
            _ => return None,
        })
    }
}

/// `virNetMessageStatus`, kept as the raw value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Status(pub i32);

#[allow(missing_docs)]
impl Status {
    pub const OK: Status = Status(0);
    pub const ERROR: Status = Status(1);
    pub const CONTINUE: Status = Status(2);
}

/// `virNetMessageHeader`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Header {
    /// Program number ([`crate::program`]).
    pub prog: u32,
    /// Program version.
    pub vers: u32,
    /// Procedure number within the program.
    pub proc_: i32,
    /// Message type.
    pub type_: MessageType,
    /// Serial: chosen by the client for a call, echoed in its reply.
    pub serial: u32,
    /// Status.
    pub status: Status,
}

impl Header {
    /// A call header.
    pub fn call(prog: u32, vers: u32, proc_: i32, serial: u32) -> Header {
        Header {
            prog,
            vers,
            proc_,
            type_: MessageType::CALL,
            serial,
            status: Status::OK,
        }
    }

    /// The header of the successful reply to this call.
    pub fn reply(&self) -> Header {
        Header {
            type_: MessageType::REPLY,
            status: Status::OK,
            ..*self
        }
    }

    /// The header of the error reply to this call.
    pub fn error_reply(&self) -> Header {
        Header {
            type_: MessageType::REPLY,
            status: Status::ERROR,
            ..*self
        }
    }
}

impl XdrEncode for Header {
    fn encode(&self, enc: &mut Encoder) -> ironvirt_xdr::Result<()> {
        enc.put_u32(self.prog);
        enc.put_u32(self.vers);
        enc.put_i32(self.proc_);
        enc.put_i32(self.type_.0);
        enc.put_u32(self.serial);
        enc.put_i32(self.status.0);
        Ok(())
    }
}

impl XdrDecode for Header {
    const MIN_SIZE: usize = HEADER_SIZE;
    fn decode(dec: &mut Decoder<'_>) -> ironvirt_xdr::Result<Self> {
        Ok(Header {
            prog: dec.get_u32()?,
            vers: dec.get_u32()?,
            proc_: dec.get_i32()?,
            type_: MessageType(dec.get_i32()?),
            serial: dec.get_u32()?,
            status: Status(dec.get_i32()?),
        })
    }
}

/// One whole packet: header and payload (the length word is implied).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Packet {
    /// The header.
    pub header: Header,
    /// The XDR payload after the header.
    pub payload: Vec<u8>,
}

impl Packet {
    /// A packet whose payload is `body` encoded.
    pub fn new<T: XdrEncode + ?Sized>(header: Header, body: &T) -> Result<Packet> {
        let mut e = Encoder::new();
        body.encode(&mut e)?;
        Ok(Packet {
            header,
            payload: e.into_inner(),
        })
    }

    /// Parses one packet from `bytes`, which must be exactly one packet,
    /// length word included.
    pub fn parse(bytes: &[u8]) -> Result<Packet> {
        if bytes.len() < LEN_SIZE {
            return Err(ProtoError::Xdr(ironvirt_xdr::Error::Truncated {
                needed: LEN_SIZE,
                remaining: bytes.len(),
            }));
        }
        let len = packet_length([bytes[0], bytes[1], bytes[2], bytes[3]])?;
        if len != bytes.len() {
            return Err(ProtoError::LengthMismatch {
                declared: len,
                actual: bytes.len(),
            });
        }
        Self::parse_body(&bytes[LEN_SIZE..])
    }

    /// Parses a packet from the bytes after its length word.
    pub fn parse_body(body: &[u8]) -> Result<Packet> {
        let mut d = Decoder::new(body);
        let header = Header::decode(&mut d)?;
        Ok(Packet {
            header,
            payload: d.rest().to_vec(),
        })
    }

    /// The packet on the wire: length word, header, payload. Fails when it
    /// would exceed libvirt's message limit.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let total = PACKET_MIN + self.payload.len();
        if total > PACKET_MAX {
            return Err(ProtoError::PacketTooLarge(total));
        }
        let mut e = Encoder::from_vec(Vec::with_capacity(total));
        e.put_u32(total as u32);
        self.header.encode(&mut e)?;
        let mut v = e.into_inner();
        v.extend_from_slice(&self.payload);
        Ok(v)
    }

    /// Decodes the payload as `T`; the payload must hold exactly one `T`.
    pub fn decode<T: XdrDecode>(&self) -> Result<T> {
        Ok(T::from_xdr(&self.payload)?)
    }
}

/// Encodes a whole packet (length word, header, body) in one buffer.
pub fn encode_packet<T: XdrEncode + ?Sized>(header: &Header, body: &T) -> Result<Vec<u8>> {
    let mut e = Encoder::from_vec(Vec::with_capacity(256));
    e.put_u32(0);
    header.encode(&mut e)?;
    body.encode(&mut e)?;
    let mut v = e.into_inner();
    if v.len() > PACKET_MAX {
        return Err(ProtoError::PacketTooLarge(v.len()));
    }
    let len = (v.len() as u32).to_be_bytes();
    v[..LEN_SIZE].copy_from_slice(&len);
    Ok(v)
}

/// Checks a length word and returns the whole packet's length (length word
/// included). libvirt accepts `28 ..= 4 + 32 MiB`.
pub fn packet_length(word: [u8; 4]) -> Result<usize> {
    let len = u32::from_be_bytes(word) as usize;
    if len < PACKET_MIN {
        Err(ProtoError::PacketTooSmall(len))
    } else if len > PACKET_MAX {
        Err(ProtoError::PacketTooLarge(len))
    } else {
        Ok(len)
    }
}

/// What the stream needs next.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Need {
    /// At least this many more bytes before a packet is complete.
    More(usize),
    /// A whole packet of this many bytes (length word included) is at the
    /// front of the buffer.
    Complete(usize),
}

/// Examines the front of `buf`: how many more bytes are needed, or the
/// length of the complete packet there. Bad length words fail at once.
pub fn check_frame(buf: &[u8]) -> Result<Need> {
    if buf.len() < LEN_SIZE {
        return Ok(Need::More(LEN_SIZE - buf.len()));
    }
    let len = packet_length([buf[0], buf[1], buf[2], buf[3]])?;
    if buf.len() < len {
        Ok(Need::More(len - buf.len()))
    } else {
        Ok(Need::Complete(len))
    }
}

/// Splits a byte stream into packets. Feed it what the socket gives
/// ([`FrameDecoder::extend`]), then take packets out
/// ([`FrameDecoder::next_packet`]) until it returns `Ok(None)`.
///
/// For an async reader that wants to read exactly what is needed,
/// [`FrameDecoder::needed`] says how many bytes to read next.
///
/// ```
/// use ironvirt_proto::packet::{FrameDecoder, Header, encode_packet};
/// let bytes = encode_packet(&Header::call(0x20008086, 1, 66, 0), &()).unwrap();
/// let mut f = FrameDecoder::new();
/// f.extend(&bytes[..10]);
/// assert_eq!(f.next_packet().unwrap(), None);
/// assert_eq!(f.needed().unwrap(), 18);
/// f.extend(&bytes[10..]);
/// let p = f.next_packet().unwrap().unwrap();
/// assert_eq!(p.header.proc_, 66);
/// ```
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned as packets.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// How many more bytes complete the next packet (0 when one is ready).
    /// Fails as soon as a bad length word is buffered.
    pub fn needed(&self) -> Result<usize> {
        match check_frame(&self.buf[self.start..])? {
            Need::More(n) => Ok(n),
            Need::Complete(_) => Ok(0),
        }
    }

    /// The next complete packet, `Ok(None)` when more bytes are needed.
    /// After an error the stream cannot be trusted: close the connection.
    pub fn next_packet(&mut self) -> Result<Option<Packet>> {
        let rest = &self.buf[self.start..];
        match check_frame(rest)? {
            Need::More(_) => {
                self.compact();
                Ok(None)
            }
            Need::Complete(len) => {
                let p = Packet::parse_body(&rest[LEN_SIZE..len]);
                self.start += len;
                p.map(Some)
            }
        }
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let h = Header {
            prog: 0x2000_8086,
            vers: 1,
            proc_: 66,
            type_: MessageType::REPLY,
            serial: 7,
            status: Status::ERROR,
        };
        let b = encode_packet(&h, &()).expect("encodes");
        assert_eq!(
            b,
            [
                0, 0, 0, 28, 0x20, 0x00, 0x80, 0x86, 0, 0, 0, 1, 0, 0, 0, 66, 0, 0, 0, 1, 0, 0, 0,
                7, 0, 0, 0, 1
            ]
        );
        let p = Packet::parse(&b).expect("parses");
        assert_eq!(p.header, h);
        assert!(p.payload.is_empty());
        assert_eq!(p.to_bytes().expect("encodes"), b);
    }

    #[test]
    fn length_limits() {
        assert!(matches!(
            packet_length(27u32.to_be_bytes()),
            Err(ProtoError::PacketTooSmall(27))
        ));
        assert!(matches!(
            packet_length(0u32.to_be_bytes()),
            Err(ProtoError::PacketTooSmall(0))
        ));
        assert_eq!(packet_length(28u32.to_be_bytes()).ok(), Some(28));
        assert_eq!(
            packet_length((PACKET_MAX as u32).to_be_bytes()).ok(),
            Some(PACKET_MAX)
        );
        assert!(matches!(
            packet_length((PACKET_MAX as u32 + 1).to_be_bytes()),
            Err(ProtoError::PacketTooLarge(_))
        ));
        assert!(packet_length(u32::MAX.to_be_bytes()).is_err());
        let big = Packet {
            header: Header::call(1, 1, 1, 1),
            payload: vec![0; PAYLOAD_MAX + 1],
        };
        assert!(matches!(big.to_bytes(), Err(ProtoError::PacketTooLarge(_))));
        let max = Packet {
            header: Header::call(1, 1, 1, 1),
            payload: vec![0; PAYLOAD_MAX],
        };
        assert_eq!(max.to_bytes().map(|b| b.len()).ok(), Some(PACKET_MAX));
    }

    #[test]
    fn frame_decoder_streams() {
        let a = encode_packet(&Header::call(1, 1, 5, 1), &7u32).expect("encodes");
        let b = encode_packet(&Header::call(1, 1, 6, 2), &()).expect("encodes");
        let mut all = a.clone();
        all.extend_from_slice(&b);
        // Byte by byte.
        let mut f = FrameDecoder::new();
        let mut got = Vec::new();
        for &byte in &all {
            f.extend(&[byte]);
            while let Some(p) = f.next_packet().expect("valid") {
                got.push(p);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].header.proc_, 5);
        assert_eq!(got[0].payload, [0, 0, 0, 7]);
        assert_eq!(got[1].header.serial, 2);
        assert_eq!(f.buffered(), 0);
        // All at once.
        let mut f = FrameDecoder::new();
        f.extend(&all);
        assert_eq!(f.needed().ok(), Some(0));
        assert!(f.next_packet().expect("valid").is_some());
        assert!(f.next_packet().expect("valid").is_some());
        assert!(f.next_packet().expect("valid").is_none());
        assert_eq!(f.needed().ok(), Some(4));
    }

    #[test]
    fn frame_decoder_rejects_bad_length_early() {
        let mut f = FrameDecoder::new();
        f.extend(&[0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            f.next_packet(),
            Err(ProtoError::PacketTooLarge(_))
        ));
        let mut f = FrameDecoder::new();
        f.extend(&[0, 0, 0, 4]);
        assert!(matches!(f.needed(), Err(ProtoError::PacketTooSmall(4))));
        assert_eq!(check_frame(&[0, 0]).ok(), Some(Need::More(2)));
        assert_eq!(check_frame(&[0, 0, 0, 40]).ok(), Some(Need::More(36)));
    }

    #[test]
    fn parse_checks_declared_length() {
        let mut b = encode_packet(&Header::call(1, 1, 1, 1), &()).expect("encodes");
        b.push(0);
        assert!(matches!(
            Packet::parse(&b),
            Err(ProtoError::LengthMismatch {
                declared: 28,
                actual: 29
            })
        ));
        assert!(Packet::parse(&b[..3]).is_err());
    }
}
