//! State machine tests; expectations measured on libvirt 9.0's test driver
//! through python3-libvirt.

use super::*;

/// A private `test:///default`-like state, so tests do not share one.
fn private() -> TestDriver {
    TestDriver {
        shared: Shared::new(default_inner().unwrap()),
        uri: "test:///default".into(),
        conn_id: NEXT_CONN.fetch_add(1, Ordering::Relaxed),
    }
}

const A: &str =
    "<domain type='test'><name>a</name><uuid>11111111-2222-3333-4444-555555555555</uuid>\
    <memory>1024</memory><os><type>hvm</type></os></domain>";

fn code(e: &Error) -> (i32, i32, &str) {
    (e.code.0, e.domain.0, e.message.as_str())
}

#[test]
fn default_host_and_domain() {
    let d = private();
    assert_eq!(d.get_type().unwrap(), "TEST");
    assert_eq!(d.get_version().unwrap(), 2);
    let n = d.node_get_info().unwrap();
    assert_eq!(
        (n.model.as_str(), n.cpus, n.mhz, n.memory),
        ("i686", 16, 1400, 3145728)
    );
    let t = d.domain_lookup_by_name("test").unwrap();
    assert_eq!(t.id, 1);
    assert_eq!(t.uuid.to_string(), "6695eb01-f6a4-8304-79aa-97f2502e193f");
    assert_eq!(d.domain_get_state(&t, 0).unwrap(), (1, 0));
    let info = d.domain_get_info(&t).unwrap();
    assert_eq!(
        (info.state, info.max_mem, info.memory, info.nr_virt_cpu),
        (1, 8388608, 2097152, 2)
    );
    assert!(info.cpu_time > 0);
    assert_eq!(d.domain_get_os_type(&t).unwrap(), "linux");
    assert!(d.domain_is_persistent(&t).unwrap());
    assert_eq!(
        d.domain_get_security_label(&t).unwrap().label,
        "libvirt-test"
    );
}

#[test]
fn lookups_fail_with_bare_domain_not_found() {
    let d = private();
    let e = d.domain_lookup_by_name("nosuch").unwrap_err();
    assert_eq!(code(&e), (42, 12, "Domain not found"));
    assert!(d.domain_lookup_by_id(5).is_err());
    assert!(d.domain_lookup_by_uuid(&Uuid::random()).is_err());
}

#[test]
fn lifecycle_errors_and_reasons() {
    let d = private();
    let t = d.domain_lookup_by_name("test").unwrap();
    let e = d.domain_create(&t, 0).unwrap_err();
    assert_eq!(
        code(&e),
        (1, 12, "internal error: Domain 'test' is already running")
    );
    let e = d.domain_resume(&t).unwrap_err();
    assert_eq!(
        code(&e),
        (1, 12, "internal error: domain 'test' not paused")
    );
    d.domain_suspend(&t).unwrap();
    assert_eq!(d.domain_get_state(&t, 0).unwrap(), (3, 1));
    let e = d.domain_suspend(&t).unwrap_err();
    assert_eq!(
        code(&e),
        (1, 12, "internal error: domain 'test' not running")
    );
    d.domain_resume(&t).unwrap();
    assert_eq!(d.domain_get_state(&t, 0).unwrap(), (1, 5));
    d.domain_shutdown(&t, 0).unwrap();
    assert_eq!(d.domain_get_state(&t, 0).unwrap(), (5, 1));
    assert_eq!(d.domain_lookup_by_name("test").unwrap().id, -1);
    let e = d.domain_shutdown(&t, 0).unwrap_err();
    assert_eq!(
        code(&e),
        (1, 12, "internal error: domain 'test' not running")
    );
    let e = d.domain_destroy(&t, 0).unwrap_err();
    assert_eq!(
        code(&e),
        (
            55,
            20,
            "Requested operation is not valid: domain is not running"
        )
    );
    let e = d.domain_reboot(&t, 0).unwrap_err();
    assert_eq!(
        code(&e),
        (
            55,
            20,
            "Requested operation is not valid: domain is not running"
        )
    );
    assert_eq!(d.domain_create(&t, 0).unwrap().id, 2);
    assert_eq!(d.domain_get_state(&t, 0).unwrap(), (1, 1));
    d.domain_destroy(&t, 0).unwrap();
    assert_eq!(d.domain_get_state(&t, 0).unwrap(), (5, 2));
    assert_eq!(d.domain_create(&t, 0).unwrap().id, 3);
    d.domain_reboot(&t, 0).unwrap();
    assert_eq!(d.domain_get_state(&t, 0).unwrap(), (1, 1));
    let e = d.domain_create(&t, 1).unwrap_err();
    assert_eq!(
        code(&e),
        (
            8,
            12,
            "unsupported flags (0x1) in function testDomainCreateWithFlags"
        )
    );
}

