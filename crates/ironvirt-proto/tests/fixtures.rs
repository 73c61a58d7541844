//! Decodes packets captured from the reference libvirtd 9.0 and a real
//! `virsh` (see each fixture's header) and checks that re-encoding gives
//! back the same bytes.

use ironvirt_driver::{ErrorDomain, ErrorNumber};
use ironvirt_proto::packet::FrameDecoder;
use ironvirt_proto::procedures::{self, num, Kind};
use ironvirt_proto::program::{self, Program};
use ironvirt_proto::remote::{self, reencode_args, reencode_ret};
use ironvirt_proto::{MessageType, Packet, RemoteError, Status};
use ironvirt_xdr::XdrDecode;

struct Captured {
    from_client: bool,
    bytes: Vec<u8>,
}

fn load(name: &str) -> Vec<Captured> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture readable");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (dir, hex) = l.split_at(2);
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            Captured {
                from_client: dir == "C ",
                bytes,
            }
        })
        .collect()
}

/// Parses every packet, checks it re-encodes to the same bytes, and that
/// every payload this crate has a struct for decodes and re-encodes
/// identically. Returns the packets.
fn check_fixture(name: &str) -> Vec<(bool, Packet)> {
    let mut out = Vec::new();
    let mut stream = FrameDecoder::new();
    for c in load(name) {
        let p = Packet::parse(&c.bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            p.to_bytes().expect("encodes"),
            c.bytes,
            "{name}: header re-encoding"
        );
        stream.extend(&c.bytes);
        assert_eq!(stream.next_packet().expect("frames").as_ref(), Some(&p));

        if p.header.prog == program::REMOTE_PROGRAM {
            let proc_ = p.header.proc_;
            let again = match (p.header.type_, p.header.status) {
                (MessageType::CALL, _) | (MessageType::MESSAGE, _) => {
                    reencode_args(proc_, &p.payload)
                }
                (MessageType::REPLY, Status::OK) => reencode_ret(proc_, &p.payload),
                (MessageType::REPLY, Status::ERROR) => Some(
                    RemoteError::from_xdr(&p.payload)
                        .map_err(Into::into)
                        .and_then(|r| ironvirt_xdr::XdrEncode::to_xdr(&r).map_err(Into::into)),
                ),
                _ => None,
            };
            if let Some(again) = again {
                let again = again.unwrap_or_else(|e| panic!("{name}: proc {proc_}: {e}"));
                assert_eq!(again, p.payload, "{name}: proc {proc_} payload re-encoding");
            }
        }
        out.push((c.from_client, p));
    }
    assert_eq!(stream.buffered(), 0);
    out
}

fn replies(pkts: &[(bool, Packet)], proc_: i32) -> Vec<&Packet> {
    pkts.iter()
        .filter(|(c, p)| !c && p.header.proc_ == proc_ && p.header.type_ == MessageType::REPLY)
        .map(|(_, p)| p)
        .collect()
}

#[test]
fn list_all() {
    let pkts = check_fixture("list_all.txt");
    // The calls virsh makes, in order.
    let calls: Vec<i32> = pkts
        .iter()
        .filter(|(c, _)| *c)
        .map(|(_, p)| p.header.proc_)
        .collect();
    assert_eq!(calls, [66, 60, 1, 60, 60, 360, 273, 212, 361, 2]);
    for (c, p) in &pkts {
        if *c {
            let proc_ = procedures::lookup(p.header.proc_).expect("known procedure");
            assert_eq!(
                proc_.kind,
                if p.header.proc_ == 66 {
                    Kind::Auth
                } else {
                    Kind::Call
                }
            );
        }
    }
    let open = pkts
        .iter()
        .find(|(c, p)| *c && p.header.proc_ == num::CONNECT_OPEN)
        .expect("open");
    let args: remote::ConnectOpenArgs = open.1.decode().expect("decodes");
    assert_eq!(args.name.as_deref(), Some("test:///default"));
    assert_eq!(args.flags, 0);
    let list: remote::ConnectListAllDomainsRet = replies(&pkts, num::CONNECT_LIST_ALL_DOMAINS)[0]
        .decode()
        .expect("decodes");
    assert_eq!(list.ret, 1);
    let d = ironvirt_driver::DomainRef::from(list.domains[0].clone());
    assert_eq!((d.name.as_str(), d.id), ("test", 1));
    assert_eq!(d.uuid.to_string(), "6695eb01-f6a4-8304-79aa-97f2502e193f");
    let auth: remote::AuthListRet = replies(&pkts, num::AUTH_LIST)[0].decode().expect("decodes");
    assert_eq!(auth.types, [ironvirt_proto::types::AuthType::None]);
}

