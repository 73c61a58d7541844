//! The raw protocol: the read-only socket over the whole procedure table,
//! libvirtd's answers to malformed and unexpected traffic (compared
//! byte for byte with the reference daemon), and hostile input that must
//! never take the daemon down.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ironvirt_driver::ErrorNumber;
use ironvirt_proto::procedures::{self, num, Access, Kind, REMOTE_PROC_MAX};
use ironvirt_proto::program::{KEEPALIVE_PROGRAM, REMOTE_PROGRAM};
use ironvirt_proto::remote::{DomainFlagsArgs, DomainLookupByNameArgs};
use ironvirt_proto::types::NonnullDomain;
use ironvirt_xdr::XdrEncode;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

fn test_dom() -> NonnullDomain {
    // test:///default's domain.
    let u = ironvirt_driver::Uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193f").unwrap();
    NonnullDomain {
        name: "test".into(),
        uuid: u.0,
        id: 1,
    }
}

/// Every procedure number of the remote program, with an empty payload, on
/// the read-only socket after CONNECT_OPEN: each one that always changes
/// state is refused with libvirt's exact error, no other one is.
#[test]
fn read_only_socket_over_the_whole_table() {
    let d = Daemon::start();
    let mut c = Raw::connect(&d.ro());
    assert!(c.open("test:///default").ok());
    let mut denied = 0;
    for n in 1..=REMOTE_PROC_MAX {
        let p = procedures::lookup(n).expect("no gaps in 9.0's table");
        let r = match c.try_call(n, &[]) {
            Some(r) => r,
            None => panic!("no reply to {}: {}", p.name, d.log()),
        };
        let err = r.error();
        match (p.kind, p.access) {
            (Kind::Event, _) => {
                let e = err.expect("event procedures are not calls");
                assert_eq!(
                    e.message.as_deref(),
                    Some(format!("unknown procedure: {n}").as_str())
                );
            }
            (_, Access::Write) => {
                let e = err.unwrap_or_else(|| panic!("{} allowed on the read-only socket", p.name));
                assert_eq!(e.code, ErrorNumber::OPERATION_DENIED.0, "{}", p.name);
                assert_eq!(e.domain, p.error_domain.0, "{}", p.name);
                assert_eq!(
                    e.message.as_deref(),
                    Some(
                        format!("operation forbidden: read only access prevents {}", p.api)
                            .as_str()
                    )
                );
                denied += 1;
            }
            _ => {
                if let Some(e) = err {
                    assert_ne!(
                        e.code,
                        ErrorNumber::OPERATION_DENIED.0,
                        "{} refused: {:?}",
                        p.name,
                        e.message
                    );
                }
            }
        }
        if n == num::CONNECT_OPEN || n == num::CONNECT_CLOSE {
            // A second open drops the first (as libvirtd does), a close
            // closes: start again.
            c = Raw::connect(&d.ro());
            assert!(c.open("test:///default").ok());
        }
    }
    let writes = procedures::PROCEDURES
        .iter()
        .filter(|p| p.access == Access::Write)
        .count();
    assert_eq!(denied, writes);
    assert!(denied > 150, "{denied}");
    // Flags-dependent refusal: dumpxml with the secure flag.
    let args = DomainFlagsArgs {
        dom: test_dom(),
        flags: 1,
    }
    .to_xdr()
    .unwrap();
    let e = c
        .call(num::DOMAIN_GET_XML_DESC, &args)
        .error()
        .expect("refused");
    assert_eq!(
        e.message.as_deref(),
        Some("operation forbidden: virDomainGetXMLDesc with secure flag")
    );
    let args = DomainFlagsArgs {
        dom: test_dom(),
        flags: 0,
    }
    .to_xdr()
    .unwrap();
    assert!(c.call(num::DOMAIN_GET_XML_DESC, &args).ok());
    // Nothing was changed: the domain still runs.
    let r = c.call(
        num::DOMAIN_GET_STATE,
        &DomainFlagsArgs {
            dom: test_dom(),
            flags: 0,
        }
        .to_xdr()
        .unwrap(),
    );
    assert_eq!(&r.payload[..4], &[0, 0, 0, 1]);
    assert_serving(&d);
}