#[test]
fn undefine_running_makes_transient_then_destroy_removes() {
    let d = private();
    let t = d.domain_lookup_by_name("test").unwrap();
    d.domain_set_autostart(&t, true).unwrap();
    assert!(d.domain_get_autostart(&t).unwrap());
    d.domain_undefine(&t, 0).unwrap();
    assert!(!d.domain_is_persistent(&t).unwrap());
    assert_eq!(d.domain_get_state(&t, 0).unwrap(), (1, 0));
    d.domain_destroy(&t, 0).unwrap();
    let e = d.domain_get_state(&t, 0).unwrap_err();
    assert_eq!(
        code(&e),
        (42, 12, "Domain not found: no domain with matching uuid '6695eb01-f6a4-8304-79aa-97f2502e193f' (test)")
    );
}

#[test]
fn define_conflicts_and_live_versus_persistent_definitions() {
    let d = private();
    let a = d.domain_define_xml(A, 0).unwrap();
    assert_eq!(a.id, -1);
    assert_eq!(d.domain_get_state(&a, 0).unwrap(), (5, 0));
    d.domain_define_xml(A, 0).unwrap();
    let e = d
        .domain_define_xml(&A.replace("11111111", "21111111"), 0)
        .unwrap_err();
    assert_eq!(
        code(&e),
        (9, 20, "operation failed: domain 'a' already exists with uuid 11111111-2222-3333-4444-555555555555")
    );
    let e = d
        .domain_define_xml(&A.replace("<name>a", "<name>b"), 0)
        .unwrap_err();
    assert_eq!(
        code(&e),
        (9, 20, "operation failed: domain 'a' is already defined with uuid 11111111-2222-3333-4444-555555555555")
    );
    assert_eq!(d.domain_create(&a, 0).unwrap().id, 2);
    let e = d.domain_create_xml(A, 0).unwrap_err();
    assert_eq!(
        code(&e),
        (
            55,
            20,
            "Requested operation is not valid: domain 'a' is already active"
        )
    );
    d.domain_define_xml(&A.replace("1024", "2048"), 0).unwrap();
    let live = d.domain_get_xml_desc(&a, 0).unwrap();
    let inactive = d.domain_get_xml_desc(&a, xml_flags::INACTIVE).unwrap();
    assert!(live.starts_with("<domain type='test' id='2'>"), "{live}");
    assert!(live.contains(">1024</memory>"));
    assert!(inactive.starts_with("<domain type='test'>"));
    assert!(inactive.contains(">2048</memory>"));
    assert_eq!(d.domain_get_info(&a).unwrap().max_mem, 1024);
    d.domain_destroy(&a, 0).unwrap();
    assert_eq!(d.domain_get_info(&a).unwrap().max_mem, 2048);
}

#[test]
fn transient_domains_vanish_when_stopped() {
    let d = private();
    let c = d
        .domain_create_xml(&A.replace("<name>a", "<name>c"), 0)
        .unwrap();
    assert_eq!(c.id, 2);
    assert!(!d.domain_is_persistent(&c).unwrap());
    let e = d
        .domain_create_xml(&A.replace("<name>a", "<name>c"), 1)
        .unwrap_err();
    assert_eq!(
        code(&e),
        (
            8,
            12,
            "unsupported flags (0x1) in function testDomainCreateXML"
        )
    );
    d.domain_shutdown(&c, 0).unwrap();
    assert!(d.domain_lookup_by_name("c").is_err());
}

#[test]
fn interface_names_follow_the_test_driver() {
    let d = private();
    let x = "<domain type='test'><name>n</name><memory>1024</memory><os><type>hvm</type></os><devices>\
        <interface type='user'><mac address='52:54:00:00:00:01'/></interface>\
        <interface type='user'><mac address='52:54:00:00:00:02'/><target dev='testnet0'/></interface>\
        <interface type='user'><mac address='52:54:00:00:00:03'/></interface></devices></domain>";
    let n = d.domain_define_xml(x, 0).unwrap();
    let xml = d.domain_get_xml_desc(&n, 0).unwrap();
    let devs: Vec<&str> = xml
        .lines()
        .filter(|l| l.contains("<target dev="))
        .map(str::trim)
        .collect();
    assert_eq!(
        devs,
        [
            "<target dev='testnet1'/>",
            "<target dev='testnet0'/>",
            "<target dev='testnet2'/>"
        ]
    );
    assert!(xml.contains("<type arch='i686'>hvm</type>"));
}

#[test]
fn list_filters() {
    use list_flags::*;
    let d = private();
    d.domain_define_xml(A, 0).unwrap();
    let names = |f| {
        d.list_all_domains(f)
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(0), ["test", "a"]);
    assert_eq!(names(ACTIVE), ["test"]);
    assert_eq!(names(INACTIVE), ["a"]);
    assert_eq!(names(ACTIVE | INACTIVE), ["test", "a"]);
    assert_eq!(names(SHUTOFF), ["a"]);
    assert_eq!(names(RUNNING | PAUSED), ["test"]);
    assert!(names(TRANSIENT).is_empty());
    assert!(names(AUTOSTART).is_empty());
    assert_eq!(names(NO_AUTOSTART).len(), 2);
    assert!(names(HAS_SNAPSHOT).is_empty());
    assert_eq!(names(NO_SNAPSHOT).len(), 2);
    let e = d.list_all_domains(1 << 20).unwrap_err();
    assert_eq!(
        code(&e),
        (
            8,
            12,
            "unsupported flags (0x100000) in function testConnectListAllDomains"
        )
    );
}

