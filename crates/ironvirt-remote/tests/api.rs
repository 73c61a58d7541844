//! The client suite, run the same way against the reference libvirtd and
//! against ironvirtd (`test:///default` on both): every test body takes a
//! [`Backend`] and each is instantiated once per daemon.
//!
//! The reference daemon's state is shared by every client, so each test
//! uses names of its own and removes what it creates.

mod common;

use common::{domain_xml, must_finish, unique, Backend, CuttingProxy};
use ironvirt_driver::{
    event, list_flags, reason, DomainState, Driver, ErrorDomain, ErrorNumber, LifecycleEvent, Uri,
};
use ironvirt_proto::procedures::num;
use ironvirt_remote::{CloseReason, RemoteDriver};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// One test body, run against both daemons.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn reference() {
                    if let Some(b) = super::common::Backend::reference() {
                        super::$name(&b);
                    }
                }

                #[test]
                fn ironvirtd() {
                    let b = super::common::Backend::ironvirtd();
                    super::$name(&b);
                }
            }
        )*
    };
}

both!(
    lookup_and_info,
    list_domains,
    define_start_destroy_undefine,
    xml_and_state,
    capabilities_and_node,
    errors_come_back_as_raised,
    read_only_connection,
    lifecycle_events,
    many_threads_one_connection,
    daemon_gone_mid_call,
    close_and_callbacks,
);

fn open(b: &Backend) -> RemoteDriver {
    ironvirt_remote::connect(&Uri::parse(&b.uri()).expect("uri"), false)
        .unwrap_or_else(|e| panic!("{}: cannot open {}: {e}", b.label, b.uri()))
}

/// Defines a domain and makes sure it is gone again when the test ends.
struct Scratch<'a> {
    conn: &'a RemoteDriver,
    name: String,
}

impl<'a> Scratch<'a> {
    fn define(conn: &'a RemoteDriver, prefix: &str) -> (Scratch<'a>, ironvirt_driver::DomainRef) {
        let name = unique(prefix);
        let d = conn
            .domain_define_xml(&domain_xml(&name), 0)
            .expect("define");
        (Scratch { conn, name }, d)
    }
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        if let Ok(d) = self.conn.domain_lookup_by_name(&self.name) {
            let _ = self.conn.domain_destroy(&d, 0);
            let _ = self.conn.domain_undefine(&d, 0);
        }
    }
}

fn lookup_and_info(b: &Backend) {
    let c = open(b);
    let d = c.domain_lookup_by_name("test").expect("lookup test");
    assert_eq!(d.name, "test");
    assert!(d.id > 0, "the test driver's 'test' domain runs: {d:?}");
    assert_eq!(c.domain_lookup_by_uuid(&d.uuid).expect("by uuid"), d);
    assert_eq!(c.domain_lookup_by_id(d.id).expect("by id"), d);
    let info = c.domain_get_info(&d).expect("info");
    assert_eq!(info.state, DomainState::Running as u8);
    assert!(info.max_mem >= info.memory && info.memory > 0, "{info:?}");
    assert!(info.nr_virt_cpu >= 1);
    assert_eq!(c.domain_get_os_type(&d).expect("os type"), "linux");
    assert_eq!(c.domain_get_max_memory(&d).expect("max mem"), info.max_mem);
    assert!(c.domain_is_active(&d).expect("active"));
    assert!(c.domain_is_persistent(&d).expect("persistent"));
    let _ = c.domain_get_autostart(&d).expect("autostart");
    assert!(!c
        .domain_has_managed_save_image(&d, 0)
        .expect("managed save"));
}

fn list_domains(b: &Backend) {
    let c = open(b);
    let (_s, d) = Scratch::define(&c, "rlist");
    let all = c.list_all_domains(0).expect("list all");
    assert!(all.iter().any(|x| x.name == "test"), "{all:?}");
    assert!(all.iter().any(|x| x == &d), "{all:?}");
    let active = c.list_all_domains(list_flags::ACTIVE).expect("active");
    assert!(active.iter().all(|x| x.id > 0) && active.iter().any(|x| x.name == "test"));
    let inactive = c.list_all_domains(list_flags::INACTIVE).expect("inactive");
    assert!(inactive.iter().any(|x| x.name == d.name) && inactive.iter().all(|x| x.id == -1));
    assert_eq!(c.num_of_domains().expect("num") as usize, active.len());
    assert_eq!(
        c.num_of_defined_domains().expect("num defined") as usize,
        inactive.len()
    );
}

