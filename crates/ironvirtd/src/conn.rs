//! One client connection: a single task that reads packets, answers quick
//! calls on the spot, sends slow ones to the blocking pool, writes replies
//! and events without ever blocking, and pings an idle client.
//!
//! Replies produced by the task itself go straight to its own queue and
//! are written with one `writev` per batch of calls. When the client stops
//! reading, the task stops reading its calls (the client only stalls
//! itself); events raised by other clients are bounded (see
//! [`crate::outbox`]) and drop a client that lets them pile up.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironvirt_driver::Error;
use ironvirt_proto::packet::{check_frame, Need, HEADER_SIZE, LEN_SIZE};
use ironvirt_proto::program::{self, keepalive};
use ironvirt_proto::{
    error_packet, keepalive_packet, procedures, Header, MessageType, Packet, ProtoError,
    RemoteError, Status,
};
use ironvirt_xdr::{Decoder, XdrDecode};
use tokio::sync::mpsc;

use crate::dispatch::{Action, Session};
use crate::drivers::Opened;
use crate::outbox::Outbox;
use crate::server::Daemon;
use crate::sock::Sock;

/// Read buffer size kept between calls.
const RBUF: usize = 64 * 1024;
/// Queued reply bytes above which the task stops reading new calls.
const REPLY_HIGH: usize = 1 << 20;
/// Most iovecs handed to one `writev`.
const MAX_IOV: usize = 64;

/// What a blocking job sends back.
enum Done {
    Reply(Vec<u8>),
    Opened(Header, Result<Opened, Error>, bool),
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    Eof,
    Closed,
    Shutdown,
    Io(io::Error),
    Proto(ProtoError),
    Dropped(&'static str),
}

struct Reader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Reader {
    fn compact(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > RBUF {
                self.buf.truncate(RBUF);
                self.buf.shrink_to_fit();
            }
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Makes room for the packet at the front (its length word is validated).
    fn make_room(&mut self) -> Result<(), ProtoError> {
        self.compact();
        if self.end == self.buf.len() {
            let want = match check_frame(&self.buf[..self.end])? {
                Need::More(n) => self.end + n,
                Need::Complete(_) => self.end,
            };
            // Grow by what has arrived, at most doubling, so a length word
            // alone never allocates 32 MiB.
            let new = want.min(self.buf.len() * 2).max(self.end + 1);
            self.buf.resize(new, 0);
        }
        Ok(())
    }
}

struct Writer {
    pending: VecDeque<Vec<u8>>,
    /// Bytes of the first pending message already written.
    off: usize,
}

impl Writer {
    fn push(&mut self, out: &Outbox, pkt: Vec<u8>) {
        out.queued.fetch_add(pkt.len(), Ordering::Relaxed);
        self.pending.push_back(pkt);
    }