#[test]
fn dominfo() {
    let pkts = check_fixture("dominfo.txt");
    let info: remote::DomainGetInfoRet = replies(&pkts, num::DOMAIN_GET_INFO)[0]
        .decode()
        .expect("decodes");
    let info = ironvirt_driver::DomainInfo::from(info);
    // virsh printed: running, 2 CPUs, 8388608 KiB max, 2097152 KiB used.
    assert_eq!(
        (info.state, info.nr_virt_cpu, info.max_mem, info.memory),
        (1, 2, 8_388_608, 2_097_152)
    );
    let os: remote::DomainGetOsTypeRet = replies(&pkts, num::DOMAIN_GET_OS_TYPE)[0]
        .decode()
        .expect("decodes");
    assert_eq!(os.type_, "linux");
}

#[test]
fn dumpxml() {
    let pkts = check_fixture("dumpxml.txt");
    let xml: remote::DomainGetXmlDescRet = replies(&pkts, num::DOMAIN_GET_XML_DESC)[0]
        .decode()
        .expect("decodes");
    assert!(xml.xml.starts_with("<domain type='test' id='1'>"));
}

#[test]
fn define() {
    let pkts = check_fixture("define.txt");
    let call = pkts
        .iter()
        .find(|(c, p)| *c && p.header.proc_ == num::DOMAIN_DEFINE_XML)
        .expect("define call");
    let args: remote::DomainDefineXmlArgs = call.1.decode().expect("decodes");
    assert!(args.xml.contains("<name>proto-fixture</name>"));
    let ret: remote::DomainRet = replies(&pkts, num::DOMAIN_DEFINE_XML)[0]
        .decode()
        .expect("decodes");
    assert_eq!((ret.dom.name.as_str(), ret.dom.id), ("proto-fixture", -1));
}

#[test]
fn undefine_missing_domain_error() {
    let pkts = check_fixture("undefine_missing.txt");
    let r = replies(&pkts, num::DOMAIN_LOOKUP_BY_NAME)[0];
    assert_eq!(r.header.status, Status::ERROR);
    let e = r.decode::<RemoteError>().expect("decodes").into_error();
    assert_eq!(e.code, ErrorNumber::NO_DOMAIN);
    assert_eq!(e.domain, ErrorDomain::TEST);
    // libvirt 9.0's test driver reports a failed name lookup without detail.
    assert_eq!(e.message, "Domain not found");
    assert_eq!(e.str1.as_deref(), Some("Domain not found"));
    assert_eq!(e.str2, None);
    // Our constructor yields the same wire bytes.
    let ours = ironvirt_driver::Error::new(ErrorDomain::TEST, ErrorNumber::NO_DOMAIN, "");
    assert_eq!(
        ironvirt_xdr::XdrEncode::to_xdr(&RemoteError::from(&ours)).expect("encodes"),
        r.payload
    );
}

#[test]
fn events() {
    let pkts = check_fixture("event.txt");
    let ids: Vec<i32> = pkts
        .iter()
        .filter(|(c, p)| *c && p.header.proc_ == num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY)
        .map(|(_, p)| {
            p.decode::<remote::ConnectDomainEventCallbackRegisterAnyArgs>()
                .expect("decodes")
        })
        .map(|a| {
            assert_eq!(a.dom, None);
            a.event_id
        })
        .collect();
    assert_eq!(
        ids,
        (0..27).collect::<Vec<_>>(),
        "virsh registers every domain event id of libvirt 9.0"
    );
    let events: Vec<ironvirt_driver::LifecycleEvent> = pkts
        .iter()
        .filter(|(_, p)| p.header.type_ == MessageType::MESSAGE)
        .map(|(_, p)| {
            assert_eq!(p.header.proc_, num::DOMAIN_EVENT_CALLBACK_LIFECYCLE);
            assert_eq!(p.header.serial, 1);
            let m: remote::DomainEventCallbackLifecycleMsg = p.decode().expect("decodes");
            assert_eq!(m.callback_id, 0);
            m.msg.into()
        })
        .collect();
    use ironvirt_driver::event;
    let kinds: Vec<(i32, i32)> = events.iter().map(|e| (e.event, e.detail)).collect();
    assert_eq!(
        kinds,
        [
            (event::DEFINED, event::defined::ADDED),
            (event::STARTED, event::started::BOOTED),
            (event::STOPPED, event::stopped::DESTROYED),
            (event::UNDEFINED, event::undefined::REMOVED),
        ]
    );
    // Our event encoder produces the daemon's exact bytes.
    let first = pkts
        .iter()
        .find(|(_, p)| p.header.type_ == MessageType::MESSAGE)
        .expect("event")
        .1
        .clone();
    let msg = remote::DomainEventCallbackLifecycleMsg {
        callback_id: 0,
        msg: (&events[0]).into(),
    };
    let ours =
        ironvirt_proto::event_packet(num::DOMAIN_EVENT_CALLBACK_LIFECYCLE, &msg).expect("encodes");
    assert_eq!(ours, first.to_bytes().expect("encodes"));
}