fn define_start_destroy_undefine(b: &Backend) {
    let c = open(b);
    let (s, d) = Scratch::define(&c, "rlife");
    assert_eq!(d.id, -1);
    assert!(c.domain_is_persistent(&d).expect("persistent"));
    assert!(!c.domain_is_active(&d).expect("inactive"));
    assert_eq!(
        c.domain_get_state(&d, 0).expect("state").0,
        DomainState::Shutoff as i32
    );

    let running = c.domain_create(&d, 0).expect("start");
    assert_eq!(running.name, s.name);
    assert!(running.id > 0, "{running:?}");
    assert_eq!(
        c.domain_get_state(&running, 0).expect("state"),
        (DomainState::Running as i32, reason::running::BOOTED)
    );
    assert_eq!(
        c.domain_lookup_by_id(running.id).expect("by id").name,
        s.name
    );

    c.domain_suspend(&running).expect("suspend");
    assert_eq!(
        c.domain_get_state(&running, 0).expect("state"),
        (DomainState::Paused as i32, reason::paused::USER)
    );
    c.domain_resume(&running).expect("resume");
    assert_eq!(
        c.domain_get_state(&running, 0).expect("state").0,
        DomainState::Running as i32
    );

    c.domain_destroy(&running, 0).expect("destroy");
    assert_eq!(
        c.domain_get_state(&d, 0).expect("state"),
        (DomainState::Shutoff as i32, reason::shutoff::DESTROYED)
    );
    let again = c
        .domain_destroy(&d, 0)
        .expect_err("destroying a stopped domain");
    assert_eq!(again.code, ErrorNumber::OPERATION_INVALID, "{again:?}");

    c.domain_set_autostart(&d, true).expect("autostart on");
    assert!(c.domain_get_autostart(&d).expect("autostart"));
    c.domain_set_autostart(&d, false).expect("autostart off");

    c.domain_undefine(&d, 0).expect("undefine");
    let gone = c.domain_lookup_by_name(&s.name).expect_err("undefined");
    assert_eq!(gone.code, ErrorNumber::NO_DOMAIN);
}

fn xml_and_state(b: &Backend) {
    let c = open(b);
    let (s, d) = Scratch::define(&c, "rxml");
    let xml = c.domain_get_xml_desc(&d, 0).expect("xml");
    assert!(xml.contains(&format!("<name>{}</name>", s.name)), "{xml}");
    assert!(xml.contains(&format!("<uuid>{}</uuid>", d.uuid)), "{xml}");
    assert!(xml.starts_with("<domain type='test'"), "{xml}");
    let inactive = c
        .domain_get_xml_desc(&d, ironvirt_driver::xml_flags::INACTIVE)
        .expect("inactive xml");
    assert!(inactive.contains(&s.name));
    // Redefining from the dumped XML keeps the same domain.
    let again = c.domain_define_xml(&xml, 0).expect("redefine");
    assert_eq!(again.uuid, d.uuid);
    // The test driver's own domain is running for a reason it does not know.
    let t = c.domain_lookup_by_name("test").expect("test");
    assert_eq!(
        c.domain_get_state(&t, 0).expect("state"),
        (DomainState::Running as i32, reason::running::UNKNOWN)
    );
}

fn capabilities_and_node(b: &Backend) {
    let c = open(b);
    let caps = c.get_capabilities().expect("caps");
    assert!(
        caps.contains("<capabilities>") && caps.contains("<host>"),
        "{caps}"
    );
    assert_eq!(c.get_type().expect("type"), "TEST");
    assert_eq!(c.get_version().expect("version"), 2);
    assert_eq!(c.get_lib_version().expect("lib version"), 9_000_000);
    assert!(!c.get_hostname().expect("hostname").is_empty());
    let n = c.node_get_info().expect("node info");
    assert_eq!(
        (n.model.as_str(), n.cpus, n.mhz),
        ("i686", 16, 1400),
        "{n:?}"
    );
    let m = c.node_get_security_model().expect("security model");
    assert_eq!(m.model, "testSecurity");
    assert_eq!(c.get_uri().expect("uri"), b.uri());
}

