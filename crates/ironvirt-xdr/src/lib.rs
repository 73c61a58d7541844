//! XDR (RFC 4506) encoding and decoding.
//!
//! [`Encoder`] appends big-endian, 4-byte aligned items to a `Vec<u8>`;
//! [`Decoder`] reads them back from a byte slice, keeping its position.
//! Types travel through the [`XdrEncode`] / [`XdrDecode`] traits, and the
//! ones whose XDR form has a declared maximum length (strings, variable
//! opaque data, variable arrays) also implement [`XdrBounded`], which takes
//! the maximum as an argument.
//!
//! | XDR                         | Rust                              |
//! |-----------------------------|-----------------------------------|
//! | `int` / `unsigned int`      | `i32` / `u32`                     |
//! | `hyper` / `unsigned hyper`  | `i64` / `u64`                     |
//! | `bool`                      | `bool` (only 0 and 1 are accepted)|
//! | `float` / `double`          | `f32` / `f64`                     |
//! | `char` / `unsigned char`    | `i8` / `u8` via [`Chars`], [`CharArray`] (each on 4 bytes) |
//! | `opaque x[N]`               | `[u8; N]`                         |
//! | `opaque x<N>`               | [`Opaque`] (with `XdrBounded`)    |
//! | `string x<N>`               | `String` (with `XdrBounded`)      |
//! | `T x[N]`                    | `[T; N]`                          |
//! | `T x<N>`                    | `Vec<T>` (with `XdrBounded`)      |
//! | `T *x`                      | `Option<T>`                       |
//! | `void`                      | `()`                              |
//! | `enum`, `struct`, `union`   | [`xdr_enum!`], [`xdr_struct!`], [`xdr_union!`] |
//!
//! # Hostile input
//!
//! Decoding never panics and never allocates from a length it has not
//! checked: every length is compared with its declared maximum and with the
//! bytes that remain in the input *before* anything is allocated. A variable
//! array of `n` elements is only accepted when `n * T::MIN_SIZE` bytes remain.
//!
//! # Strings
//!
//! libvirt's strings are C strings: bytes, usually but not always UTF-8.
//! Decoding a `String` replaces invalid UTF-8 sequences with U+FFFD
//! (`String::from_utf8_lossy`) instead of failing, so one stray byte in a
//! host name or an error message does not make a whole reply unreadable;
//! a caller that needs the exact bytes decodes an [`Opaque`] instead (the
//! wire form is the same). The length limit applies to the bytes on the wire.
//!
//! # Padding
//!
//! Padding is written as zeros; on input its value is not checked, as the
//! C XDR library that libvirt uses does not check it either.

use std::fmt;

