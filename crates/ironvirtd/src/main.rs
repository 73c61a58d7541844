//! ironvirtd, the daemon that serves libvirt's RPC protocol: every libvirt
//! client (virsh, the language bindings) works against it unchanged.

mod args;
mod config;
mod conn;
mod dispatch;
mod drivers;
mod listen;
mod outbox;
mod server;
mod sock;
mod tls;
mod x509;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use config::Config;
use server::{Limits, Listener};

/// libvirtd's default permissions: the read-write socket for its owner
/// only, the read-only one for everybody.
const RW_PERMS: u32 = 0o700;
const RO_PERMS: u32 = 0o777;

fn main() -> ExitCode {
    let opts = match args::parse(std::env::args().skip(1)) {
        Ok(args::Parsed::Run(o)) => o,
        Ok(args::Parsed::Help) => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(args::Parsed::Version) => {
            println!("ironvirtd {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ironvirtd: {e}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    init_logging(opts.verbose);
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("ironvirtd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("IRONVIRTD_LOG").unwrap_or_else(|_| {
        EnvFilter::new(if verbose {
            "info"
        } else {
            "warn,ironvirtd=info,ironvirt_qemu=info"
        })
    });
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_ansi(false)
        .init();
}

/// `host:port`, or a host alone for libvirt's TLS port (`[v6]` or a bare
/// name or address).
fn tls_addr(addr: &str) -> String {
    let has_port = if addr.starts_with('[') {
        addr.contains("]:")
    } else {
        addr.matches(':').count() == 1
    };
    if has_port {
        addr.to_string()
    } else if addr.contains(':') && !addr.starts_with('[') {
        format!("[{addr}]:{}", tls::DEFAULT_PORT)
    } else {
        format!("{addr}:{}", tls::DEFAULT_PORT)
    }
}

fn run(opts: args::Options) -> Result<(), String> {
    let cfg = match &opts.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let sock_dir = opts
        .socket_dir
        .clone()
        .or_else(|| cfg.str("unix_sock_dir").map(PathBuf::from))
        .unwrap_or_else(listen::default_socket_dir);
    let state_dir = opts
        .state_dir
        .clone()
        .unwrap_or_else(listen::default_state_dir);
    let rw_perms = cfg.perms("unix_sock_rw_perms")?.unwrap_or(RW_PERMS);
    let ro_perms = cfg.perms("unix_sock_ro_perms")?.unwrap_or(RO_PERMS);
    let mut limits = Limits::default();
    let positive = |key: &str| -> Result<Option<i64>, String> {
        match cfg.int(key) {
            Some(v) if v < 0 => Err(format!("{key} must not be negative")),
            v => Ok(v),
        }
    };
    if let Some(v) = positive("max_clients")? {
        limits.max_clients = v as usize;
    }
    if let Some(v) = positive("max_client_requests")? {
        limits.max_client_requests = (v as usize).max(1);
    }
    if let Some(v) = cfg.int("keepalive_interval") {
        // libvirtd: -1 disables keepalive.
        limits.keepalive_interval = Duration::from_secs(v.max(0) as u64);
    }
    if let Some(v) = positive("keepalive_count")? {
        limits.keepalive_count = v as u32;
    }
    if let Some(v) = positive("max_anonymous_clients")? {
        limits.max_anonymous_clients = (v as usize).max(1);
    }
    let max_workers = positive("max_workers")?.unwrap_or(20).max(1) as usize;

    // Credentials first: a daemon that cannot serve TLS does not start.
    let tls = match &opts.listen_tls {
        Some(addr) => {
            let settings = tls::Settings::from_config(&cfg, listen::is_root(), &listen::home())?;
            let ctx = tls::Context::load(&settings)?;
            Some((tls_addr(addr), settings, ctx))
        }
        None => None,
    };

    for (what, dir) in [("socket", &sock_dir), ("state", &state_dir)] {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {what} directory '{}': {e}", dir.display()))?;
    }
    let rw_path = sock_dir.join(listen::RW_SOCK);
    let ro_path = sock_dir.join(listen::RO_SOCK);
    let rw = listen::bind_unix(&rw_path, rw_perms)?;
    let ro = match listen::bind_unix(&ro_path, ro_perms) {
        Ok(l) => l,
        Err(e) => {
            drop(rw);
            let _ = std::fs::remove_file(&rw_path);
            return Err(e);
        }
    };
    let mut listeners = vec![
        Listener::Unix {
            l: rw,
            path: rw_path.clone(),
            readonly: false,
        },
        Listener::Unix {
            l: ro,
            path: ro_path.clone(),
            readonly: true,
        },
    ];
    if let Some(addr) = &opts.listen_tcp {
        let l = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("cannot listen on TCP '{addr}': {e}"))?;
        l.set_nonblocking(true)
            .map_err(|e| format!("cannot listen on TCP '{addr}': {e}"))?;
        tracing::info!(%addr, "listening on TCP (no authentication, no encryption)");
        listeners.push(Listener::Tcp(l));
    }
    if let Some((addr, settings, ctx)) = tls {
        let l = std::net::TcpListener::bind(&addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("cannot listen on TLS '{addr}': {e}"));
        let l = match l {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_file(&rw_path);
                let _ = std::fs::remove_file(&ro_path);
                return Err(e);
            }
        };
        tracing::info!(
            %addr,
            cert = %settings.cert.display(),
            ca = %settings.ca.display(),
            verify = settings.verify,
            "listening on TLS"
        );
        listeners.push(Listener::Tls(l, std::sync::Arc::new(ctx)));
    }
    tracing::info!(socket_dir = %sock_dir.display(), state_dir = %state_dir.display(), "listening");

    let drivers = drivers::Drivers::new(state_dir, listen::is_root());
    drivers.start_early();
    // One thread serves every connection; calls that may block run on the
    // blocking pool. Quick calls never change threads.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(max_workers)
        .thread_name("ironvirtd-worker")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let res = rt.block_on(server::run(drivers, opts.verbose, limits, listeners));
    // Let blocking calls in progress (driver writes) finish.
    rt.shutdown_timeout(Duration::from_secs(10));
    res.map_err(|e| format!("{e}"))?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tls_addr_defaults_to_libvirts_port() {
        assert_eq!(super::tls_addr("127.0.0.1:1234"), "127.0.0.1:1234");
        assert_eq!(super::tls_addr("127.0.0.1"), "127.0.0.1:16514");
        assert_eq!(super::tls_addr("localhost"), "localhost:16514");
        assert_eq!(super::tls_addr("::1"), "[::1]:16514");
        assert_eq!(super::tls_addr("[::1]"), "[::1]:16514");
        assert_eq!(super::tls_addr("[::1]:99"), "[::1]:99");
    }
}
