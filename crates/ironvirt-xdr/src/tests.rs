use super::*;

fn enc<T: XdrEncode + ?Sized>(v: &T) -> Vec<u8> {
    v.to_xdr().expect("encodes")
}

fn round<T: XdrEncode + XdrDecode + PartialEq + fmt::Debug>(v: T, bytes: &[u8]) {
    assert_eq!(enc(&v), bytes, "encoding of {v:?}");
    assert_eq!(T::from_xdr(bytes).expect("decodes"), v);
}

#[test]
fn integers() {
    round(0u32, &[0, 0, 0, 0]);
    round(u32::MAX, &[0xff; 4]);
    round(0x0102_0304u32, &[1, 2, 3, 4]);
    round(-1i32, &[0xff; 4]);
    round(i32::MIN, &[0x80, 0, 0, 0]);
    round(i32::MAX, &[0x7f, 0xff, 0xff, 0xff]);
    round(u64::MAX, &[0xff; 8]);
    round(0x0102_0304_0506_0708u64, &[1, 2, 3, 4, 5, 6, 7, 8]);
    round(i64::MIN, &[0x80, 0, 0, 0, 0, 0, 0, 0]);
    round(-2i64, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
}

#[test]
fn truncated_integers() {
    assert_eq!(
        u32::from_xdr(&[1, 2, 3]),
        Err(Error::Truncated {
            needed: 4,
            remaining: 3
        })
    );
    assert_eq!(
        u64::from_xdr(&[1, 2, 3, 4, 5, 6, 7]),
        Err(Error::Truncated {
            needed: 8,
            remaining: 7
        })
    );
    assert_eq!(
        i32::from_xdr(&[]),
        Err(Error::Truncated {
            needed: 4,
            remaining: 0
        })
    );
    assert_eq!(
        u32::from_xdr(&[0, 0, 0, 0, 0]),
        Err(Error::TrailingBytes(1))
    );
}

#[test]
fn booleans() {
    round(true, &[0, 0, 0, 1]);
    round(false, &[0, 0, 0, 0]);
    assert_eq!(bool::from_xdr(&[0, 0, 0, 2]), Err(Error::BadBool(2)));
    assert_eq!(
        bool::from_xdr(&[0xff, 0, 0, 1]),
        Err(Error::BadBool(0xff00_0001))
    );
}

#[test]
fn floats() {
    round(1.5f32, &[0x3f, 0xc0, 0, 0]);
    round(-2.0f64, &[0xc0, 0, 0, 0, 0, 0, 0, 0]);
    let nan = f64::from_xdr(&[0x7f, 0xf8, 0, 0, 0, 0, 0, 0]).expect("decodes");
    assert!(nan.is_nan());
    assert_eq!(enc(&f64::INFINITY), [0x7f, 0xf0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn small_integers_take_four_bytes() {
    round(-1i8, &[0xff, 0xff, 0xff, 0xff]);
    round(0x7fi8, &[0, 0, 0, 0x7f]);
    round(200u8, &[0, 0, 0, 200]);
    round(65535u16, &[0, 0, 0xff, 0xff]);
    // The C library keeps the low byte of an out-of-range char.
    assert_eq!(u8::from_xdr(&[0, 0, 1, 5]), Ok(5));
}

#[test]
fn strings_and_padding() {
    round(String::new(), &[0, 0, 0, 0]);
    round("a".to_string(), &[0, 0, 0, 1, b'a', 0, 0, 0]);
    round("abcd".to_string(), &[0, 0, 0, 4, b'a', b'b', b'c', b'd']);
    round(
        "abcde".to_string(),
        &[0, 0, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0, 0],
    );
    // Non-zero padding is tolerated, like the C library does.
    assert_eq!(
        String::from_xdr(&[0, 0, 0, 1, b'x', 9, 9, 9]).expect("decodes"),
        "x"
    );
    // Missing padding is truncation.
    assert_eq!(
        String::from_xdr(&[0, 0, 0, 1, b'x']),
        Err(Error::Truncated {
            needed: 4,
            remaining: 1
        })
    );
}

#[test]
fn string_limits() {
    let mut e = Encoder::new();
    assert_eq!(
        e.put_string("abcde", 4),
        Err(Error::TooLong { len: 5, max: 4 })
    );
    e.put_string("abcd", 4).expect("fits");
    let mut d = Decoder::new(e.as_slice());
    assert_eq!(d.get_string(3), Err(Error::TooLong { len: 4, max: 3 }));
    let mut d = Decoder::new(e.as_slice());
    assert_eq!(d.get_string(4).expect("fits"), "abcd");
}

#[test]
fn hostile_string_length_is_rejected_before_allocation() {
    // A length of 4 GiB - 1 with nothing behind it.
    let b = [0xff, 0xff, 0xff, 0xff];
    assert_eq!(
        String::from_xdr(&b),
        Err(Error::Truncated {
            needed: 0x1_0000_0000,
            remaining: 0
        })
    );
    let mut d = Decoder::new(&b);
    assert_eq!(
        d.get_string(1024),
        Err(Error::TooLong {
            len: 0xffff_ffff,
            max: 1024
        })
    );
}

#[test]
fn invalid_utf8_is_replaced() {
    let s = String::from_xdr(&[0, 0, 0, 2, 0xc3, 0x28, 0, 0]).expect("decodes");
    assert_eq!(s, "\u{fffd}(");
    // The raw bytes stay available through Opaque.
    assert_eq!(
        Opaque::from_xdr(&[0, 0, 0, 2, 0xc3, 0x28, 0, 0])
            .expect("decodes")
            .0,
        [0xc3, 0x28]
    );
}

#[test]
fn opaque() {
    round([1u8, 2, 3], &[1, 2, 3, 0]);
    round([0u8; 16], &[0u8; 16]);
    round([7u8; 0], &[]);
    round(
        Opaque(vec![9, 8, 7, 6, 5]),
        &[0, 0, 0, 5, 9, 8, 7, 6, 5, 0, 0, 0],
    );
    assert_eq!(
        <[u8; 16]>::from_xdr(&[0u8; 15]),
        Err(Error::Truncated {
            needed: 16,
            remaining: 15
        })
    );
    let mut e = Encoder::new();
    assert_eq!(
        Opaque(vec![1, 2]).encode_max(&mut e, 1),
        Err(Error::TooLong { len: 2, max: 1 })
    );
}

#[test]
fn char_arrays() {
    let c = CharArray::<4>::from_str_truncated("abcdef");
    assert_eq!(c.0, [b'a', b'b', b'c', 0]);
    assert_eq!(c.to_string_lossy(), "abc");
    round(
        c,
        &[0, 0, 0, b'a', 0, 0, 0, b'b', 0, 0, 0, b'c', 0, 0, 0, 0],
    );
    // char is signed: high bytes are sign-extended.
    assert_eq!(enc(&CharArray([0xc3u8])), [0xff, 0xff, 0xff, 0xc3]);
    assert_eq!(
        CharArray::<1>::from_xdr(&[0xff, 0xff, 0xff, 0xc3])
            .expect("decodes")
            .0,
        [0xc3]
    );
    let v = Chars::from_c_string("ab");
    round(
        v.clone(),
        &[0, 0, 0, 3, 0, 0, 0, b'a', 0, 0, 0, b'b', 0, 0, 0, 0],
    );
    assert_eq!(v.to_string_lossy(), "ab");
    let mut d = Decoder::new(&[0, 0, 0, 3, 0, 0, 0, 1]);
    assert_eq!(
        Chars::decode_max(&mut d, 2),
        Err(Error::TooLong { len: 3, max: 2 })
    );
    let mut d = Decoder::new(&[0, 0, 0, 3, 0, 0, 0, 1]);
    assert_eq!(
        Chars::decode_max(&mut d, 3),
        Err(Error::Truncated {
            needed: 12,
            remaining: 4
        })
    );
}

#[test]
fn arrays() {
    round(Vec::<u32>::new(), &[0, 0, 0, 0]);
    round(vec![1u32, 2], &[0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
    round(
        vec!["a".to_string()],
        &[0, 0, 0, 1, 0, 0, 0, 1, b'a', 0, 0, 0],
    );
    round(
        FixedArray([1i32, -1]),
        &[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff],
    );
    let mut e = Encoder::new();
    assert_eq!(
        vec![1u32, 2, 3].encode_max(&mut e, 2),
        Err(Error::TooLong { len: 3, max: 2 })
    );
    let b = enc(&vec![1u32, 2, 3]);
    let mut d = Decoder::new(&b);
    assert_eq!(
        Vec::<u32>::decode_max(&mut d, 2),
        Err(Error::TooLong { len: 3, max: 2 })
    );
}

#[test]
fn hostile_array_counts_are_rejected_before_allocation() {
    // 2^32-1 hypers announced, none present.
    let b = [0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        Vec::<u64>::from_xdr(&b),
        Err(Error::Truncated { .. })
    ));
    // A count that fits the maximum but not the input.
    let mut d = Decoder::new(&[0, 0, 0x40, 0, 0, 0, 0, 0]);
    assert_eq!(
        Vec::<u64>::decode_max(&mut d, 16384),
        Err(Error::Truncated {
            needed: 131072,
            remaining: 4
        })
    );
    // Nested: one string announced per 4 bytes is the least the input must hold.
    let mut d = Decoder::new(&[0, 0, 0, 3, 0, 0, 0, 0]);
    assert!(matches!(
        Vec::<String>::decode_max(&mut d, 100),
        Err(Error::Truncated { .. })
    ));
    // Fixed arrays of large elements check the room first too.
    assert!(matches!(
        FixedArray::<u64, 1000>::from_xdr(&[0; 8]),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(
        CharArray::<32>::from_xdr(&[0; 8]),
        Err(Error::Truncated { .. })
    ));
}

#[test]
fn optional_values() {
    round(None::<u32>, &[0, 0, 0, 0]);
    round(Some(5u32), &[0, 0, 0, 1, 0, 0, 0, 5]);
    round(
        Some("x".to_string()),
        &[0, 0, 0, 1, 0, 0, 0, 1, b'x', 0, 0, 0],
    );
    assert_eq!(
        Option::<u32>::from_xdr(&[0, 0, 0, 2, 0, 0, 0, 5]),
        Err(Error::BadBool(2))
    );
    assert!(matches!(
        Option::<u32>::from_xdr(&[0, 0, 0, 1]),
        Err(Error::Truncated { .. })
    ));
    let mut d = Decoder::new(&[0, 0, 0, 1, 0, 0, 0, 3, b'a', b'b', b'c', 0]);
    assert_eq!(
        Option::<String>::decode_max(&mut d, 2),
        Err(Error::TooLong { len: 3, max: 2 })
    );
    let mut e = Encoder::new();
    assert!(Some("abc".to_string()).encode_max(&mut e, 2).is_err());
    // A failed encoding leaves partial output; callers discard the buffer.
    let mut e = Encoder::new();
    None::<String>
        .encode_max(&mut e, 2)
        .expect("a missing value always fits");
    assert_eq!(e.as_slice(), [0, 0, 0, 0]);
}

xdr_struct! {
    #[derive(Clone, Debug, PartialEq)]
    struct Sample {
        name: String [8],
        uuid: [u8; 4],
        ids: Vec<i32> [2],
        opt: Option<String> [3],
        big: u64,
    }
}

xdr_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Kind { A = 0, B = 2, C = -1 }
}

xdr_union! {
    #[derive(Clone, Debug, PartialEq)]
    enum Value {
        1 => Int(i32),
        2 => Text(String [4]),
        3 => Void,
        4 => Many(Vec<u32> [2]),
    }
}

#[test]
fn structs() {
    let s = Sample {
        name: "ab".into(),
        uuid: [1, 2, 3, 4],
        ids: vec![7],
        opt: None,
        big: 1 << 40,
    };
    let b = enc(&s);
    assert_eq!(
        b,
        [
            0, 0, 0, 2, b'a', b'b', 0, 0, // name
            1, 2, 3, 4, // uuid
            0, 0, 0, 1, 0, 0, 0, 7, // ids
            0, 0, 0, 0, // opt
            0, 0, 1, 0, 0, 0, 0, 0, // big
        ]
    );
    assert_eq!(Sample::from_xdr(&b).expect("decodes"), s);
    assert_eq!(Sample::MIN_SIZE, 4 + 4 + 4 + 4 + 8);
    // Each truncation point fails cleanly.
    for n in 0..b.len() {
        assert!(Sample::from_xdr(&b[..n]).is_err(), "prefix of {n} bytes");
    }
    let mut long = s.clone();
    long.name = "123456789".into();
    assert_eq!(long.to_xdr(), Err(Error::TooLong { len: 9, max: 8 }));
    long.name = "ok".into();
    long.opt = Some("four".into());
    assert_eq!(long.to_xdr(), Err(Error::TooLong { len: 4, max: 3 }));
}

#[test]
fn enums() {
    round(Kind::B, &[0, 0, 0, 2]);
    round(Kind::C, &[0xff; 4]);
    assert_eq!(Kind::from_xdr(&[0, 0, 0, 1]), Err(Error::BadEnum(1)));
}

#[test]
fn unions() {
    round(Value::Int(-2), &[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe]);
    round(
        Value::Text("hi".into()),
        &[0, 0, 0, 2, 0, 0, 0, 2, b'h', b'i', 0, 0],
    );
    round(Value::Void, &[0, 0, 0, 3]);
    round(Value::Many(vec![1]), &[0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 1]);
    assert_eq!(Value::Void.discriminant(), 3);
    assert_eq!(
        Value::from_xdr(&[0, 0, 0, 9]),
        Err(Error::BadDiscriminant(9))
    );
    assert_eq!(
        Value::from_xdr(&[0, 0, 0, 2, 0, 0, 0, 5, 1, 2, 3, 4, 5, 0, 0, 0]),
        Err(Error::TooLong { len: 5, max: 4 })
    );
    assert_eq!(
        Value::Text("hello".into()).to_xdr(),
        Err(Error::TooLong { len: 5, max: 4 })
    );
}

#[test]
fn decoder_position() {
    let b = [0, 0, 0, 1, 0, 0, 0, 2, 0xaa];
    let mut d = Decoder::new(&b);
    assert_eq!(d.get_u32(), Ok(1));
    assert_eq!(d.position(), 4);
    assert_eq!(d.remaining(), 5);
    assert_eq!(d.get::<u32>(), Ok(2));
    assert_eq!(d.rest(), [0xaa]);
    assert_eq!(d.finish(), Err(Error::TrailingBytes(1)));
}

/// A small deterministic generator (xorshift) so the test is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[test]
fn random_input_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let s = Sample {
        name: "abc".into(),
        uuid: [9; 4],
        ids: vec![1, 2],
        opt: Some("x".into()),
        big: 3,
    };
    let good = enc(&s);
    for i in 0..20_000 {
        let mut buf = if i % 2 == 0 {
            let n = (rng.next() % 64) as usize;
            (0..n).map(|_| rng.next() as u8).collect::<Vec<_>>()
        } else {
            good.clone()
        };
        let flips = 1 + rng.next() % 4;
        for _ in 0..flips {
            if buf.is_empty() {
                break;
            }
            let at = (rng.next() as usize) % buf.len();
            buf[at] = rng.next() as u8;
        }
        let _ = Sample::from_xdr(&buf);
        let _ = Value::from_xdr(&buf);
        let _ = Vec::<String>::from_xdr(&buf);
        let _ = Chars::from_xdr(&buf);
        if let Ok(v) = Sample::from_xdr(&buf) {
            // Whatever decodes re-encodes to the same bytes (modulo padding
            // and lossy UTF-8, which the random flips may produce).
            let replaced = v.name.contains('\u{fffd}')
                || v.opt.as_deref().is_some_and(|o| o.contains('\u{fffd}'));
            if !replaced {
                assert_eq!(v.to_xdr().map(|b| b.len()), Ok(buf.len()));
            }
        }
    }
}