/// What can go wrong while encoding or decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The input ended early: `needed` more bytes were wanted, only
    /// `remaining` were left.
    Truncated {
        /// Bytes wanted.
        needed: usize,
        /// Bytes left.
        remaining: usize,
    },
    /// A length is over its declared maximum.
    TooLong {
        /// The length found (or to be written).
        len: usize,
        /// The declared maximum.
        max: usize,
    },
    /// A `bool` other than 0 or 1.
    BadBool(u32),
    /// An enum value that the type does not define.
    BadEnum(i32),
    /// A union discriminant that the type does not define.
    BadDiscriminant(i32),
    /// Bytes left over after a complete value.
    TrailingBytes(usize),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { needed, remaining } => {
                write!(
                    f,
                    "XDR data truncated: {needed} bytes needed, {remaining} left"
                )
            }
            Error::TooLong { len, max } => write!(f, "XDR length {len} exceeds maximum {max}"),
            Error::BadBool(v) => write!(f, "invalid XDR bool {v}"),
            Error::BadEnum(v) => write!(f, "invalid XDR enum value {v}"),
            Error::BadDiscriminant(v) => write!(f, "invalid XDR union discriminant {v}"),
            Error::TrailingBytes(n) => write!(f, "{n} unexpected bytes after XDR data"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for XDR results.
pub type Result<T> = std::result::Result<T, Error>;

/// The padding that follows `len` bytes of opaque data.
pub const fn pad(len: usize) -> usize {
    (4 - (len % 4)) % 4
}

/// `len` rounded up to a multiple of 4.
pub const fn padded(len: usize) -> usize {
    len + pad(len)
}

/// Writes XDR items to a growable buffer.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Encoder { buf: Vec::new() }
    }

    /// An encoder that appends to `buf` (for example after a header).
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Encoder { buf }
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The buffer.
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    /// Mutable access to the buffer (to patch a length word, for example).
    pub fn buffer_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// `unsigned int`.
    pub fn put_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// `int`.
    pub fn put_i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// `unsigned hyper`.
    pub fn put_u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// `hyper`.
    pub fn put_i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// `bool`.
    pub fn put_bool(&mut self, v: bool) {
        self.put_u32(v as u32);
    }

    /// `float`.
    pub fn put_f32(&mut self, v: f32) {
        self.put_u32(v.to_bits());
    }

    /// `double`.
    pub fn put_f64(&mut self, v: f64) {
        self.put_u64(v.to_bits());
    }

    /// Fixed-length opaque data: the bytes and their padding.
    pub fn put_opaque_fixed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(&[0u8; 3][..pad(data.len())]);
    }

    /// Variable-length opaque data (also the form of a string): length,
    /// bytes, padding. Fails when `data` is longer than `max`.
    pub fn put_opaque(&mut self, data: &[u8], max: u32) -> Result<()> {
        let len = self.check_len(data.len(), max)?;
        self.put_u32(len);
        self.put_opaque_fixed(data);
        Ok(())
    }

    /// A string of at most `max` bytes.
    pub fn put_string(&mut self, s: &str, max: u32) -> Result<()> {
        self.put_opaque(s.as_bytes(), max)
    }

    /// The count word of a variable-length array, checked against `max`.
    pub fn put_count(&mut self, count: usize, max: u32) -> Result<()> {
        let n = self.check_len(count, max)?;
        self.put_u32(n);
        Ok(())
    }

    fn check_len(&self, len: usize, max: u32) -> Result<u32> {
        match u32::try_from(len) {
            Ok(n) if n <= max => Ok(n),
            _ => Err(Error::TooLong {
                len,
                max: max as usize,
            }),
        }
    }

    /// Encodes any [`XdrEncode`] value.
    pub fn put<T: XdrEncode + ?Sized>(&mut self, v: &T) -> Result<()> {
        v.encode(self)
    }
}

/// Reads XDR items from a byte slice.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes not yet consumed.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Fails with [`Error::TrailingBytes`] unless everything was consumed.
    pub fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(Error::TrailingBytes(n)),
        }
    }

    /// Fails unless `n` more bytes are available.
    pub fn need(&self, n: usize) -> Result<()> {
        if n > self.remaining() {
            Err(Error::Truncated {
                needed: n,
                remaining: self.remaining(),
            })
        } else {
            Ok(())
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        self.need(n)?;
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn take4(&mut self) -> Result<[u8; 4]> {
        let s = self.take(4)?;
        Ok([s[0], s[1], s[2], s[3]])
    }

    fn take8(&mut self) -> Result<[u8; 8]> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// `unsigned int`.
    pub fn get_u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take4()?))
    }

    /// `int`.
    pub fn get_i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.take4()?))
    }

    /// `unsigned hyper`.
    pub fn get_u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.take8()?))
    }

    /// `hyper`.
    pub fn get_i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.take8()?))
    }

    /// `bool`: 0 or 1, anything else is [`Error::BadBool`].
    pub fn get_bool(&mut self) -> Result<bool> {
        match self.get_u32()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(Error::BadBool(v)),
        }
    }

    /// `float`.
    pub fn get_f32(&mut self) -> Result<f32> {
        Ok(f32::from_bits(self.get_u32()?))
    }

    /// `double`.
    pub fn get_f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.get_u64()?))
    }

    /// Fixed-length opaque data of `len` bytes (padding skipped).
    pub fn get_opaque_fixed(&mut self, len: usize) -> Result<&'a [u8]> {
        let total = len.checked_add(pad(len)).ok_or(Error::TooLong {
            len,
            max: usize::MAX,
        })?;
        let s = self.take(total)?;
        Ok(&s[..len])
    }

    /// Variable-length opaque data of at most `max` bytes, borrowed from the input.
    pub fn get_opaque(&mut self, max: u32) -> Result<&'a [u8]> {
        let len = self.get_u32()?;
        if len > max {
            return Err(Error::TooLong {
                len: len as usize,
                max: max as usize,
            });
        }
        self.get_opaque_fixed(len as usize)
    }

    /// A string of at most `max` bytes; invalid UTF-8 is replaced (see the
    /// crate documentation).
    pub fn get_string(&mut self, max: u32) -> Result<String> {
        let b = self.get_opaque(max)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    /// The count word of a variable-length array whose elements take at
    /// least `min_size` bytes each: checked against `max` and against the
    /// bytes that remain.
    pub fn get_count(&mut self, max: u32, min_size: usize) -> Result<usize> {
        let n = self.get_u32()?;
        if n > max {
            return Err(Error::TooLong {
                len: n as usize,
                max: max as usize,
            });
        }
        let n = n as usize;
        let bytes = n.saturating_mul(min_size);
        self.need(bytes)?;
        Ok(n)
    }

    /// Decodes any [`XdrDecode`] value.
    pub fn get<T: XdrDecode>(&mut self) -> Result<T> {
        T::decode(self)
    }
}