#[test]
fn nodeinfo_version_capabilities() {
    let pkts = check_fixture("nodeinfo.txt");
    let n = ironvirt_driver::NodeInfo::from(
        replies(&pkts, num::NODE_GET_INFO)[0]
            .decode::<remote::NodeGetInfoRet>()
            .expect("decodes"),
    );
    assert_eq!(
        (n.model.as_str(), n.cpus, n.mhz, n.memory),
        ("i686", 16, 1400, 3_145_728)
    );
    let pkts = check_fixture("version.txt");
    let v: remote::ConnectGetVersionRet = replies(&pkts, num::CONNECT_GET_VERSION)[0]
        .decode()
        .expect("decodes");
    assert_eq!(v.hv_ver, 2); // "TEST 0.0.2"
    let t: remote::ConnectGetTypeRet = replies(&pkts, num::CONNECT_GET_TYPE)[0]
        .decode()
        .expect("decodes");
    assert_eq!(t.type_, "TEST");
    let pkts = check_fixture("capabilities.txt");
    let c: remote::ConnectGetCapabilitiesRet = replies(&pkts, num::CONNECT_GET_CAPABILITIES)[0]
        .decode()
        .expect("decodes");
    assert!(c.capabilities.contains("<capabilities>"));
}

#[test]
fn readonly_socket_and_rejections() {
    let pkts = check_fixture("readonly_raw.txt");
    let s: Vec<&Packet> = pkts.iter().filter(|(c, _)| !c).map(|(_, p)| p).collect();
    let err = |p: &Packet| p.decode::<RemoteError>().expect("decodes");

    // DOMAIN_DESTROY: the table's refusal is byte-identical to the daemon's.
    let destroy = procedures::lookup(num::DOMAIN_DESTROY).expect("known");
    let ours = RemoteError::from(&destroy.check_readonly(0).expect_err("refused"));
    assert_eq!(err(s[3]), ours);
    let call = &pkts
        .iter()
        .find(|(c, p)| *c && p.header.proc_ == num::DOMAIN_DESTROY)
        .expect("call")
        .1;
    assert_eq!(
        ironvirt_proto::error_packet(
            &call.header,
            &destroy.check_readonly(0).expect_err("refused")
        ),
        s[3].to_bytes().expect("ok")
    );

    // DOMAIN_GET_XML_DESC with VIR_DOMAIN_XML_SECURE.
    let xml = procedures::lookup(num::DOMAIN_GET_XML_DESC).expect("known");
    assert_eq!(
        err(s[4]),
        RemoteError::from(&xml.check_readonly(1).expect_err("refused"))
    );

    // Unknown procedure.
    assert_eq!(
        err(s[5]),
        RemoteError::from(&procedures::unknown_procedure(9999))
    );

    // A call to the QEMU program with an empty payload: libvirtd serves that
    // program and cannot decode the arguments.
    assert_eq!(Program::identify(s[6].header.prog), Program::Qemu);
    let bad = ironvirt_driver::Error::from(ironvirt_proto::ProtoError::Xdr(
        ironvirt_xdr::Error::Truncated {
            needed: 4,
            remaining: 0,
        },
    ));
    assert_eq!(err(s[6]), RemoteError::from(&bad));

    // Keepalive PING is answered by a PONG.
    assert_eq!(
        s[7].to_bytes().expect("ok"),
        ironvirt_proto::keepalive_packet(program::keepalive::PONG)
    );
}