fn errors_come_back_as_raised(b: &Backend) {
    let c = open(b);
    let missing = unique("rmissing");
    let e = c
        .domain_lookup_by_name(&missing)
        .expect_err("no such domain");
    assert_eq!(
        (e.code, e.domain),
        (ErrorNumber::NO_DOMAIN, ErrorDomain::TEST),
        "{e:?}"
    );
    assert!(e.message.starts_with("Domain not found"), "{e:?}");
    let e = c.domain_lookup_by_id(999_999).expect_err("no such id");
    assert_eq!(e.code, ErrorNumber::NO_DOMAIN);
    let e = c
        .domain_define_xml("<domain type='test'><name>x</name></domain>", 0)
        .expect_err("no os type");
    assert_eq!(
        (e.code, e.domain),
        (ErrorNumber::XML_ERROR, ErrorDomain::DOMAIN),
        "{e:?}"
    );
    assert_eq!(e.message, "XML error: an os <type> must be specified");
    let t = c.domain_lookup_by_name("test").expect("test");
    let e = c.domain_create(&t, 0).expect_err("already running");
    assert_eq!(
        (e.code, e.domain),
        (ErrorNumber::INTERNAL_ERROR, ErrorDomain::TEST),
        "{e:?}"
    );
    assert_eq!(
        e.message,
        "internal error: Domain 'test' is already running"
    );
    // The connection is still fine after errors.
    assert_eq!(c.domain_lookup_by_name("test").expect("test").name, "test");
}

fn read_only_connection(b: &Backend) {
    let c = ironvirt_remote::connect(&Uri::parse(&b.uri_ro()).expect("uri"), true)
        .expect("read-only open");
    let t = c
        .domain_lookup_by_name("test")
        .expect("lookup works read-only");
    let e = c.domain_destroy(&t, 0).expect_err("refused");
    assert_eq!(
        (e.code, e.domain),
        (ErrorNumber::OPERATION_DENIED, ErrorDomain::DOMAIN),
        "{e:?}"
    );
    assert_eq!(
        e.message,
        "operation forbidden: read only access prevents virDomainDestroy"
    );
}

fn wait_events(rx: &mpsc::Receiver<LifecycleEvent>, name: &str, want: &[(i32, i32)]) {
    let mut got = Vec::new();
    while got.len() < want.len() {
        let ev = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!("events for {name}: got {got:?}, still waiting for {want:?}")
            });
        if ev.dom.name == name {
            got.push((ev.event, ev.detail));
        }
    }
    assert_eq!(got, want);
}

fn lifecycle_events(b: &Backend) {
    let c = open(b);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let id = c
        .domain_event_register(Arc::new(move |ev: &LifecycleEvent| {
            let _ = tx.lock().map(|t| t.send(ev.clone()));
        }))
        .expect("register");
    // A second callback on the same connection gets the same events.
    let (tx2, rx2) = mpsc::channel();
    let tx2 = Mutex::new(tx2);
    let id2 = c
        .domain_event_register(Arc::new(move |ev: &LifecycleEvent| {
            let _ = tx2.lock().map(|t| t.send(ev.clone()));
        }))
        .expect("register second");
    assert_ne!(id, id2);

    let name = {
        let (s, d) = Scratch::define(&c, "revents");
        let r = c.domain_create(&d, 0).expect("start");
        c.domain_destroy(&r, 0).expect("destroy");
        c.domain_undefine(&d, 0).expect("undefine");
        s.name.clone()
    };
    let want = [
        (event::DEFINED, event::defined::ADDED),
        (event::STARTED, event::started::BOOTED),
        (event::STOPPED, event::stopped::DESTROYED),
        (event::UNDEFINED, event::undefined::REMOVED),
    ];
    wait_events(&rx, &name, &want);
    wait_events(&rx2, &name, &want);

    c.domain_event_deregister(id).expect("deregister");
    c.domain_event_deregister(id2).expect("deregister second");
    let e = c
        .domain_event_deregister(id)
        .expect_err("deregistering twice");
    assert_eq!(
        (e.code, e.domain),
        (ErrorNumber::INVALID_ARG, ErrorDomain::NONE)
    );
    assert_eq!(
        e.message,
        format!("invalid argument: event callback id {id} not registered")
    );
}