/// A value with an XDR encoding.
pub trait XdrEncode {
    /// Appends the value to `enc`.
    fn encode(&self, enc: &mut Encoder) -> Result<()>;

    /// The value encoded on its own.
    fn to_xdr(&self) -> Result<Vec<u8>> {
        let mut e = Encoder::new();
        self.encode(&mut e)?;
        Ok(e.into_inner())
    }
}

/// A value that can be read from XDR.
pub trait XdrDecode: Sized {
    /// The fewest bytes any encoding of this type takes (used to reject
    /// array counts that the remaining input cannot hold).
    const MIN_SIZE: usize;

    /// Reads one value.
    fn decode(dec: &mut Decoder<'_>) -> Result<Self>;

    /// Decodes `buf`, which must hold exactly one value.
    fn from_xdr(buf: &[u8]) -> Result<Self> {
        let mut d = Decoder::new(buf);
        let v = Self::decode(&mut d)?;
        d.finish()?;
        Ok(v)
    }
}

/// A value whose XDR form carries a length with a declared maximum
/// (`string<N>`, `opaque<N>`, `T<N>`, and pointers to them).
pub trait XdrBounded: Sized {
    /// Appends the value; fails when it is longer than `max`.
    fn encode_max(&self, enc: &mut Encoder, max: u32) -> Result<()>;
    /// Reads a value of at most `max` elements.
    fn decode_max(dec: &mut Decoder<'_>, max: u32) -> Result<Self>;
}

macro_rules! prim {
    ($t:ty, $put:ident, $get:ident, $size:expr) => {
        impl XdrEncode for $t {
            fn encode(&self, enc: &mut Encoder) -> Result<()> {
                enc.$put(*self);
                Ok(())
            }
        }
        impl XdrDecode for $t {
            const MIN_SIZE: usize = $size;
            fn decode(dec: &mut Decoder<'_>) -> Result<Self> {
                dec.$get()
            }
        }
    };
}

prim!(u32, put_u32, get_u32, 4);
prim!(i32, put_i32, get_i32, 4);
prim!(u64, put_u64, get_u64, 8);
prim!(i64, put_i64, get_i64, 8);
prim!(bool, put_bool, get_bool, 4);
prim!(f32, put_f32, get_f32, 4);
prim!(f64, put_f64, get_f64, 8);

/// XDR `char`: a signed byte carried in a 4-byte int (sign-extended on
/// output; on input the low byte is kept, as the C library does).
impl XdrEncode for i8 {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        enc.put_i32(*self as i32);
        Ok(())
    }
}

impl XdrDecode for i8 {
    const MIN_SIZE: usize = 4;
    fn decode(dec: &mut Decoder<'_>) -> Result<Self> {
        Ok(dec.get_i32()? as i8)
    }
}

/// XDR `unsigned short`, carried in 4 bytes; values above 65535 are
/// truncated on input as the C library does.
impl XdrEncode for u16 {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        enc.put_u32(*self as u32);
        Ok(())
    }
}

impl XdrDecode for u16 {
    const MIN_SIZE: usize = 4;
    fn decode(dec: &mut Decoder<'_>) -> Result<Self> {
        Ok(dec.get_u32()? as u16)
    }
}

/// XDR `unsigned char`, carried in 4 bytes; the low byte is kept on input.
impl XdrEncode for u8 {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        enc.put_u32(*self as u32);
        Ok(())
    }
}

impl XdrDecode for u8 {
    const MIN_SIZE: usize = 4;
    fn decode(dec: &mut Decoder<'_>) -> Result<Self> {
        Ok(dec.get_u32()? as u8)
    }
}

