//! The protocol machinery against a scripted daemon: the handshake,
//! keepalive both ways, timeouts, replies out of order, error fidelity,
//! authentication choices and event plumbing. No real daemon is needed.

mod common;

use common::{message, must_finish, reply, Action, MockDaemon};
use ironvirt_driver::{Driver, Error, ErrorDomain, ErrorLevel, ErrorNumber, LifecycleEvent, Uri};
use ironvirt_proto::packet::{Header, MessageType, Packet};
use ironvirt_proto::procedures::num;
use ironvirt_proto::program::{self, keepalive};
use ironvirt_proto::remote::*;
use ironvirt_proto::types::{AuthType, NonnullDomain};
use ironvirt_proto::RemoteError;
use ironvirt_remote::{AuthPolkitRet, CloseReason, ConnectOptions, RemoteDriver};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

fn is_call(p: &Packet, proc_: i32) -> bool {
    p.header.prog == program::REMOTE_PROGRAM
        && p.header.type_ == MessageType::CALL
        && p.header.proc_ == proc_
}

fn connect(m: &MockDaemon, opts: ConnectOptions) -> RemoteDriver {
    RemoteDriver::connect(&Uri::parse(&m.uri()).expect("uri"), &opts).expect("open the mock")
}

fn dom(name: &str) -> NonnullDomain {
    NonnullDomain {
        name: name.into(),
        uuid: [9; 16],
        id: 3,
    }
}

#[test]
fn handshake_is_libvirts() {
    let m = MockDaemon::start(vec![AuthType::None], |_| Action::Default);
    let c = connect(
        &m,
        ConnectOptions {
            read_only: true,
            ..ConnectOptions::default()
        },
    );
    drop(c);
    m.wait_for("CONNECT_OPEN", |p| is_call(p, num::CONNECT_OPEN));
    let got: Vec<(i32, u32, Option<i32>)> = m
        .received
        .lock()
        .expect("log")
        .iter()
        .take(5)
        .map(|p| {
            let feature = (p.header.proc_ == num::CONNECT_SUPPORTS_FEATURE).then(|| {
                p.decode::<ConnectSupportsFeatureArgs>()
                    .expect("feature")
                    .feature
            });
            (p.header.proc_, p.header.serial, feature)
        })
        .collect();
    // What virsh sends, in this order (measured with rpc-trace).
    assert_eq!(
        got,
        [
            (num::AUTH_LIST, 0, None),
            (num::CONNECT_SUPPORTS_FEATURE, 1, Some(10)),
            (num::CONNECT_OPEN, 2, None),
            (num::CONNECT_SUPPORTS_FEATURE, 3, Some(14)),
            (num::CONNECT_SUPPORTS_FEATURE, 4, Some(15)),
        ]
    );
    let open = m.wait_for("CONNECT_OPEN", |p| is_call(p, num::CONNECT_OPEN));
    let args: ConnectOpenArgs = open.decode().expect("open args");
    assert_eq!(
        args,
        ConnectOpenArgs {
            name: Some("test:///default".into()),
            flags: 1
        }
    );
}

#[test]
fn keepalive_ping_gets_a_pong() {
    let m = MockDaemon::start(vec![AuthType::None], |p| {
        if is_call(p, num::CONNECT_GET_TYPE) {
            Action::Send(vec![
                ironvirt_proto::keepalive_packet(keepalive::PING),
                reply(
                    &p.header,
                    &ConnectGetTypeRet {
                        type_: "MOCK".into(),
                    },
                ),
            ])
        } else {
            Action::Default
        }
    });
    let c = connect(&m, ConnectOptions::default());
    assert_eq!(c.get_type().expect("type"), "MOCK");
    let pong = m.wait_for("a PONG", |p| p.header.prog == program::KEEPALIVE_PROGRAM);
    assert_eq!(pong.header.proc_, keepalive::PONG);
    assert_eq!(pong.header.type_, MessageType::MESSAGE);
    assert_eq!(pong.header.serial, 0);
    assert!(pong.payload.is_empty());
}

