//! Times lookup+info round trips through the Rust client, from one or more
//! threads sharing one connection, and the client's own CPU time per call:
//! `cargo run --release -p ironvirt-remote --example remote_calls -- URI [N] [THREADS] [ROUNDS]`.
//!
//! N is the number of lookup+info pairs per thread and round (two calls
//! each, as `rpc_bench.py` counts them). Each round prints calls per
//! second, the client process's CPU time (user + system, every thread) and
//! context switches per call, and the 1-minute load average when the round
//! ended.

use ironvirt_driver::{Driver, Uri};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// User + system CPU time of this whole process so far, and its context
/// switches (voluntary + involuntary, every thread).
fn usage() -> (Duration, u64) {
    // SAFETY: rusage is plain old data; all-zero bytes are a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own and has no other effect.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (Duration::ZERO, 0);
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (
        tv(ru.ru_utime) + tv(ru.ru_stime),
        (ru.ru_nvcsw + ru.ru_nivcsw) as u64,
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Context switches of the connection's own threads (`remote-*`),
/// from /proc: how often they were woken.
fn helper_switches() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let comm = comm.trim();
        if !comm.starts_with("remote-") {
            continue;
        }
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        let n: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        out.push((comm.to_string(), n));
    }
    out.sort();
    out
}

fn pairs(conn: &dyn Driver, n: u32) -> Result<(), ironvirt_driver::Error> {
    for _ in 0..n {
        let d = conn.domain_lookup_by_name("test")?;
        conn.domain_get_info(&d)?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let uri = args
        .next()
        .unwrap_or_else(|| "test+unix:///default?socket=/run/libvirt-ref/libvirt-sock".into());
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5000);
    let threads: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let rounds: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2);
    let conn = ironvirt_remote::open(&Uri::parse(&uri)?, false)?;
    for _ in 0..rounds {
        let (cpu0, cs0) = usage();
        let t = Instant::now();
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let c = Arc::clone(&conn);
                std::thread::spawn(move || pairs(c.as_ref(), n))
            })
            .collect();
        for h in hs {
            h.join().map_err(|_| "a calling thread panicked")??;
        }
        let dt = t.elapsed().as_secs_f64();
        let calls = 2.0 * f64::from(n) * f64::from(threads);
        let (cpu1, cs1) = usage();
        let cpu = (cpu1 - cpu0).as_secs_f64();
        println!(
            "lookup_info {threads}thread(s) 1conn {:.0} calls/s, client CPU {:.1} us/call, {:.2} context switches/call, load {}",
            calls / dt,
            cpu * 1e6 / calls,
            (cs1 - cs0) as f64 / calls,
            load_average()
        );
    }
    println!(
        "connection threads' context switches: {:?}",
        helper_switches()
    );
    Ok(())
}