fn many_threads_one_connection(b: &Backend) {
    let c = Arc::new(open(b));
    let (_s, d) = Scratch::define(&c, "rthreads");
    let names = Arc::new(["test".to_string(), d.name.clone()]);
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let c = Arc::clone(&c);
            let names = Arc::clone(&names);
            std::thread::spawn(move || {
                for i in 0..150 {
                    let name = &names[(t + i) % 2];
                    let d = c.domain_lookup_by_name(name).expect("lookup");
                    assert_eq!(&d.name, name);
                    let info = c.domain_get_info(&d).expect("info");
                    let want = if name == "test" {
                        DomainState::Running
                    } else {
                        DomainState::Shutoff
                    };
                    assert_eq!(info.state, want as u8, "{name}");
                    if i % 50 == 0 {
                        assert!(c
                            .get_capabilities()
                            .expect("caps")
                            .contains("<capabilities>"));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("worker thread");
    }
    assert!(c.is_alive());
}

fn daemon_gone_mid_call(b: &Backend) {
    // The daemon disappears while a call is in flight.
    let proxy = CuttingProxy::start(&b.sock, num::DOMAIN_GET_XML_DESC);
    let c = Arc::new(
        ironvirt_remote::connect(&Uri::parse(&proxy.uri()).expect("uri"), false).expect("open"),
    );
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    c.on_close(move |r| {
        let _ = tx.lock().map(|t| t.send(r));
    });
    let t = c
        .domain_lookup_by_name("test")
        .expect("lookup before the cut");
    let c2 = Arc::clone(&c);
    let e = must_finish(
        Duration::from_secs(60),
        "call while the daemon goes away",
        move || {
            c2.domain_get_xml_desc(&t, 0)
                .expect_err("the daemon went away")
        },
    );
    assert_eq!(
        (e.code, e.domain),
        (ErrorNumber::SYSTEM_ERROR, ErrorDomain::RPC),
        "{e:?}"
    );
    assert_eq!(
        e.message,
        "End of file while reading data: Input/output error"
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(30))
            .expect("close callback"),
        CloseReason::Eof
    );
    assert!(!c.is_alive());
    let e = c.domain_lookup_by_name("test").expect_err("closed");
    assert_eq!(
        (e.code, e.domain),
        (ErrorNumber::INTERNAL_ERROR, ErrorDomain::RPC)
    );
    assert_eq!(e.message, "internal error: client socket is closed");

    // And the real thing for the daemon this project owns: kill it while
    // threads are busy calling.
    if b.daemon.is_some() {
        let mut daemon = common::Daemon::start(&[]);
        let uri = format!("test+unix:///default?socket={}", daemon.sock.display());
        let c = Arc::new(
            ironvirt_remote::connect(&Uri::parse(&uri).expect("uri"), false).expect("open"),
        );
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || loop {
                    match c
                        .domain_lookup_by_name("test")
                        .and_then(|d| c.domain_get_info(&d))
                    {
                        Ok(_) => continue,
                        Err(e) => return e,
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        daemon.kill();
        for w in workers {
            let e = must_finish(
                Duration::from_secs(60),
                "calls after the daemon was killed",
                move || w.join().expect("worker"),
            );
            assert_eq!(e.domain, ErrorDomain::RPC, "{e:?}");
            // Which of libvirt's words a caller gets depends on where its
            // call was when the socket died (a kill with calls unread in the
            // daemon's buffer resets the connection).
            assert!(
                [
                    "End of file while reading data: Input/output error",
                    "Cannot recv data: Connection reset by peer",
                    "Cannot write data: Broken pipe",
                    "Cannot write data: Connection reset by peer",
                    "internal error: client socket is closed",
                ]
                .contains(&e.message.as_str()),
                "{e:?}"
            );
        }
    }
}

fn close_and_callbacks(b: &Backend) {
    let c = open(b);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    c.on_close(move |r| {
        let _ = tx.lock().map(|t| t.send(r));
    });
    assert!(c.is_secure());
    c.close().expect("close");
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(30))
            .expect("close callback"),
        CloseReason::Client
    );
    let e = c.get_type().expect_err("closed");
    assert_eq!(e.message, "internal error: client socket is closed");
    c.close().expect("closing twice is harmless");
    // Dropping an open connection closes it too (no thread is left behind
    // holding the socket: the daemon sees the end of the stream).
    let d = open(b);
    drop(d);
}