#[test]
fn keepalive_gives_up_on_a_silent_daemon() {
    // A daemon that stops answering anything after the handshake.
    let m = MockDaemon::start(vec![AuthType::None], |p| {
        if is_call(p, num::CONNECT_GET_TYPE) || p.header.prog == program::KEEPALIVE_PROGRAM {
            Action::Nothing
        } else {
            Action::Default
        }
    });
    let c = Arc::new(connect(
        &m,
        ConnectOptions {
            keepalive: Some((1, 2)),
            ..ConnectOptions::default()
        },
    ));
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    c.on_close(move |r| {
        let _ = tx.lock().map(|t| t.send(r));
    });
    let c2 = Arc::clone(&c);
    let e = must_finish(
        Duration::from_secs(60),
        "a call to a silent daemon",
        move || c2.get_type().expect_err("dead"),
    );
    assert_eq!(
        (e.code, e.domain),
        (ErrorNumber::INTERNAL_ERROR, ErrorDomain::RPC),
        "{e:?}"
    );
    assert_eq!(
        e.message,
        "internal error: connection closed due to keepalive timeout"
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(30))
            .expect("close callback"),
        CloseReason::Keepalive
    );
    let pings = m
        .received
        .lock()
        .expect("log")
        .iter()
        .filter(|p| {
            p.header.prog == program::KEEPALIVE_PROGRAM && p.header.proc_ == keepalive::PING
        })
        .count();
    assert_eq!(
        pings, 2,
        "two unanswered PINGs, then the connection is dropped"
    );
    assert!(!c.is_alive());
}

#[test]
fn call_timeout_leaves_the_connection_usable() {
    let m = MockDaemon::start(vec![AuthType::None], |p| {
        if is_call(p, num::CONNECT_GET_HOSTNAME) {
            Action::Nothing
        } else if is_call(p, num::CONNECT_GET_TYPE) {
            Action::Send(vec![reply(
                &p.header,
                &ConnectGetTypeRet {
                    type_: "MOCK".into(),
                },
            )])
        } else {
            Action::Default
        }
    });
    let c = connect(
        &m,
        ConnectOptions {
            call_timeout: Some(Duration::from_millis(300)),
            ..ConnectOptions::default()
        },
    );
    let e = c.get_hostname().expect_err("no reply");
    assert_eq!(
        (e.code, e.domain),
        (ErrorNumber::OPERATION_TIMEOUT, ErrorDomain::RPC),
        "{e:?}"
    );
    assert!(
        e.message.starts_with("Timed out during operation: "),
        "{e:?}"
    );
    assert_eq!(c.get_type().expect("later calls still work"), "MOCK");
    c.set_call_timeout(None);
    assert_eq!(c.get_type().expect("type"), "MOCK");
}

#[test]
fn daemon_errors_travel_whole() {
    let sent = RemoteError {
        code: ErrorNumber::OPERATION_INVALID.0,
        domain: ErrorDomain::QEMU.0,
        message: Some("Requested operation is not valid: domain is not running".into()),
        level: 2,
        dom: None,
        str1: Some("Requested operation is not valid: %s".into()),
        str2: Some("domain is not running".into()),
        str3: Some("third".into()),
        int1: 7,
        int2: 9,
        net: None,
    };
    let s = sent.clone();
    let m = MockDaemon::start(vec![AuthType::None], move |p| {
        if is_call(p, num::CONNECT_GET_TYPE) {
            Action::Send(vec![ironvirt_proto::error_packet(
                &p.header,
                &s.clone().into_error(),
            )])
        } else {
            Action::Default
        }
    });
    let c = connect(&m, ConnectOptions::default());
    let e = c.get_type().expect_err("daemon error");
    assert_eq!(
        e,
        Error {
            code: ErrorNumber::OPERATION_INVALID,
            domain: ErrorDomain::QEMU,
            level: ErrorLevel::Error,
            message: "Requested operation is not valid: domain is not running".into(),
            str1: Some("Requested operation is not valid: %s".into()),
            str2: Some("domain is not running".into()),
            str3: Some("third".into()),
            int1: 7,
            int2: 9,
        }
    );
}

#[test]
fn end_of_stream_mid_call_reads_like_libvirt() {
    let m = MockDaemon::start(vec![AuthType::None], |p| {
        if is_call(p, num::CONNECT_GET_TYPE) {
            Action::Close
        } else {
            Action::Default
        }
    });
    let c = connect(&m, ConnectOptions::default());
    // libvirt's client, measured against a daemon that hangs up mid-call.
    let e = c.get_type().expect_err("hung up");
    assert_eq!(
        (e.code, e.domain, e.int1),
        (ErrorNumber::SYSTEM_ERROR, ErrorDomain::RPC, 5)
    );
    assert_eq!(
        e.message,
        "End of file while reading data: Input/output error"
    );
    let e = c.get_type().expect_err("closed");
    assert_eq!(
        (e.code, e.domain),
        (ErrorNumber::INTERNAL_ERROR, ErrorDomain::RPC)
    );
    assert_eq!(e.message, "internal error: client socket is closed");
}