/// `void`.
impl XdrEncode for () {
    fn encode(&self, _enc: &mut Encoder) -> Result<()> {
        Ok(())
    }
}

impl XdrDecode for () {
    const MIN_SIZE: usize = 0;
    fn decode(_dec: &mut Decoder<'_>) -> Result<Self> {
        Ok(())
    }
}

impl XdrEncode for str {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        enc.put_string(self, u32::MAX)
    }
}

impl XdrEncode for String {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        enc.put_string(self, u32::MAX)
    }
}

impl XdrDecode for String {
    const MIN_SIZE: usize = 4;
    fn decode(dec: &mut Decoder<'_>) -> Result<Self> {
        dec.get_string(u32::MAX)
    }
}

impl XdrBounded for String {
    fn encode_max(&self, enc: &mut Encoder, max: u32) -> Result<()> {
        enc.put_string(self, max)
    }
    fn decode_max(dec: &mut Decoder<'_>, max: u32) -> Result<Self> {
        dec.get_string(max)
    }
}

/// Variable-length opaque data (`opaque x<N>`): raw bytes.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Opaque(pub Vec<u8>);

impl fmt::Debug for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Opaque({} bytes)", self.0.len())
    }
}

impl XdrEncode for Opaque {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        enc.put_opaque(&self.0, u32::MAX)
    }
}

impl XdrDecode for Opaque {
    const MIN_SIZE: usize = 4;
    fn decode(dec: &mut Decoder<'_>) -> Result<Self> {
        Ok(Opaque(dec.get_opaque(u32::MAX)?.to_vec()))
    }
}

impl XdrBounded for Opaque {
    fn encode_max(&self, enc: &mut Encoder, max: u32) -> Result<()> {
        enc.put_opaque(&self.0, max)
    }
    fn decode_max(dec: &mut Decoder<'_>, max: u32) -> Result<Self> {
        Ok(Opaque(dec.get_opaque(max)?.to_vec()))
    }
}

/// Fixed-length opaque data (`opaque x[N]`).
impl<const N: usize> XdrEncode for [u8; N] {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        enc.put_opaque_fixed(self);
        Ok(())
    }
}

impl<const N: usize> XdrDecode for [u8; N] {
    const MIN_SIZE: usize = padded(N);
    fn decode(dec: &mut Decoder<'_>) -> Result<Self> {
        let s = dec.get_opaque_fixed(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
}

/// A variable-length array of XDR `char` (`char x<N>`): bytes, each
/// carried in a 4-byte int on the wire.
#[derive(Clone, PartialEq, Eq, Hash, Default, Debug)]
pub struct Chars(pub Vec<u8>);

impl Chars {
    /// The bytes up to the first NUL, as text (libvirt sends C strings
    /// with their terminating NUL in these arrays).
    pub fn to_string_lossy(&self) -> String {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        String::from_utf8_lossy(&self.0[..end]).into_owned()
    }

    /// `s` followed by a NUL, as libvirt fills these arrays.
    pub fn from_c_string(s: &str) -> Chars {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        Chars(v)
    }
}

impl XdrEncode for Chars {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        self.encode_max(enc, u32::MAX)
    }
}

impl XdrDecode for Chars {
    const MIN_SIZE: usize = 4;
    fn decode(dec: &mut Decoder<'_>) -> Result<Self> {
        Self::decode_max(dec, u32::MAX)
    }
}

impl XdrBounded for Chars {
    fn encode_max(&self, enc: &mut Encoder, max: u32) -> Result<()> {
        enc.put_count(self.0.len(), max)?;
        for &b in &self.0 {
            enc.put_i32(b as i8 as i32);
        }
        Ok(())
    }
    fn decode_max(dec: &mut Decoder<'_>, max: u32) -> Result<Self> {
        let n = dec.get_count(max, 4)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(dec.get_i32()? as u8);
        }
        Ok(Chars(v))
    }
}

/// A fixed-length array of XDR `char` (`char x[N]`), each byte carried in
/// a 4-byte int.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CharArray<const N: usize>(pub [u8; N]);

impl<const N: usize> Default for CharArray<N> {
    fn default() -> Self {
        CharArray([0u8; N])
    }
}

impl<const N: usize> CharArray<N> {
    /// The bytes up to the first NUL, as text.
    pub fn to_string_lossy(&self) -> String {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(N);
        String::from_utf8_lossy(&self.0[..end]).into_owned()
    }