#[test]
fn events_are_raised_with_details() {
    let d = private();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let id = d
        .domain_event_register(Arc::new(move |e: &LifecycleEvent| {
            lock(&s2).push((e.dom.name.clone(), e.event, e.detail))
        }))
        .unwrap();
    let t = d.domain_lookup_by_name("test").unwrap();
    d.domain_suspend(&t).unwrap();
    d.domain_resume(&t).unwrap();
    d.domain_shutdown(&t, 0).unwrap();
    d.domain_create(&t, 0).unwrap();
    d.domain_reboot(&t, 0).unwrap();
    d.domain_destroy(&t, 0).unwrap();
    d.domain_define_xml(A, 0).unwrap();
    d.domain_define_xml(A, 0).unwrap();
    let a = d.domain_lookup_by_name("a").unwrap();
    d.domain_undefine(&a, 0).unwrap();
    let expect: Vec<(String, i32, i32)> = vec![
        ("test".into(), 3, 0),
        ("test".into(), 4, 0),
        ("test".into(), 5, 0),
        ("test".into(), 2, 0),
        ("test".into(), 5, 1),
        ("a".into(), 0, 0),
        ("a".into(), 0, 1),
        ("a".into(), 1, 0),
    ];
    assert_eq!(*lock(&seen), expect);
    d.domain_event_deregister(id).unwrap();
    d.domain_suspend(&t).unwrap_err();
    assert!(d.domain_event_deregister(id).is_err());
}

#[test]
fn default_state_is_shared_while_open() {
    // Runs against the process-wide test:///default; uses a domain name no
    // other test touches.
    let x = A
        .replace("<name>a", "<name>shared-probe")
        .replace("11111111", "99999999");
    let c1 = TestDriver::open("test:///default").unwrap();
    let c2 = TestDriver::open("test:///default").unwrap();
    c1.domain_define_xml(&x, 0).unwrap();
    assert!(c2.domain_lookup_by_name("shared-probe").is_ok());
    drop(c1);
    drop(c2);
    let c3 = TestDriver::open("test:///default").unwrap();
    // Other tests may hold connections concurrently; when none did, the
    // state was rebuilt.
    if Arc::strong_count(&c3.shared) == 1 && lock(&DEFAULT_STATE).strong_count() == 1 {
        assert!(c3.domain_lookup_by_name("shared-probe").is_err());
    }
}

#[test]
fn node_files_load_domains_in_their_states() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node.xml");
    std::fs::write(
        dir.path().join("d1.xml"),
        A.replace("<name>a", "<name>fromfile"),
    )
    .unwrap();
    std::fs::write(
        &node,
        "<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><domain file='d1.xml'/>\
         <domain type='test'><name>off</name><uuid>22222222-2222-3333-4444-555555555555</uuid>\
         <memory>2048</memory><os><type>hvm</type></os><test:runstate>5</test:runstate></domain>\
         <domain type='test'><name>p</name><uuid>33333333-2222-3333-4444-555555555555</uuid>\
         <memory>2048</memory><os><type>hvm</type></os><test:runstate>3</test:runstate><test:transient/></domain>\
         <cpu><model>i986</model></cpu></node>",
    )
    .unwrap();
    let d = TestDriver::open(&format!("test://{}", node.display())).unwrap();
    let refs = d.list_all_domains(0).unwrap();
    let got: Vec<(String, i32)> = refs.iter().map(|r| (r.name.clone(), r.id)).collect();
    assert_eq!(
        got,
        [
            ("fromfile".to_string(), 1),
            ("off".to_string(), -1),
            ("p".to_string(), 2)
        ]
    );
    assert_eq!(d.domain_get_state(&refs[2], 0).unwrap(), (3, 0));
    assert!(!d.domain_is_persistent(&refs[2]).unwrap());
    assert_eq!(d.node_get_info().unwrap().model, "i986");
    assert!(d.get_capabilities().unwrap().contains("<cells num='0'>"));
    let e = TestDriver::open("test:///nonexistent/node.xml").unwrap_err();
    assert_eq!(
        code(&e),
        (
            27,
            12,
            "XML error: failed to parse xml document '/nonexistent/node.xml'"
        )
    );
    let e = TestDriver::open("test://").unwrap_err();
    assert_eq!(
        code(&e),
        (
            8,
            12,
            "invalid argument: testOpen: supply a path or use test:///default"
        )
    );
}