#[test]
fn replies_out_of_order_reach_their_callers() {
    const N: usize = 6;
    let held: Arc<Mutex<Vec<(Header, String)>>> = Arc::default();
    let h = Arc::clone(&held);
    let m = MockDaemon::start(vec![AuthType::None], move |p| {
        if is_call(p, num::DOMAIN_LOOKUP_BY_NAME) {
            let name = p.decode::<DomainLookupByNameArgs>().expect("args").name;
            let mut held = h.lock().expect("held");
            held.push((p.header, name));
            if held.len() < N {
                return Action::Nothing;
            }
            // Answer every held call, last first.
            let out = held
                .drain(..)
                .rev()
                .map(|(hd, n)| reply(&hd, &DomainRet { dom: dom(&n) }))
                .collect();
            Action::Send(out)
        } else {
            Action::Default
        }
    });
    let c = Arc::new(connect(&m, ConnectOptions::default()));
    let threads: Vec<_> = (0..N)
        .map(|i| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                let name = format!("dom-{i}");
                let d = c.domain_lookup_by_name(&name).expect("lookup");
                assert_eq!(d.name, name);
            })
        })
        .collect();
    for t in threads {
        must_finish(
            Duration::from_secs(60),
            "calls answered out of order",
            move || t.join().expect("thread"),
        );
    }
}

#[test]
fn sasl_only_daemon_is_refused_clearly() {
    let m = MockDaemon::start(vec![AuthType::Sasl], |_| Action::Default);
    let e = RemoteDriver::connect(
        &Uri::parse(&m.uri()).expect("uri"),
        &ConnectOptions::default(),
    )
    .expect_err("sasl");
    assert_eq!(
        (e.code, e.domain),
        (ErrorNumber::AUTH_UNAVAILABLE, ErrorDomain::REMOTE),
        "{e:?}"
    );
    assert!(e.message.contains("SASL"), "{e:?}");
    assert!(!m
        .received
        .lock()
        .expect("log")
        .iter()
        .any(|p| is_call(p, num::CONNECT_OPEN)));
}

#[test]
fn requested_auth_type_must_be_offered() {
    let m = MockDaemon::start(vec![AuthType::None], |_| Action::Default);
    let uri = format!("{}&auth=polkit", m.uri());
    let e = RemoteDriver::connect(&Uri::parse(&uri).expect("uri"), &ConnectOptions::default())
        .expect_err("rejected");
    // libvirt's words for the same URI against its own daemon (measured).
    assert_eq!(
        (e.code, e.domain),
        (ErrorNumber::AUTH_FAILED, ErrorDomain::REMOTE)
    );
    assert_eq!(
        e.message,
        "authentication failed: requested authentication type polkit rejected"
    );
}

#[test]
fn polkit_authentication() {
    let m = MockDaemon::start(vec![AuthType::Polkit], |p| {
        if is_call(p, num::AUTH_POLKIT) {
            Action::Send(vec![reply(&p.header, &AuthPolkitRet { complete: 1 })])
        } else {
            Action::Default
        }
    });
    let c = connect(&m, ConnectOptions::default());
    assert!(c.is_alive());
    m.wait_for("AUTH_POLKIT", |p| is_call(p, num::AUTH_POLKIT));
}

fn event_channel() -> (
    ironvirt_driver::LifecycleCallback,
    mpsc::Receiver<LifecycleEvent>,
) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    (
        Arc::new(move |ev: &LifecycleEvent| {
            let _ = tx.lock().map(|t| t.send(ev.clone()));
        }),
        rx,
    )
}

#[test]
fn events_follow_the_daemons_callback_id() {
    let m = MockDaemon::start(vec![AuthType::None], |p| {
        if is_call(p, num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY) {
            let lifecycle = |id: i32, detail: i32| {
                message(
                    num::DOMAIN_EVENT_CALLBACK_LIFECYCLE,
                    &DomainEventCallbackLifecycleMsg {
                        callback_id: id,
                        msg: DomainEventLifecycleMsg {
                            dom: dom("ev"),
                            event: 2,
                            detail,
                        },
                    },
                )
            };
            Action::Send(vec![
                reply(
                    &p.header,
                    &ConnectDomainEventCallbackRegisterAnyRet { callback_id: 7 },
                ),
                lifecycle(99, 1),
                lifecycle(7, 0),
            ])
        } else if is_call(p, num::CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY) {
            Action::Send(vec![reply(&p.header, &())])
        } else {
            Action::Default
        }
    });
    let c = connect(&m, ConnectOptions::default());
    let (cb, rx) = event_channel();
    let id = c.domain_event_register(cb).expect("register");
    let ev = rx.recv_timeout(Duration::from_secs(30)).expect("event");
    assert_eq!(
        (ev.dom.name.as_str(), ev.event, ev.detail),
        ("ev", 2, 0),
        "the event for another callback id is dropped"
    );
    c.domain_event_deregister(id).expect("deregister");
    let d = m.wait_for("deregistration", |p| {
        is_call(p, num::CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY)
    });
    assert_eq!(
        d.decode::<ConnectDomainEventCallbackDeregisterAnyArgs>()
            .expect("args")
            .callback_id,
        7
    );
}