    /// Copies at most `N - 1` bytes of `s` and NUL-fills the rest, as
    /// libvirt's `virStrcpyStatic` does (the last byte is always NUL).
    pub fn from_str_truncated(s: &str) -> Self {
        let mut a = [0u8; N];
        let n = s.len().min(N.saturating_sub(1));
        a[..n].copy_from_slice(&s.as_bytes()[..n]);
        CharArray(a)
    }
}

impl<const N: usize> XdrEncode for CharArray<N> {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        for &b in &self.0 {
            enc.put_i32(b as i8 as i32);
        }
        Ok(())
    }
}

impl<const N: usize> XdrDecode for CharArray<N> {
    const MIN_SIZE: usize = 4 * N;
    fn decode(dec: &mut Decoder<'_>) -> Result<Self> {
        dec.need(4 * N)?;
        let mut a = [0u8; N];
        for b in a.iter_mut() {
            *b = dec.get_i32()? as u8;
        }
        Ok(CharArray(a))
    }
}

/// A fixed-length array of `N` elements (`T x[N]`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FixedArray<T, const N: usize>(pub [T; N]);

impl<T: XdrEncode, const N: usize> XdrEncode for FixedArray<T, N> {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        self.0.iter().try_for_each(|v| v.encode(enc))
    }
}

impl<T: XdrDecode, const N: usize> XdrDecode for FixedArray<T, N> {
    const MIN_SIZE: usize = T::MIN_SIZE * N;
    fn decode(dec: &mut Decoder<'_>) -> Result<Self> {
        dec.need(T::MIN_SIZE.saturating_mul(N))?;
        let mut v = Vec::with_capacity(N);
        for _ in 0..N {
            v.push(T::decode(dec)?);
        }
        match v.try_into() {
            Ok(a) => Ok(FixedArray(a)),
            // Cannot happen: exactly N elements were pushed.
            Err(_) => Err(Error::Truncated {
                needed: N,
                remaining: 0,
            }),
        }
    }
}

/// Encodes a variable-length array of at most `max` elements.
pub fn encode_array<T: XdrEncode>(v: &[T], enc: &mut Encoder, max: u32) -> Result<()> {
    enc.put_count(v.len(), max)?;
    v.iter().try_for_each(|x| x.encode(enc))
}

/// Decodes a variable-length array of at most `max` elements; the count is
/// checked against `max` and the remaining input before anything is allocated.
pub fn decode_array<T: XdrDecode>(dec: &mut Decoder<'_>, max: u32) -> Result<Vec<T>> {
    let n = dec.get_count(max, T::MIN_SIZE)?;
    // Elements of size 0 could make any count "fit": grow as we go then.
    let mut v = Vec::with_capacity(if T::MIN_SIZE == 0 { 0 } else { n });
    for _ in 0..n {
        v.push(T::decode(dec)?);
    }
    Ok(v)
}

/// A variable-length array (`T x<N>`). Without a bound (plain `XdrEncode`)
/// the maximum is `u32::MAX`.
impl<T: XdrEncode> XdrEncode for Vec<T> {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        encode_array(self, enc, u32::MAX)
    }
}

impl<T: XdrDecode> XdrDecode for Vec<T> {
    const MIN_SIZE: usize = 4;
    fn decode(dec: &mut Decoder<'_>) -> Result<Self> {
        decode_array(dec, u32::MAX)
    }
}

impl<T: XdrEncode + XdrDecode> XdrBounded for Vec<T> {
    fn encode_max(&self, enc: &mut Encoder, max: u32) -> Result<()> {
        encode_array(self, enc, max)
    }
    fn decode_max(dec: &mut Decoder<'_>, max: u32) -> Result<Self> {
        decode_array(dec, max)
    }
}

/// An optional value (`T *x`): a bool, then the value when it is true.
impl<T: XdrEncode> XdrEncode for Option<T> {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        match self {
            None => {
                enc.put_bool(false);
                Ok(())
            }
            Some(v) => {
                enc.put_bool(true);
                v.encode(enc)
            }
        }
    }
}

impl<T: XdrDecode> XdrDecode for Option<T> {
    const MIN_SIZE: usize = 4;
    fn decode(dec: &mut Decoder<'_>) -> Result<Self> {
        if dec.get_bool()? {
            Ok(Some(T::decode(dec)?))
        } else {
            Ok(None)
        }
    }
}