/// A script of raw packets, replayed on ours and on the reference; the
/// replies must be identical byte for byte.
fn probes(path: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut c = Raw::connect(path);
    let mut log = |what: &str, r: Option<Reply>| out.push(format!("{what}: {r:?}"));
    log("type before open", c.try_call(num::CONNECT_GET_TYPE, &[]));
    log("auth list before open", c.try_call(num::AUTH_LIST, &[]));
    log(
        "keepalive feature before open",
        c.try_call(num::CONNECT_SUPPORTS_FEATURE, &[0, 0, 0, 10]),
    );
    log(
        "other feature before open",
        c.try_call(num::CONNECT_SUPPORTS_FEATURE, &[0, 0, 0, 14]),
    );
    log("unknown procedure", c.try_call(9999, &[]));
    log("procedure 0", c.try_call(0, &[]));
    log("procedure -1", c.try_call(-1, &[]));
    log(
        "procedure past the table",
        c.try_call(REMOTE_PROC_MAX + 1, &[]),
    );
    log(
        "event number as call",
        c.try_call(num::DOMAIN_EVENT_LIFECYCLE, &[]),
    );
    c.send(0x1234, 1, 1, 0, 0, &[]);
    log("unknown program", c.recv());
    c.send(REMOTE_PROGRAM, 2, 1, 0, 0, &[]);
    log("unknown version", c.recv());
    c.send(KEEPALIVE_PROGRAM, 1, 1, 2, 0, &[]);
    log("ping", c.recv());
    c.send(KEEPALIVE_PROGRAM, 1, 1, 0, 0, &[]);
    log("keepalive as call", c.recv());
    c.send(REMOTE_PROGRAM, 1, 66, 0, 1, &[]);
    log("status error", c.recv());
    // Messages that are not calls are dropped without an answer.
    c.send(REMOTE_PROGRAM, 1, 3, 1, 0, &[]);
    c.send(REMOTE_PROGRAM, 1, 3, 2, 0, &[]);
    c.send(REMOTE_PROGRAM, 1, 3, 3, 0, &[]);
    c.send(KEEPALIVE_PROGRAM, 1, 7, 2, 0, &[]);
    log("after dropped messages", c.try_call(num::AUTH_LIST, &[]));
    let open = |uri: Option<&str>| {
        ironvirt_proto::remote::ConnectOpenArgs {
            name: uri.map(String::from),
            flags: 0,
        }
        .to_xdr()
        .unwrap()
    };
    for uri in [
        Some("foo:///x"),
        Some("bogus"),
        Some("test+unix:///default"),
        Some("::"),
        Some("TEST:///default"),
        Some("test:///"),
        None,
    ] {
        log(
            &format!("open {uri:?}"),
            c.try_call(num::CONNECT_OPEN, &open(uri)),
        );
    }
    log(
        "garbage open",
        c.try_call(num::CONNECT_OPEN, &[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]),
    );
    log(
        "open",
        c.try_call(num::CONNECT_OPEN, &open(Some("test:///default"))),
    );
    log("type", c.try_call(num::CONNECT_GET_TYPE, &[]));
    log("uri", c.try_call(num::CONNECT_GET_URI, &[]));
    log("secure", c.try_call(num::CONNECT_IS_SECURE, &[]));
    log("lib version", c.try_call(num::CONNECT_GET_LIB_VERSION, &[]));
    log("version", c.try_call(num::CONNECT_GET_VERSION, &[]));
    // ironvirtd answers truthfully where it differs from libvirt's test
    // driver: no descriptor passing (8), no networks (16).
    for f in (-1i32..20).filter(|f| *f != 8 && *f != 16) {
        log(
            &format!("feature {f}"),
            c.try_call(num::CONNECT_SUPPORTS_FEATURE, &f.to_be_bytes()),
        );
    }
    let lookup = DomainLookupByNameArgs {
        name: "test".into(),
    }
    .to_xdr()
    .unwrap();
    log("lookup", c.try_call(num::DOMAIN_LOOKUP_BY_NAME, &lookup));
    let mut trailing = lookup.clone();
    trailing.extend_from_slice(&[0, 0, 0, 0]);
    log(
        "lookup with trailing bytes",
        c.try_call(num::DOMAIN_LOOKUP_BY_NAME, &trailing),
    );
    log(
        "lookup garbage",
        c.try_call(num::DOMAIN_LOOKUP_BY_NAME, &[0xff, 0xff, 0xff, 0xff]),
    );
    log("lookup empty", c.try_call(num::DOMAIN_LOOKUP_BY_NAME, &[]));
    log(
        "lookup missing",
        c.try_call(
            num::DOMAIN_LOOKUP_BY_NAME,
            &DomainLookupByNameArgs {
                name: "nope-x".into(),
            }
            .to_xdr()
            .unwrap(),
        ),
    );
    // (without the CPU time, a clock)
    let info = c.try_call(
        num::DOMAIN_GET_INFO,
        &NonnullDomain::to_xdr(&test_dom()).unwrap(),
    );
    log(
        "info",
        info.map(|mut r| {
            r.payload.truncate(24);
            r
        }),
    );
    log(
        "state",
        c.try_call(
            num::DOMAIN_GET_STATE,
            &DomainFlagsArgs {
                dom: test_dom(),
                flags: 0,
            }
            .to_xdr()
            .unwrap(),
        ),
    );
    log(
        "list all",
        c.try_call(num::CONNECT_LIST_ALL_DOMAINS, &[0, 0, 0, 1, 0, 0, 0, 0]),
    );
    log(
        "list all count only",
        c.try_call(num::CONNECT_LIST_ALL_DOMAINS, &[0, 0, 0, 0, 0, 0, 0, 0]),
    );
    log(
        "list ids",
        c.try_call(num::CONNECT_LIST_DOMAINS, &[0, 0, 0, 10]),
    );
    log(
        "list ids over max",
        c.try_call(num::CONNECT_LIST_DOMAINS, &[0, 0, 0x40, 1]),
    );
    log(
        "num of domains",
        c.try_call(num::CONNECT_NUM_OF_DOMAINS, &[]),
    );
    log("node info", c.try_call(num::NODE_GET_INFO, &[]));
    log(
        "security model",
        c.try_call(num::NODE_GET_SECURITY_MODEL, &[]),
    );
    log(
        "label",
        c.try_call(
            num::DOMAIN_GET_SECURITY_LABEL,
            &NonnullDomain::to_xdr(&test_dom()).unwrap(),
        ),
    );
    // (a valid payload: libvirtd decodes arguments ironvirtd has no struct for)
    let mut attach = NonnullDomain::to_xdr(&test_dom()).unwrap();
    attach.extend(String::from("<disk/>").to_xdr().unwrap());
    log(
        "not supported",
        c.try_call(num::DOMAIN_ATTACH_DEVICE, &attach),
    );
    log(
        "secrets not supported",
        c.try_call(num::CONNECT_NUM_OF_SECRETS, &[]),
    );
    // Event registrations.
    let reg = |ev: i32| {
        let mut v = ev.to_be_bytes().to_vec();
        v.extend_from_slice(&[0, 0, 0, 0]);
        v
    };
    log(
        "register",
        c.try_call(num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, &reg(0))
            .map(|r| Reply {
                payload: vec![],
                ..r
            }),
    );
    log(
        "register twice",
        c.try_call(num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, &reg(0)),
    );
    log(
        "register bad id",
        c.try_call(num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, &reg(27)),
    );
    log(
        "register -1",
        c.try_call(num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, &reg(-1)),
    );
    log(
        "deregister unknown",
        c.try_call(
            num::CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
            &99999i32.to_be_bytes(),
        ),
    );
    log(
        "legacy register",
        c.try_call(num::CONNECT_DOMAIN_EVENT_REGISTER_ANY, &0i32.to_be_bytes()),
    );
    log(
        "legacy register twice",
        c.try_call(num::CONNECT_DOMAIN_EVENT_REGISTER_ANY, &0i32.to_be_bytes()),
    );
    log(
        "legacy deregister",
        c.try_call(
            num::CONNECT_DOMAIN_EVENT_DEREGISTER_ANY,
            &0i32.to_be_bytes(),
        ),
    );
    log(
        "legacy deregister again",
        c.try_call(
            num::CONNECT_DOMAIN_EVENT_DEREGISTER_ANY,
            &0i32.to_be_bytes(),
        ),
    );
    log(
        "oldest register",
        c.try_call(num::CONNECT_DOMAIN_EVENT_REGISTER, &[]),
    );
    log(
        "oldest deregister",
        c.try_call(num::CONNECT_DOMAIN_EVENT_DEREGISTER, &[]),
    );
    log(
        "oldest deregister again",
        c.try_call(num::CONNECT_DOMAIN_EVENT_DEREGISTER, &[]),
    );
    log(
        "close callback",
        c.try_call(num::CONNECT_REGISTER_CLOSE_CALLBACK, &[]),
    );
    log(
        "close callback again",
        c.try_call(num::CONNECT_REGISTER_CLOSE_CALLBACK, &[]),
    );
    log(
        "unregister close callback",
        c.try_call(num::CONNECT_UNREGISTER_CLOSE_CALLBACK, &[]),
    );
    log("sasl init", c.try_call(num::AUTH_SASL_INIT, &[]));
    log(
        "open again",
        c.try_call(num::CONNECT_OPEN, &open(Some("test:///default"))),
    );
    log(
        "type after second open",
        c.try_call(num::CONNECT_GET_TYPE, &[]),
    );
    log("close", c.try_call(num::CONNECT_CLOSE, &[]));
    log("after close", c.try_call(num::AUTH_LIST, &[]));
    // Registrations of both styles share one list per connection.
    let cbreg = |ev: i32, dom: bool| {
        let mut v = ev.to_be_bytes().to_vec();
        if dom {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend(NonnullDomain::to_xdr(&test_dom()).unwrap());
        } else {
            v.extend_from_slice(&[0, 0, 0, 0]);
        }
        v
    };
    let strip = |r: Option<Reply>| {
        r.map(|r| {
            if r.ok() {
                Reply {
                    payload: vec![],
                    ..r
                }
            } else {
                r
            }
        })
    };
    let mut c = Raw::connect(path);
    c.try_call(num::CONNECT_OPEN, &open(Some("test:///default")));
    out.push(format!(
        "m1 {:?}",
        strip(c.try_call(num::CONNECT_DOMAIN_EVENT_REGISTER_ANY, &0i32.to_be_bytes()))
    ));
    out.push(format!(
        "m2 {:?}",
        strip(c.try_call(
            num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
            &cbreg(0, false)
        ))
    ));
    out.push(format!(
        "m3 {:?}",
        strip(c.try_call(
            num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
            &cbreg(0, true)
        ))
    ));
    out.push(format!(
        "m4 {:?}",
        strip(c.try_call(
            num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
            &cbreg(0, true)
        ))
    ));
    out.push(format!(
        "m5 {:?}",
        strip(c.try_call(num::CONNECT_DOMAIN_EVENT_REGISTER, &[]))
    ));
    out.push(format!(
        "m6 {:?}",
        strip(c.try_call(
            num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
            &cbreg(1, false)
        ))
    ));
    out.push(format!(
        "m7 {:?}",
        strip(c.try_call(num::CONNECT_DOMAIN_EVENT_REGISTER_ANY, &1i32.to_be_bytes()))
    ));
    out.push(format!(
        "m8 {:?}",
        strip(c.try_call(num::CONNECT_DOMAIN_EVENT_DEREGISTER, &[]))
    ));
    out.push(format!(
        "m9 {:?}",
        strip(c.try_call(
            num::CONNECT_DOMAIN_EVENT_DEREGISTER_ANY,
            &0i32.to_be_bytes()
        ))
    ));
    out.push(format!(
        "m10 {:?}",
        strip(c.try_call(
            num::CONNECT_DOMAIN_EVENT_DEREGISTER_ANY,
            &0i32.to_be_bytes()
        ))
    ));
    out.push(format!(
        "m11 {:?}",
        strip(c.try_call(
            num::CONNECT_DOMAIN_EVENT_DEREGISTER_ANY,
            &1i32.to_be_bytes()
        ))
    ));
    // A read-only open on the read-write socket.
    let mut c = Raw::connect(path);
    let ro = ironvirt_proto::remote::ConnectOpenArgs {
        name: Some("test:///default".into()),
        flags: 1,
    }
    .to_xdr()
    .unwrap();
    out.push(format!("ro open: {:?}", c.try_call(num::CONNECT_OPEN, &ro)));
    let destroy = NonnullDomain::to_xdr(&NonnullDomain {
        name: "nonexist".into(),
        uuid: [0; 16],
        id: -1,
    })
    .unwrap();
    out.push(format!(
        "ro destroy: {:?}",
        c.try_call(num::DOMAIN_DESTROY, &destroy)
    ));
    // CALL_WITH_FDS without descriptors: the connection is closed.
    let mut c = Raw::connect(path);
    c.send(REMOTE_PROGRAM, 1, num::CONNECT_GET_TYPE, 4, 0, &[]);
    out.push(format!("call with fds: {:?}", c.recv()));
    out
}

