//! Calls per second through the Rust client: DOMAIN_LOOKUP_BY_NAME +
//! DOMAIN_GET_INFO (two calls an iteration, as `rpc_bench.py` counts them)
//! on `test:///default`, from one thread and from four threads sharing one
//! connection.
//!
//! Daemons: the reference libvirtd at /run/libvirt-ref/libvirt-sock and
//! ironvirtd (the one at `$IRONVIRTD_SOCK` if set, else one started from
//! `target/<profile>/ironvirtd`). A daemon that is not there is skipped.
//!
//! `cargo build --release -p ironvirtd && cargo bench -p ironvirt-remote`
//!
//! On a small VM, where the client and the daemon run (one vCPU or two)
//! moves the figures more than anything else: docs/BENCHMARKS.md pins both
//! with `taskset` for comparable runs.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ironvirt_driver::{Driver, Uri};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Started {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_ironvirtd() -> Option<(PathBuf, Started)> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("ironvirtd");
    if !bin.is_file() {
        eprintln!("ironvirtd: {} not built, skipped", bin.display());
        return None;
    }
    let dir = tempfile::tempdir().ok()?;
    let child = Command::new(&bin)
        .arg("--socket-dir")
        .arg(dir.path().join("run"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let sock = dir.path().join("run/libvirt-sock");
    let started = Started { child, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        if Instant::now() > deadline {
            eprintln!("ironvirtd did not start, skipped");
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((sock, started))
}

fn lookup_info(c: &dyn Driver) {
    let d = c.domain_lookup_by_name("test").expect("lookup");
    let info = c.domain_get_info(&d).expect("info");
    assert!(info.nr_virt_cpu > 0);
}

fn bench_daemon(cr: &mut Criterion, label: &str, sock: &Path) {
    let uri = Uri::parse(&format!("test+unix:///default?socket={}", sock.display())).expect("uri");
    let conn = match ironvirt_remote::open(&uri, false) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{label}: {e}, skipped");
            return;
        }
    };
    let mut g = cr.benchmark_group("lookup_info");
    g.throughput(Throughput::Elements(2));
    g.bench_function(format!("{label}_1thread"), |b| {
        b.iter(|| lookup_info(conn.as_ref()))
    });
    g.bench_function(format!("{label}_4threads_1conn"), |b| {
        b.iter_custom(|iters| {
            let per = iters.div_ceil(4);
            let t = Instant::now();
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let c: Arc<dyn Driver> = Arc::clone(&conn);
                    std::thread::spawn(move || {
                        for _ in 0..per {
                            lookup_info(c.as_ref());
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().expect("thread");
            }
            t.elapsed().mul_f64(iters as f64 / (per * 4) as f64)
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let reference = Path::new("/run/libvirt-ref/libvirt-sock");
    if reference.exists() {
        bench_daemon(c, "reference", reference);
    } else {
        eprintln!("reference libvirtd not running, skipped");
    }
    let (sock, _started) = match std::env::var_os("IRONVIRTD_SOCK") {
        Some(s) => (PathBuf::from(s), None),
        None => match start_ironvirtd() {
            Some((s, st)) => (s, Some(st)),
            None => return,
        },
    };
    bench_daemon(c, "ironvirtd", &sock);
}

criterion_group!(name = group; config = Criterion::default().measurement_time(Duration::from_secs(5)); targets = benches);
criterion_main!(group);