impl<T: XdrBounded> XdrBounded for Option<T> {
    fn encode_max(&self, enc: &mut Encoder, max: u32) -> Result<()> {
        match self {
            None => {
                enc.put_bool(false);
                Ok(())
            }
            Some(v) => {
                enc.put_bool(true);
                v.encode_max(enc, max)
            }
        }
    }
    fn decode_max(dec: &mut Decoder<'_>, max: u32) -> Result<Self> {
        if dec.get_bool()? {
            Ok(Some(T::decode_max(dec, max)?))
        } else {
            Ok(None)
        }
    }
}

impl<T: XdrEncode + ?Sized> XdrEncode for &T {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        (**self).encode(enc)
    }
}

impl<T: XdrEncode + ?Sized> XdrEncode for Box<T> {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        (**self).encode(enc)
    }
}

impl<T: XdrDecode> XdrDecode for Box<T> {
    const MIN_SIZE: usize = T::MIN_SIZE;
    fn decode(dec: &mut Decoder<'_>) -> Result<Self> {
        Ok(Box::new(T::decode(dec)?))
    }
}

#[doc(hidden)]
pub mod __private {
    //! Helpers the macros expand to.
    use super::*;

    pub fn encode_field<T: XdrEncode>(v: &T, enc: &mut Encoder) -> Result<()> {
        v.encode(enc)
    }
    pub fn encode_field_max<T: XdrBounded>(v: &T, enc: &mut Encoder, max: u32) -> Result<()> {
        v.encode_max(enc, max)
    }
    pub fn decode_field<T: XdrDecode>(dec: &mut Decoder<'_>) -> Result<T> {
        T::decode(dec)
    }
    pub fn decode_field_max<T: XdrBounded>(dec: &mut Decoder<'_>, max: u32) -> Result<T> {
        T::decode_max(dec, max)
    }
    /// The smallest encoding of a bounded type is its length word (or the
    /// bool of an optional value).
    pub const fn min_size_bounded() -> usize {
        4
    }
}