#[test]
fn malformed_and_unexpected_traffic_answered_like_libvirtd() {
    let d = Daemon::start();
    let ours = probes(&d.rw());
    assert!(
        ours.iter()
            .any(|l| l.starts_with("type: ") && l.contains("84, 69, 83, 84")),
        "{ours:#?}"
    );
    let mut c = Raw::connect(&d.rw());
    c.open("test:///default");
    for f in [8i32, 16] {
        assert_eq!(
            c.call(num::CONNECT_SUPPORTS_FEATURE, &f.to_be_bytes())
                .payload,
            [0, 0, 0, 0]
        );
    }
    if reference() {
        let theirs = probes(Path::new(REF_SOCK));
        let fix = |s: &str| {
            s.replace(&d.rw().display().to_string(), "SOCK")
                .replace(REF_SOCK, "SOCK")
        };
        for (a, b) in ours.iter().zip(theirs.iter()) {
            assert_eq!(fix(a), fix(b));
        }
        assert_eq!(ours.len(), theirs.len());
    }
    assert_serving(&d);
}

/// A length word over libvirt's limit, or below the header size, closes
/// the connection; the daemon keeps serving others.
#[test]
fn bad_length_words_close_the_connection() {
    let d = Daemon::start();
    for word in [u32::MAX, 33_554_437, 0, 4] {
        let mut c = Raw::connect(&d.rw());
        c.send_raw(&word.to_be_bytes()).unwrap();
        assert!(c.closed(), "length {word} left the connection open");
        assert_serving(&d);
    }
    // The largest allowed length is accepted: the daemon waits for the body.
    let mut c = Raw::connect(&d.rw());
    c.s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    c.send_raw(&33_554_436u32.to_be_bytes()).unwrap();
    c.send_raw(&[0u8; 4096]).unwrap();
    let mut b = [0u8; 1];
    let r = std::io::Read::read(&mut c.s, &mut b);
    assert!(
        matches!(r, Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "{r:?}"
    );
    drop(c);
    assert_serving(&d);
}

/// Truncated packets, disconnects in the middle of a call, garbage
/// payloads for every procedure: replies or closed connections, never a
/// crash.
#[test]
fn hostile_input_never_takes_the_daemon_down() {
    let mut d = Daemon::start();
    // Truncated packet, then disconnect.
    for cut in [1, 3, 4, 10, 27, 30] {
        let mut c = Raw::connect(&d.rw());
        let mut pkt = ironvirt_proto::packet::encode_packet(
            &ironvirt_proto::Header::call(REMOTE_PROGRAM, 1, num::DOMAIN_LOOKUP_BY_NAME, 1),
            &DomainLookupByNameArgs {
                name: "test".into(),
            },
        )
        .unwrap();
        pkt.truncate(cut);
        c.send_raw(&pkt).unwrap();
        drop(c);
    }
    // Calls sent, then the client leaves without reading the replies.
    for _ in 0..20 {
        let mut c = Raw::connect(&d.rw());
        c.open("test:///default");
        for _ in 0..50 {
            c.send(
                REMOTE_PROGRAM,
                1,
                num::CONNECT_LIST_ALL_DOMAINS,
                0,
                0,
                &[0, 0, 0, 1, 0, 0, 0, 0],
            );
        }
        drop(c);
    }
    assert_serving(&d);
    // Garbage of several shapes for every procedure number (and some past
    // the table), after CONNECT_OPEN.
    let mut seed = 0x1234_5678u32;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut c = Raw::connect(&d.rw());
    c.open("test:///default");
    for n in 0..=REMOTE_PROC_MAX + 3 {
        for shape in 0..4 {
            let payload: Vec<u8> = match shape {
                0 => vec![],
                1 => vec![0xff; 4],
                2 => vec![0, 0, 0, 8, b'x', b'x', b'x'],
                _ => (0..(rnd() % 200)).map(|_| rnd() as u8).collect(),
            };
            match c.try_call(n, &payload) {
                Some(_) => {}
                None => {
                    c = Raw::connect(&d.rw());
                    c.open("test:///default");
                }
            }
            if n == num::CONNECT_OPEN {
                c = Raw::connect(&d.rw());
                c.open("test:///default");
            }
        }
    }
    assert!(d.alive(), "{}", d.log());
    assert_serving(&d);
}

/// Many calls in flight on one connection: every reply comes back, in
/// order, and a client that does not read stalls only itself.
#[test]
fn pipelined_calls_and_a_stalled_client() {
    let d = Daemon::start();
    let mut stalled = Raw::connect(&d.rw());
    stalled.open("test:///default");
    let reg = [0u8; 8];
    assert!(stalled
        .call(num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, &reg)
        .ok());
    // The stalled client pipelines lots of calls and never reads.
    let big: Vec<u8> = {
        let mut v = Vec::new();
        for i in 0..20_000u32 {
            let h = ironvirt_proto::Header::call(
                REMOTE_PROGRAM,
                1,
                num::CONNECT_GET_CAPABILITIES,
                i + 100,
            );
            v.extend(ironvirt_proto::packet::encode_packet(&h, &()).unwrap());
        }
        v
    };
    stalled.s.set_nonblocking(true).unwrap();
    let _ = stalled.s.write(&big);

    let mut c = Raw::connect(&d.rw());
    c.open("test:///default");
    // 500 defines in flight at once: every one answered, in order.
    let mut batch = Vec::new();
    for i in 0..500u32 {
        let h = ironvirt_proto::Header::call(REMOTE_PROGRAM, 1, num::DOMAIN_DEFINE_XML, 1000 + i);
        let xml = format!("<domain type='test'><name>pipe-{i}</name><memory>1024</memory><os><type>hvm</type></os></domain>");
        batch.extend(
            ironvirt_proto::packet::encode_packet(
                &h,
                &ironvirt_proto::remote::DomainDefineXmlArgs { xml },
            )
            .unwrap(),
        );
    }
    c.send_raw(&batch).unwrap();
    for i in 0..500u32 {
        let r = c.recv().expect("reply");
        assert_eq!(r.header.serial, 1000 + i);
        assert!(r.ok(), "{:?}", r.error());
    }
    // ...and undefine them, which raises events the stalled client never reads.
    for i in 0..500u32 {
        let args = DomainLookupByNameArgs {
            name: format!("pipe-{i}"),
        }
        .to_xdr()
        .unwrap();
        let r = c.call(num::DOMAIN_LOOKUP_BY_NAME, &args);
        assert!(r.ok());
        assert!(c.call(num::DOMAIN_UNDEFINE, &r.payload).ok());
    }
    assert_serving(&d);
    drop(stalled);
    assert_serving(&d);
}