    /// Writes what the socket takes now.
    fn flush<S: Sock>(&mut self, sock: &S, out: &Outbox) -> io::Result<()> {
        match sock.try_flush() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
        while !self.pending.is_empty() {
            let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(self.pending.len().min(MAX_IOV));
            for (i, m) in self.pending.iter().take(MAX_IOV).enumerate() {
                iov.push(IoSlice::new(if i == 0 { &m[self.off..] } else { m }));
            }
            let n = match sock.try_write_vectored(&iov) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            drop(iov);
            out.queued.fetch_sub(n, Ordering::Relaxed);
            let mut left = n;
            while left > 0 {
                let Some(front) = self.pending.front() else {
                    break;
                };
                let rest = front.len() - self.off;
                if left >= rest {
                    left -= rest;
                    self.off = 0;
                    self.pending.pop_front();
                } else {
                    self.off += left;
                    left = 0;
                }
            }
        }
        Ok(())
    }
}

/// Serves one client until it leaves, misbehaves or the daemon stops.
pub async fn serve<S: Sock>(sock: S, daemon: Arc<Daemon>, readonly: bool, id: u64) {
    let out = Arc::new(Outbox::default());
    let secure = sock.is_secure();
    let mut sess = Session::new(daemon.clone(), out.clone(), readonly, secure);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut shutdown = daemon.shutdown.clone();
    let mut rd = Reader {
        buf: vec![0; RBUF],
        start: 0,
        end: 0,
    };
    let mut wr = Writer {
        pending: VecDeque::new(),
        off: 0,
    };
    let mut inflight = 0usize;
    let mut closing = false;
    let ka_interval = daemon.limits.keepalive_interval;
    let mut ka: Option<tokio::time::Interval> = None;
    let mut ka_unanswered = 0u32;
    let mut last_rx = Instant::now();
    let verbose = daemon.verbose;
    tracing::debug!(conn = id, readonly, "client connected");

    let end = loop {
        if out.is_dead() {
            break End::Dropped("it stopped reading its events");
        }
        if closing && wr.pending.is_empty() && !sock.has_pending_output() {
            break End::Closed;
        }
        if sess.keepalive && ka.is_none() && !ka_interval.is_zero() {
            let mut iv =
                tokio::time::interval_at(tokio::time::Instant::now() + ka_interval, ka_interval);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ka = Some(iv);
            last_rx = Instant::now();
        }
        let want_read = !closing
            && inflight < daemon.limits.max_client_requests
            && out.queued.load(Ordering::Relaxed) < REPLY_HIGH;
        let want_write = !wr.pending.is_empty() || sock.has_pending_output();
        tokio::select! {
            biased;
            _ = shutdown.changed() => break End::Shutdown,
            Some(done) = done_rx.recv() => {
                inflight -= 1;
                match done {
                    Done::Reply(pkt) => wr.push(&out, pkt),
                    Done::Opened(hdr, res, ro) => {
                        let pkt = sess.finish_open(&hdr, res, ro);
                        log_call(verbose, id, &hdr, None, &pkt);
                        wr.push(&out, pkt);
                    }
                }
            }
            _ = out.notify.notified() => {
                // Their bytes were counted when they were queued.
                out.take(&mut wr.pending);
            }
            r = sock.writable(), if want_write => {
                if let Err(e) = r {
                    break End::Io(e);
                }
            }
            r = sock.readable(), if want_read => {
                if let Err(e) = r {
                    break End::Io(e);
                }
                match read_some(&sock, &mut rd) {
                    Ok(0) => break End::Eof,
                    Ok(_) => {}
                    Err(ReadErr::WouldBlock) => continue,
                    Err(ReadErr::Io(e)) => break End::Io(e),
                    Err(ReadErr::Proto(e)) => break End::Proto(e),
                }
                if ka.is_some() {
                    last_rx = Instant::now();
                    ka_unanswered = 0;
                }
                // Every complete packet in the buffer.
                loop {
                    let len = match check_frame(&rd.buf[rd.start..rd.end]) {
                        Ok(Need::Complete(len)) => len,
                        Ok(Need::More(_)) => break,
                        Err(e) => {
                            closing = true;
                            wr.pending.clear();
                            tracing::debug!(conn = id, "bad packet length: {e}");
                            break;
                        }
                    };
                    let at = rd.start;
                    rd.start += len;
                    let pkt = &rd.buf[at..at + len];
                    let hdr = match Header::decode(&mut Decoder::new(&pkt[LEN_SIZE..LEN_SIZE + HEADER_SIZE])) {
                        Ok(h) => h,
                        Err(_) => continue,
                    };
                    let payload = &pkt[LEN_SIZE + HEADER_SIZE..];
                    let t0 = verbose.then(Instant::now);
                    match message(&mut sess, &hdr, payload) {
                        Msg::None => {}
                        Msg::Close => {
                            closing = true;
                            break;
                        }
                        Msg::Send(p) => wr.push(&out, p),
                        Msg::Act(a) => match a {
                            Action::Reply(p) => {
                                log_call(verbose, id, &hdr, t0, &p);
                                wr.push(&out, p);
                            }
                            Action::ReplyThenClose(p) => {
                                log_call(verbose, id, &hdr, t0, &p);
                                wr.push(&out, p);
                                closing = true;
                                break;
                            }
                            Action::Blocking(job) => {
                                inflight += 1;
                                let tx = done_tx.clone();
                                tokio::task::spawn_blocking(move || {
                                    let p = job();
                                    log_call(verbose, id, &hdr, t0, &p);
                                    let _ = tx.send(Done::Reply(p));
                                });
                            }
                            Action::Open(hdr, target, ro) => {
                                inflight += 1;
                                let tx = done_tx.clone();
                                let d = daemon.clone();
                                tokio::task::spawn_blocking(move || {
                                    let res = d.drivers.open(*target);
                                    let _ = tx.send(Done::Opened(hdr, res, ro));
                                });
                            }
                        },
                    }
                }
            }
            _ = tick(&mut ka) => {
                if last_rx.elapsed() >= ka_interval {
                    if ka_unanswered >= daemon.limits.keepalive_count {
                        break End::Dropped("it did not answer keepalive pings");
                    }
                    ka_unanswered += 1;
                    wr.push(&out, keepalive_packet(keepalive::PING));
                }
            }
        }
        if let Err(e) = wr.flush(&sock, &out) {
            break End::Io(e);
        }
        rd.compact();
    };
    match &end {
        End::Eof | End::Closed | End::Shutdown => {
            tracing::debug!(conn = id, "client gone: {end:?}")
        }
        End::Io(e)
            if e.kind() == io::ErrorKind::ConnectionReset
                || e.kind() == io::ErrorKind::BrokenPipe =>
        {
            tracing::debug!(conn = id, "client gone: {e}")
        }
        End::Dropped(why) => tracing::warn!(conn = id, "dropping client: {why}"),
        End::Proto(e) => tracing::info!(conn = id, "closing client: {e}"),
        _ => tracing::info!(conn = id, "closing client: {end:?}"),
    }
    sess.close_driver();
}

async fn tick(ka: &mut Option<tokio::time::Interval>) {
    match ka {
        Some(iv) => {
            iv.tick().await;
        }
        None => std::future::pending::<()>().await,
    }
}

enum ReadErr {
    WouldBlock,
    Io(io::Error),
    Proto(ProtoError),
}

/// Reads what is there (and more while the buffer fills up).
fn read_some<S: Sock>(sock: &S, rd: &mut Reader) -> Result<usize, ReadErr> {
    rd.make_room().map_err(ReadErr::Proto)?;
    loop {
        match sock.try_read(&mut rd.buf[rd.end..]) {
            Ok(0) => return Ok(0),
            Ok(n) => {
                rd.end += n;
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(ReadErr::WouldBlock),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadErr::Io(e)),
        }
    }
}

enum Msg {
    /// Nothing to send.
    None,
    /// Send this.
    Send(Vec<u8>),
    /// What the session decided.
    Act(Action),
    /// Close the connection at once.
    Close,
}

/// Routes one message by program, version, type and status, as libvirtd's
/// RPC layer does (measured on libvirt 9.0):
/// * keepalive PING (type MESSAGE) gets a PONG; other keepalive messages
///   are dropped; a keepalive CALL gets "Cannot find program";
/// * a message that is not a CALL is dropped, except CALL_WITH_FDS, which
///   needs descriptors the daemon does not take: the client is closed;
/// * a CALL for an unknown program or version gets "Cannot find program";
/// * a CALL with a status other than OK gets "Unexpected message status".
fn message(sess: &mut Session, hdr: &Header, payload: &[u8]) -> Msg {
    let prog = hdr.prog;
    if prog == program::KEEPALIVE_PROGRAM && hdr.type_ == MessageType::MESSAGE {
        if hdr.vers == program::KEEPALIVE_VERSION && hdr.proc_ == keepalive::PING {
            return Msg::Send(keepalive_packet(keepalive::PONG));
        }
        return Msg::None;
    }
    if hdr.type_ == MessageType::CALL_WITH_FDS {
        return Msg::Close;
    }
    if hdr.type_ != MessageType::CALL {
        return Msg::None;
    }
    let known = match prog {
        program::REMOTE_PROGRAM => hdr.vers == program::REMOTE_VERSION,
        program::QEMU_PROGRAM => hdr.vers == program::QEMU_VERSION,
        program::LXC_PROGRAM => hdr.vers == program::LXC_VERSION,
        _ => false,
    };
    if !known {
        return Msg::Send(error_packet(hdr, &program::unknown_program(prog, hdr.vers)));
    }
    if hdr.status != Status::OK {
        let e = Error::new(
            ironvirt_driver::ErrorDomain::RPC,
            ironvirt_driver::ErrorNumber::RPC,
            format!("Unexpected message status {}", hdr.status.0),
        );
        return Msg::Send(error_packet(hdr, &e));
    }
    match prog {
        program::REMOTE_PROGRAM => Msg::Act(sess.call(hdr, payload)),
        _ => Msg::Send(error_packet(hdr, &sess.side_program(hdr))),
    }
}

fn log_call(verbose: bool, conn: u64, hdr: &Header, t0: Option<Instant>, reply: &[u8]) {
    if !verbose {
        return;
    }
    let name = procedures::lookup(hdr.proc_).map(|p| p.name).unwrap_or("?");
    let us = t0.map(|t| t.elapsed().as_micros()).unwrap_or(0);
    let result = match Packet::parse(reply) {
        Ok(p) if p.header.status == Status::ERROR => match RemoteError::from_xdr(&p.payload) {
            Ok(e) => format!("error: {}", e.message.unwrap_or_default()),
            Err(_) => "error".to_string(),
        },
        _ => "ok".to_string(),
    };
    tracing::info!(
        conn,
        serial = hdr.serial,
        prog = hdr.prog,
        proc = hdr.proc_,
        name,
        us,
        "{result}"
    );
}

/// Keepalive interval default (libvirtd's `keepalive_interval`).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Unanswered pings before a client is dropped (libvirtd's `keepalive_count`).
pub const KEEPALIVE_COUNT: u32 = 5;