/// Declares a struct with its XDR encoding: one line per field, in wire
/// order. A field whose type has a declared maximum (`string<N>`, `T<N>`,
/// `opaque<N>`, or a pointer to one) gives it in brackets after the type.
///
/// ```
/// use ironvirt_xdr::{xdr_struct, XdrDecode, XdrEncode};
/// xdr_struct! {
///     /// A named thing.
///     #[derive(Clone, Debug, PartialEq)]
///     pub struct Named {
///         pub name: String [64],
///         pub tags: Vec<u32> [8],
///         pub id: i32,
///     }
/// }
/// let n = Named { name: "a".into(), tags: vec![1], id: -1 };
/// assert_eq!(Named::from_xdr(&n.to_xdr().unwrap()).unwrap(), n);
/// ```
#[macro_export]
macro_rules! xdr_struct {
    (
        $(#[$m:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$fm:meta])*
                $fvis:vis $field:ident : $ty:ty $([$max:expr])?
            ),* $(,)?
        }
    ) => {
        $(#[$m])*
        $vis struct $name {
            $(
                $(#[$fm])*
                $fvis $field: $ty,
            )*
        }

        impl $crate::XdrEncode for $name {
            #[allow(unused_variables)]
            fn encode(&self, enc: &mut $crate::Encoder) -> $crate::Result<()> {
                $( $crate::xdr_struct!(@enc self.$field, enc $(, $max)?); )*
                Ok(())
            }
        }

        impl $crate::XdrDecode for $name {
            const MIN_SIZE: usize = 0 $( + $crate::xdr_struct!(@min $ty $(, $max)?) )*;
            #[allow(unused_variables)]
            fn decode(dec: &mut $crate::Decoder<'_>) -> $crate::Result<Self> {
                Ok($name {
                    $( $field: $crate::xdr_struct!(@dec dec $(, $max)?), )*
                })
            }
        }
    };
    (@enc $v:expr, $enc:ident) => { $crate::__private::encode_field(&$v, $enc)? };
    (@enc $v:expr, $enc:ident, $max:expr) => {
        $crate::__private::encode_field_max(&$v, $enc, ($max) as u32)?
    };
    (@dec $dec:ident) => { $crate::__private::decode_field($dec)? };
    (@dec $dec:ident, $max:expr) => { $crate::__private::decode_field_max($dec, ($max) as u32)? };
    (@min $ty:ty) => { <$ty as $crate::XdrDecode>::MIN_SIZE };
    (@min $ty:ty, $max:expr) => { $crate::__private::min_size_bounded() };
}

/// Declares a C-like enum carried as an XDR `int`; values the enum does
/// not define are rejected with [`Error::BadEnum`].
///
/// ```
/// use ironvirt_xdr::{xdr_enum, XdrDecode, XdrEncode};
/// xdr_enum! {
///     #[derive(Clone, Copy, Debug, PartialEq, Eq)]
///     pub enum Color { Red = 0, Green = 1 }
/// }
/// assert_eq!(Color::from_xdr(&[0, 0, 0, 1]).unwrap(), Color::Green);
/// assert!(Color::from_xdr(&[0, 0, 0, 7]).is_err());
/// ```
#[macro_export]
macro_rules! xdr_enum {
    (
        $(#[$m:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vm:meta])* $var:ident = $val:expr ),* $(,)?
        }
    ) => {
        $(#[$m])*
        $vis enum $name {
            $( $(#[$vm])* $var = $val, )*
        }

        impl $name {
            /// The variant for a wire value.
            pub fn from_i32(v: i32) -> Option<Self> {
                $( if v == $val { return Some($name::$var); } )*
                None
            }
        }

        impl $crate::XdrEncode for $name {
            fn encode(&self, enc: &mut $crate::Encoder) -> $crate::Result<()> {
                enc.put_i32(*self as i32);
                Ok(())
            }
        }

        impl $crate::XdrDecode for $name {
            const MIN_SIZE: usize = 4;
            fn decode(dec: &mut $crate::Decoder<'_>) -> $crate::Result<Self> {
                let v = dec.get_i32()?;
                $name::from_i32(v).ok_or($crate::Error::BadEnum(v))
            }
        }
    };
}

/// Declares a discriminated union switched on an `int`: each arm maps a
/// discriminant to a variant carrying one value (with an optional bound in
/// brackets) or nothing (`void`). Unknown discriminants are rejected with
/// [`Error::BadDiscriminant`].
///
/// ```
/// use ironvirt_xdr::{xdr_union, XdrDecode, XdrEncode};
/// xdr_union! {
///     #[derive(Clone, Debug, PartialEq)]
///     pub enum Value {
///         1 => Int(i32),
///         2 => Text(String [16]),
///         3 => Nothing,
///     }
/// }
/// let v = Value::Text("hi".into());
/// assert_eq!(Value::from_xdr(&v.to_xdr().unwrap()).unwrap(), v);
/// ```
#[macro_export]
macro_rules! xdr_union {
    (
        $(#[$m:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vm:meta])* $disc:literal => $var:ident $(( $ty:ty $([$max:expr])? ))? ),* $(,)?
        }
    ) => {
        $(#[$m])*
        $vis enum $name {
            $( $(#[$vm])* $var $(($ty))?, )*
        }

        impl $name {
            /// The discriminant of this value.
            pub fn discriminant(&self) -> i32 {
                match self {
                    $( $crate::xdr_union!(@pat $name $var $($ty)?) => $disc, )*
                }
            }
        }

        impl $crate::XdrEncode for $name {
            fn encode(&self, enc: &mut $crate::Encoder) -> $crate::Result<()> {
                enc.put_i32(self.discriminant());
                match self {
                    $( $crate::xdr_union!(@bind $name $var v $($ty)?) => {
                        $( $crate::xdr_struct!(@enc *v, enc $(, $max)?); let _: Option<&$ty> = None; )?
                    } )*
                }
                Ok(())
            }
        }

        impl $crate::XdrDecode for $name {
            const MIN_SIZE: usize = 4;
            fn decode(dec: &mut $crate::Decoder<'_>) -> $crate::Result<Self> {
                let d = dec.get_i32()?;
                $(
                    if d == $disc {
                        return Ok($name::$var $(( { let v: $ty = $crate::xdr_struct!(@dec dec $(, $max)?); v } ))?);
                    }
                )*
                Err($crate::Error::BadDiscriminant(d))
            }
        }
    };
    (@pat $name:ident $var:ident) => { $name::$var };
    (@pat $name:ident $var:ident $ty:ty) => { $name::$var(_) };
    (@bind $name:ident $var:ident $v:ident) => { $name::$var };
    (@bind $name:ident $var:ident $v:ident $ty:ty) => { $name::$var($v) };
}

#[cfg(test)]
mod tests;
