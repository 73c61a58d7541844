//! The daemon: listeners, accepting clients, graceful shutdown.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::conn;
use crate::drivers::Drivers;

/// Tunables (libvirtd.conf names in brackets).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most clients at once [`max_clients`].
    pub max_clients: usize,
    /// Most slow calls of one client in progress at once [`max_client_requests`].
    pub max_client_requests: usize,
    /// Idle time before the daemon pings a client [`keepalive_interval`];
    /// zero disables the daemon's pings.
    pub keepalive_interval: Duration,
    /// Unanswered pings before a client is dropped [`keepalive_count`].
    pub keepalive_count: u32,
    /// Most TLS clients in their handshake at once
    /// [`max_anonymous_clients`].
    pub max_anonymous_clients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clients: 5000,
            max_client_requests: 5,
            keepalive_interval: conn::KEEPALIVE_INTERVAL,
            keepalive_count: conn::KEEPALIVE_COUNT,
            max_anonymous_clients: 20,
        }
    }
}

/// State shared by every connection.
pub struct Daemon {
    /// The hypervisor drivers.
    pub drivers: Drivers,
    /// Log every call.
    pub verbose: bool,
    /// Tunables.
    pub limits: Limits,
    /// Turns true when the daemon stops.
    pub shutdown: watch::Receiver<bool>,
    /// Event callback ids, unique in the daemon.
    pub next_callback_id: AtomicI32,
    clients: AtomicUsize,
    next_conn: AtomicU64,
}

/// A bound listener and what its clients may do.
pub enum Listener {
    /// A UNIX socket; `readonly` for `libvirt-sock-ro`.
    Unix {
        l: std::os::unix::net::UnixListener,
        path: PathBuf,
        readonly: bool,
    },
    /// Plain TCP.
    Tcp(std::net::TcpListener),
    /// TLS over TCP.
    Tls(std::net::TcpListener, Arc<crate::tls::Context>),
}

/// Longest a TLS client may take for its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the daemon until SIGTERM or SIGINT; then stops accepting, closes
/// every client, removes the socket files and returns.
pub async fn run(
    drivers: Drivers,
    verbose: bool,
    limits: Limits,
    listeners: Vec<Listener>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let daemon = Arc::new(Daemon {
        drivers,
        verbose,
        limits,
        shutdown: stop_rx,
        next_callback_id: AtomicI32::new(0),
        clients: AtomicUsize::new(0),
        next_conn: AtomicU64::new(1),
    });
    // Every connection task holds a sender: all gone = all clients closed.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let mut paths = Vec::new();
    let mut accept_tasks = Vec::new();
    for l in listeners {
        let d = daemon.clone();
        let alive = alive_tx.clone();
        match l {
            Listener::Unix { l, path, readonly } => {
                let l = tokio::net::UnixListener::from_std(l)?;
                // Remember which file is ours: at shutdown, a socket file that
                // another daemon has bound since (after this one's directory
                // was removed and made again) is left alone.
                let ino = std::fs::metadata(&path).map(|m| (m.dev(), m.ino())).ok();
                paths.push((path, ino));
                accept_tasks.push(tokio::spawn(async move {
                    let mut stop = d.shutdown.clone();
                    loop {
                        tokio::select! {
                            _ = stop.changed() => break,
                            r = l.accept() => match r {
                                Ok((s, _)) => spawn_client(&d, s, readonly, &alive),
                                Err(e) => accept_error(e).await,
                            }
                        }
                    }
                }));
            }
            Listener::Tcp(l) => {
                let l = tokio::net::TcpListener::from_std(l)?;
                accept_tasks.push(tokio::spawn(async move {
                    let mut stop = d.shutdown.clone();
                    loop {
                        tokio::select! {
                            _ = stop.changed() => break,
                            r = l.accept() => match r {
                                Ok((s, peer)) => {
                                    tracing::debug!(%peer, "TCP client");
                                    let _ = s.set_nodelay(true);
                                    spawn_client(&d, s, false, &alive)
                                }
                                Err(e) => accept_error(e).await,
                            }
                        }
                    }
                }));
            }
            Listener::Tls(l, ctx) => {
                let l = tokio::net::TcpListener::from_std(l)?;
                let handshaking = Arc::new(AtomicUsize::new(0));
                accept_tasks.push(tokio::spawn(async move {
                    let mut stop = d.shutdown.clone();
                    loop {
                        tokio::select! {
                            _ = stop.changed() => break,
                            r = l.accept() => match r {
                                Ok((s, peer)) => tls_client(&d, &ctx, &handshaking, s, peer, &alive),
                                Err(e) => accept_error(e).await,
                            }
                        }
                    }
                }));
            }
        }
    }
    drop(alive_tx);
    tracing::info!("ironvirtd ready");

    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for t in accept_tasks {
        let _ = t.await;
    }
    for (p, ino) in &paths {
        let now = std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
        if now.is_none() || now != *ino {
            continue;
        }
        if let Err(e) = std::fs::remove_file(p) {
            tracing::warn!(path = %p.display(), "cannot remove socket: {e}");
        }
    }
    // Clients close at once; give them a moment to write what they have.
    if tokio::time::timeout(Duration::from_secs(10), alive_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("some clients did not close in time");
    }
    Ok(())
}