#[test]
fn old_daemons_get_old_style_event_registration() {
    let m = MockDaemon::start(vec![AuthType::None], |p| {
        if is_call(p, num::CONNECT_SUPPORTS_FEATURE) {
            let f = p
                .decode::<ConnectSupportsFeatureArgs>()
                .expect("args")
                .feature;
            Action::Send(vec![reply(
                &p.header,
                &ConnectSupportsFeatureRet {
                    supported: (f != 14) as i32,
                },
            )])
        } else if is_call(p, num::CONNECT_DOMAIN_EVENT_REGISTER_ANY) {
            Action::Send(vec![
                reply(&p.header, &()),
                message(
                    num::DOMAIN_EVENT_LIFECYCLE,
                    &DomainEventLifecycleMsg {
                        dom: dom("old"),
                        event: 5,
                        detail: 1,
                    },
                ),
            ])
        } else if is_call(p, num::CONNECT_DOMAIN_EVENT_DEREGISTER_ANY) {
            Action::Send(vec![reply(&p.header, &())])
        } else {
            Action::Default
        }
    });
    let c = connect(&m, ConnectOptions::default());
    let (cb, rx) = event_channel();
    let id = c.domain_event_register(cb).expect("register");
    let ev = rx.recv_timeout(Duration::from_secs(30)).expect("event");
    assert_eq!((ev.dom.name.as_str(), ev.event, ev.detail), ("old", 5, 1));
    c.domain_event_deregister(id).expect("deregister");
    m.wait_for("old-style deregistration", |p| {
        is_call(p, num::CONNECT_DOMAIN_EVENT_DEREGISTER_ANY)
    });
}

#[test]
fn daemon_side_close_reaches_close_callbacks() {
    let m = MockDaemon::start(vec![AuthType::None], |p| {
        if is_call(p, num::CONNECT_REGISTER_CLOSE_CALLBACK) {
            Action::Send(vec![
                reply(&p.header, &()),
                message(num::CONNECT_EVENT_CONNECTION_CLOSED, &2i32),
            ])
        } else {
            Action::Default
        }
    });
    let c = connect(&m, ConnectOptions::default());
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    c.on_close(move |r| {
        let _ = tx.lock().map(|t| t.send(r));
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(30))
            .expect("close callback"),
        CloseReason::Keepalive
    );
}

#[test]
fn an_event_sent_before_a_reply_reaches_its_callback_and_the_call_its_reply() {
    // The calling thread reads the connection while it waits: the event
    // it meets before its reply still goes to the callback.
    let m = MockDaemon::start(vec![AuthType::None], |p| {
        if is_call(p, num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY) {
            Action::Send(vec![reply(
                &p.header,
                &ConnectDomainEventCallbackRegisterAnyRet { callback_id: 4 },
            )])
        } else if is_call(p, num::CONNECT_GET_TYPE) {
            Action::Send(vec![
                message(
                    num::DOMAIN_EVENT_CALLBACK_LIFECYCLE,
                    &DomainEventCallbackLifecycleMsg {
                        callback_id: 4,
                        msg: DomainEventLifecycleMsg {
                            dom: dom("during"),
                            event: 4,
                            detail: 0,
                        },
                    },
                ),
                ironvirt_proto::keepalive_packet(keepalive::PING),
                reply(
                    &p.header,
                    &ConnectGetTypeRet {
                        type_: "MOCK".into(),
                    },
                ),
            ])
        } else {
            Action::Default
        }
    });
    let c = connect(&m, ConnectOptions::default());
    let (cb, rx) = event_channel();
    c.domain_event_register(cb).expect("register");
    assert_eq!(c.get_type().expect("type"), "MOCK");
    let ev = rx.recv_timeout(Duration::from_secs(30)).expect("event");
    assert_eq!((ev.dom.name.as_str(), ev.event), ("during", 4));
    let pong = m.wait_for("a PONG", |p| p.header.prog == program::KEEPALIVE_PROGRAM);
    assert_eq!(pong.header.proc_, keepalive::PONG);
}
