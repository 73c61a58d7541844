//! A load generator for libvirt's RPC protocol: many connections, many
//! calls in flight on each, over the raw protocol (no client library in
//! the way), to find a daemon's real ceiling.
//!
//! Each connection opens `test:///default` (or `--uri`), then repeatedly
//! sends `--depth` pairs of DOMAIN_LOOKUP_BY_NAME + DOMAIN_GET_INFO in one
//! write and reads all their replies. With `--pid`, the daemon's CPU time
//! per call is printed as well.
//!
//! ```text
//! ironvirt-loadgen --socket /run/libvirt/libvirt-sock --conns 8 --depth 16 --seconds 5 --pid 1234
//! ```

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironvirt_proto::packet::{encode_packet, Header};
use ironvirt_proto::procedures::num;
use ironvirt_proto::program::REMOTE_PROGRAM;
use ironvirt_proto::remote::{ConnectOpenArgs, DomainLookupByNameArgs};
use ironvirt_proto::Packet;

struct Opts {
    socket: String,
    uri: String,
    domain: String,
    conns: usize,
    depth: usize,
    seconds: f64,
    pid: Option<u32>,
}

const USAGE: &str = "usage: ironvirt-loadgen --socket PATH [--uri URI] [--domain NAME] [--conns N] [--depth N] [--seconds S] [--pid PID]";

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        socket: String::new(),
        uri: "test:///default".into(),
        domain: "test".into(),
        conns: 4,
        depth: 16,
        seconds: 5.0,
        pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{a} needs a value"));
        let bad = |e: std::num::ParseIntError| e.to_string();
        match a.as_str() {
            "--socket" => o.socket = v()?,
            "--uri" => o.uri = v()?,
            "--domain" => o.domain = v()?,
            "--conns" => o.conns = v()?.parse().map_err(bad)?,
            "--depth" => o.depth = v()?.parse().map_err(bad)?,
            "--seconds" => {
                o.seconds = v()?
                    .parse()
                    .map_err(|e: std::num::ParseFloatError| e.to_string())?
            }
            "--pid" => o.pid = Some(v()?.parse().map_err(bad)?),
            "-h" | "--help" => return Err(USAGE.into()),
            _ => return Err(format!("unknown option {a}\n{USAGE}")),
        }
    }
    if o.socket.is_empty() {
        return Err(USAGE.into());
    }
    Ok(o)
}

/// The daemon's user+system CPU time in seconds.
fn cpu(pid: u32) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

fn read_packet(s: &mut UnixStream, buf: &mut Vec<u8>) -> std::io::Result<Packet> {
    let mut lw = [0u8; 4];
    s.read_exact(&mut lw)?;
    let n = u32::from_be_bytes(lw) as usize;
    if !(28..=33_554_436).contains(&n) {
        return Err(std::io::Error::other(format!("bad length {n}")));
    }
    buf.resize(n, 0);
    buf[..4].copy_from_slice(&lw);
    s.read_exact(&mut buf[4..])?;
    Packet::parse(buf).map_err(|e| std::io::Error::other(e.to_string()))
}

fn worker(o: Arc<Opts>, stop: Arc<AtomicBool>, calls: Arc<AtomicU64>) -> Result<(), String> {
    let mut s = UnixStream::connect(&o.socket).map_err(|e| format!("connect {}: {e}", o.socket))?;
    let mut buf = Vec::new();
    let open = encode_packet(
        &Header::call(REMOTE_PROGRAM, 1, num::CONNECT_OPEN, 1),
        &ConnectOpenArgs {
            name: Some(o.uri.clone()),
            flags: 0,
        },
    )
    .map_err(|e| e.to_string())?;
    s.write_all(&open).map_err(|e| e.to_string())?;
    let r = read_packet(&mut s, &mut buf).map_err(|e| e.to_string())?;
    if r.header.status.0 != 0 {
        return Err(format!("open {} failed", o.uri));
    }
    // The domain handle, for the info calls.
    let lookup = |serial| {
        encode_packet(
            &Header::call(REMOTE_PROGRAM, 1, num::DOMAIN_LOOKUP_BY_NAME, serial),
            &DomainLookupByNameArgs {
                name: o.domain.clone(),
            },
        )
    };
    s.write_all(&lookup(2).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let r = read_packet(&mut s, &mut buf).map_err(|e| e.to_string())?;
    if r.header.status.0 != 0 {
        return Err(format!("domain {} not found", o.domain));
    }
    let dom_payload = r.payload.clone();
    // One batch: depth × (lookup, info), built once.
    let mut batch = Vec::new();
    for i in 0..o.depth as u32 {
        batch.extend(lookup(10 + 2 * i).map_err(|e| e.to_string())?);
        let mut info = encode_packet(
            &Header::call(REMOTE_PROGRAM, 1, num::DOMAIN_GET_INFO, 11 + 2 * i),
            &(),
        )
        .map_err(|e| e.to_string())?;
        info.extend_from_slice(&dom_payload);
        let len = (info.len() as u32).to_be_bytes();
        info[..4].copy_from_slice(&len);
        batch.extend(info);
    }
    while !stop.load(Ordering::Relaxed) {
        s.write_all(&batch).map_err(|e| e.to_string())?;
        for _ in 0..2 * o.depth {
            let r = read_packet(&mut s, &mut buf).map_err(|e| e.to_string())?;
            if r.header.status.0 != 0 {
                return Err(format!("call {} failed", r.header.proc_));
            }
        }
        calls.fetch_add(2 * o.depth as u64, Ordering::Relaxed);
    }
    Ok(())
}

fn main() {
    let o = match parse() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..o.conns)
        .map(|_| {
            let (o, stop, calls) = (o.clone(), stop.clone(), calls.clone());
            std::thread::spawn(move || worker(o, stop, calls))
        })
        .collect();
    // Warm up, then measure.
    std::thread::sleep(Duration::from_millis(300));
    let c0 = calls.load(Ordering::Relaxed);
    let cpu0 = o.pid.map(cpu).unwrap_or(0.0);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(o.seconds));
    let n = calls.load(Ordering::Relaxed) - c0;
    let dt = t0.elapsed().as_secs_f64();
    let cpu1 = o.pid.map(cpu).unwrap_or(0.0);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("worker: {e}");
                std::process::exit(1);
            }
            Err(_) => std::process::exit(1),
        }
    }
    println!("conns {} depth {} calls {n} in {dt:.2}s", o.conns, o.depth);
    println!("throughput {:.0} calls/s", n as f64 / dt);
    if o.pid.is_some() && n > 0 {
        println!(
            "server_cpu {:.2} us/call ({:.0}% of a core)",
            1e6 * (cpu1 - cpu0) / n as f64,
            100.0 * (cpu1 - cpu0) / dt
        );
    }
}