fn spawn_client<S: crate::sock::Sock>(
    d: &Arc<Daemon>,
    s: S,
    readonly: bool,
    alive: &mpsc::Sender<()>,
) {
    let n = d.clients.fetch_add(1, Ordering::Relaxed);
    if n >= d.limits.max_clients {
        d.clients.fetch_sub(1, Ordering::Relaxed);
        tracing::warn!(max = d.limits.max_clients, "too many clients, refusing one");
        return;
    }
    let id = d.next_conn.fetch_add(1, Ordering::Relaxed);
    let d = d.clone();
    let alive = alive.clone();
    tokio::spawn(async move {
        conn::serve(s, d.clone(), readonly, id).await;
        d.clients.fetch_sub(1, Ordering::Relaxed);
        drop(alive);
    });
}

/// Runs a TLS client's handshake in its own task, then serves it like a
/// UNIX client (read-write).
fn tls_client(
    d: &Arc<Daemon>,
    ctx: &Arc<crate::tls::Context>,
    handshaking: &Arc<AtomicUsize>,
    s: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    alive: &mpsc::Sender<()>,
) {
    let n = handshaking.fetch_add(1, Ordering::Relaxed);
    if n >= d.limits.max_anonymous_clients {
        handshaking.fetch_sub(1, Ordering::Relaxed);
        tracing::warn!(%peer, max = d.limits.max_anonymous_clients, "too many TLS handshakes at once, refusing one");
        return;
    }
    let _ = s.set_nodelay(true);
    let (d, ctx, handshaking, alive) = (d.clone(), ctx.clone(), handshaking.clone(), alive.clone());
    tokio::spawn(async move {
        let mut stop = d.shutdown.clone();
        let res = tokio::select! {
            _ = stop.changed() => None,
            r = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, ctx.accept(s)) => Some(r),
        };
        handshaking.fetch_sub(1, Ordering::Relaxed);
        match res {
            None => {}
            Some(Err(_)) => {
                tracing::info!(%peer, "TLS client did not finish its handshake in time")
            }
            Some(Ok(Err(e))) => tracing::warn!(%peer, "refusing TLS client: {e}"),
            Some(Ok(Ok(sock))) => {
                tracing::debug!(%peer, "TLS client");
                spawn_client(&d, sock, false, &alive);
            }
        }
    });
}

async fn accept_error(e: std::io::Error) {
    // Out of descriptors and the like: wait a little instead of spinning.
    tracing::warn!("accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            tracing::error!("cannot install signal handlers");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
