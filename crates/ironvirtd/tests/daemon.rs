//! The daemon process: sockets and their modes, graceful shutdown, a
//! second daemon on the same sockets, stale sockets, the TCP listener.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

#[test]
fn sockets_have_libvirtd_modes() {
    let d = Daemon::start();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.rw()), 0o700);
    assert_eq!(mode(&d.ro()), 0o777);
}

#[test]
fn sigterm_closes_clients_and_removes_sockets() {
    let mut d = Daemon::start();
    let mut c = Raw::connect(&d.rw());
    assert!(c.open("test:///default").ok());
    d.signal(libc::SIGTERM);
    let st = d
        .wait(Duration::from_secs(15))
        .expect("ironvirtd did not stop on SIGTERM");
    assert!(st.success(), "{st}: {}", d.log());
    assert!(!d.rw().exists() && !d.ro().exists(), "sockets left behind");
    assert!(c.closed(), "client not closed");
}

#[test]
fn sigint_stops_too() {
    let mut d = Daemon::start();
    d.signal(libc::SIGINT);
    let st = d
        .wait(Duration::from_secs(15))
        .expect("ironvirtd did not stop on SIGINT");
    assert!(st.success());
    assert!(!d.rw().exists());
}

#[test]
fn second_daemon_on_the_same_sockets_is_refused() {
    let d = Daemon::start();
    let o = Command::new(env!("CARGO_BIN_EXE_ironvirtd"))
        .arg("--socket-dir")
        .arg(&d.sock_dir)
        .arg("--state-dir")
        .arg(d.dir.path().join("state2"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("in use by another running daemon"), "{err}");
    // The first one is untouched.
    assert_serving(&d);
}

#[test]
fn stale_sockets_are_replaced() {
    let mut d = Daemon::start();
    // A daemon killed without cleaning up leaves its socket files behind.
    d.signal(libc::SIGKILL);
    d.wait(Duration::from_secs(5)).expect("killed");
    assert!(d.rw().exists() && d.ro().exists());
    d.spawn(&[]);
    assert_serving(&d);
}

#[test]
fn config_file_sets_socket_modes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ironvirtd.conf");
    std::fs::write(
        &cfg,
        "unix_sock_rw_perms = \"0770\"\nunix_sock_ro_perms = \"0755\"\nmax_clients = 10\n",
    )
    .unwrap();
    let d = Daemon::start_with(&["--config", cfg.to_str().unwrap()]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.rw()), 0o770);
    assert_eq!(mode(&d.ro()), 0o755);
    let bad = dir.path().join("bad.conf");
    std::fs::write(&bad, "unix_sock_rw_perms = \"rw\"\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ironvirtd"))
        .args([
            "--socket-dir",
            dir.path().join("s").to_str().unwrap(),
            "--config",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an octal mode"));
}

#[test]
fn tcp_listener_serves_the_protocol() {
    // Find a free port, then hand it to the daemon.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::start_with(&["--listen-tcp", &addr]);
    let o = virsh(
        &format!("test+tcp://127.0.0.1:{port}/default"),
        &["list", "--all"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(" 1    test   running"),
        "{out}{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        d.log()
    );
}

#[test]
fn many_clients_at_once() {
    let d = Daemon::start();
    let uri = d.test_uri();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let uri = uri.clone();
            std::thread::spawn(move || {
                let o = virsh(&uri, &["list --all; dominfo test; nodeinfo; domstate test"]);
                String::from_utf8_lossy(&o.stdout).to_string()
            })
        })
        .collect();
    for t in threads {
        let out = t.join().unwrap();
        assert!(
            out.contains("running") && out.contains("CPU model:"),
            "{out}"
        );
    }
    // The default state lives while connections are open, and only then.
    let name = unique("gone");
    let xml = d.dir.path().join("x.xml");
    std::fs::write(&xml, format!("<domain type='test'><name>{name}</name><memory>1024</memory><os><type>hvm</type></os></domain>")).unwrap();
    let o = virsh(&uri, &["define", xml.to_str().unwrap()]);
    assert!(o.status.success());
    let o = virsh(&uri, &["list", "--all", "--name"]);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains(&name),
        "a connection leaked: the state survived"
    );
}

/// A daemon stopping removes its own socket files only: when its socket
/// directory was removed under it and another daemon bound new sockets
/// there, those stay.
#[test]
fn shutdown_leaves_a_newer_daemons_sockets_alone() {
    let mut a = Daemon::start();
    std::fs::remove_dir_all(&a.sock_dir).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut b = Daemon {
        child: None,
        sock_dir: a.sock_dir.clone(),
        state_dir: dir.path().join("state"),
        dir,
    };
    b.spawn(&[]);
    a.signal(libc::SIGTERM);
    assert!(
        a.wait(Duration::from_secs(10)).is_some(),
        "first daemon did not stop"
    );
    assert!(
        b.rw().exists() && b.ro().exists(),
        "the second daemon's sockets were removed"
    );
    assert_serving(&b);
}
