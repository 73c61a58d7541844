//! The RPC client: serial numbers, one reader thread that hands replies to
//! the threads waiting for them, a writer lock, keepalive, and the close
//! notification.
//!
//! A call registers its serial, writes its packet under the writer lock and
//! sleeps until the reader thread delivers the reply (or the connection
//! dies, or the call's timeout passes). Any number of threads may have
//! calls in flight on one connection at once.

use crate::transport::{Closer, StderrCapture, Stream};
use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result};
use ironvirt_proto::packet::{packet_length, Header, MessageType, Packet, Status, LEN_SIZE};
use ironvirt_proto::procedures::num;
use ironvirt_proto::program::{self, keepalive};
use ironvirt_proto::RemoteError;
use ironvirt_xdr::{xdr_struct, XdrDecode, XdrEncode};
use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Why a connection closed (`virConnectCloseReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// An I/O or protocol error.
    Error = 0,
    /// The daemon closed the connection.
    Eof = 1,
    /// The daemon stopped answering keepalive messages.
    Keepalive = 2,
    /// The client closed it.
    Client = 3,
}

impl CloseReason {
    /// The reason for a wire value (`VIR_CONNECT_CLOSE_REASON_*`).
    pub fn from_i32(v: i32) -> CloseReason {
        match v {
            1 => CloseReason::Eof,
            2 => CloseReason::Keepalive,
            3 => CloseReason::Client,
            _ => CloseReason::Error,
        }
    }
}

xdr_struct! {
    /// CONNECT_EVENT_CONNECTION_CLOSED message (`remote_connect_event_connection_closed_msg`).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectEventConnectionClosedMsg {
        pub reason: i32,
    }
}

/// Receives the reason once, when the connection closes.
pub type CloseCallback = Arc<dyn Fn(CloseReason) + Send + Sync>;

/// Receives every MESSAGE packet of the remote program (events).
pub(crate) type MessageHandler = Box<dyn Fn(Packet) + Send + Sync>;

/// "internal error: client socket is closed": what libvirt's client
/// answers for a call on a connection that has already closed (measured).
pub(crate) fn socket_closed() -> Error {
    Error::new(
        ErrorDomain::RPC,
        ErrorNumber::INTERNAL_ERROR,
        "client socket is closed",
    )
}

fn io_error(what: &str, e: &std::io::Error) -> Error {
    Error::system(ErrorDomain::RPC, what, e)
}

/// One waiting call.
struct Slot {
    reply: Mutex<Option<Result<Packet>>>,
    cond: Condvar,
}

impl Slot {
    fn complete(&self, r: Result<Packet>) {
        if let Ok(mut g) = self.reply.lock() {
            if g.is_none() {
                *g = Some(r);
            }
        }
        self.cond.notify_one();
    }
}

struct State {
    pending: HashMap<u32, Arc<Slot>>,
    /// Set once the connection is closed: the error calls in flight got.
    closed: Option<Error>,
    close_callbacks: Vec<CloseCallback>,
    close_reason: Option<CloseReason>,
    /// Whether a caller has been told why the connection closed; the
    /// calls after that get "client socket is closed", as in libvirt.
    close_reported: bool,
}

/// Keepalive settings and bookkeeping.
struct Keepalive {
    /// Seconds of silence before a PING; 0 when off.
    interval: AtomicU32,
    /// PINGs left unanswered before the connection is declared dead.
    count: AtomicU32,
    /// Milliseconds since `epoch` when the last packet arrived.
    last_rx: AtomicU64,
    epoch: Instant,
}

pub(crate) struct Shared {
    writer: Mutex<Box<dyn Write + Send>>,
    state: Mutex<State>,
    /// Woken when the connection closes (for the keepalive thread).
    closed_cond: Condvar,
    serial: AtomicU32,
    closer: Closer,
    stderr: Option<Arc<StderrCapture>>,
    closing: AtomicBool,
    keepalive: Keepalive,
    handler: Mutex<Option<Arc<MessageHandler>>>,
    /// Call timeout in milliseconds, 0 for none.
    timeout_ms: AtomicU64,
}

/// A connection to a daemon at the RPC level.
#[derive(Clone)]
pub(crate) struct Client {
    shared: Arc<Shared>,
}

impl Client {
    /// Takes over `stream` and starts its reader thread.
    pub(crate) fn start(stream: Stream) -> Result<Client> {
        let Stream {
            reader,
            writer,
            closer,
            stderr,
            ..
        } = stream;
        let shared = Arc::new(Shared {
            writer: Mutex::new(writer),
            state: Mutex::new(State {
                pending: HashMap::new(),
                closed: None,
                close_callbacks: Vec::new(),
                close_reason: None,
                close_reported: false,
            }),
            closed_cond: Condvar::new(),
            serial: AtomicU32::new(0),
            closer,
            stderr,
            closing: AtomicBool::new(false),
            keepalive: Keepalive {
                interval: AtomicU32::new(0),
                count: AtomicU32::new(0),
                last_rx: AtomicU64::new(0),
                epoch: Instant::now(),
            },
            handler: Mutex::new(None),
            timeout_ms: AtomicU64::new(0),
        });
        let s = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("ironvirt-remote-rx".into())
            .spawn(move || reader_loop(s, reader))
            .map_err(|e| io_error("Unable to start the connection's reader thread", &e))?;
        Ok(Client { shared })
    }

    /// Sets the handler of MESSAGE packets (events).
    pub(crate) fn set_message_handler(&self, h: MessageHandler) {
        if let Ok(mut g) = self.shared.handler.lock() {
            *g = Some(Arc::new(h));
        }
    }

    /// Sets the time a call waits for its reply; `None` waits for ever
    /// (keepalive still notices a dead daemon).
    pub(crate) fn set_timeout(&self, t: Option<Duration>) {
        let ms = t.map_or(0, |d| d.as_millis().clamp(1, u64::MAX as u128) as u64);
        self.shared.timeout_ms.store(ms, Ordering::Relaxed);
    }

    /// Whether the connection is still open.
    pub(crate) fn is_open(&self) -> bool {
        self.shared
            .state
            .lock()
            .map(|s| s.closed.is_none())
            .unwrap_or(false)
    }

    /// Registers a close callback; called at once when already closed.
    pub(crate) fn on_close(&self, cb: CloseCallback) {
        let already = match self.shared.state.lock() {
            Ok(mut s) => match s.close_reason {
                Some(r) => Some(r),
                None => {
                    s.close_callbacks.push(Arc::clone(&cb));
                    None
                }
            },
            Err(_) => Some(CloseReason::Error),
        };
        if let Some(r) = already {
            cb(r);
        }
    }

    /// A remote-program call: `args` out, `R` back.
    pub(crate) fn call<A: XdrEncode + ?Sized, R: XdrDecode>(
        &self,
        proc_: i32,
        args: &A,
    ) -> Result<R> {
        let p = self.call_packet(
            program::REMOTE_PROGRAM,
            program::REMOTE_VERSION,
            proc_,
            args,
        )?;
        Ok(p.decode::<R>()?)
    }

    /// A call of any program; returns the successful reply packet, or the
    /// daemon's error.
    pub(crate) fn call_packet<A: XdrEncode + ?Sized>(
        &self,
        prog: u32,
        vers: u32,
        proc_: i32,
        args: &A,
    ) -> Result<Packet> {
        let sh = &self.shared;
        let serial = sh.serial.fetch_add(1, Ordering::Relaxed);
        let bytes =
            ironvirt_proto::packet::encode_packet(&Header::call(prog, vers, proc_, serial), args)?;
        let slot = Arc::new(Slot {
            reply: Mutex::new(None),
            cond: Condvar::new(),
        });
        {
            let mut st = sh.state.lock().map_err(|_| socket_closed())?;
            if let Some(e) = &st.closed {
                if st.close_reported {
                    return Err(socket_closed());
                }
                let e = e.clone();
                st.close_reported = true;
                return Err(e);
            }
            st.pending.insert(serial, Arc::clone(&slot));
        }
        if let Err(e) = sh.write(&bytes) {
            sh.forget(serial);
            return Err(e);
        }
        let timeout = match sh.timeout_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        };
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut g = slot.reply.lock().map_err(|_| socket_closed())?;
        loop {
            if let Some(r) = g.take() {
                drop(g);
                let p = r?;
                return match p.header.status {
                    Status::OK => Ok(p),
                    Status::ERROR => Err(p.decode::<RemoteError>()?.into_error()),
                    s => Err(Error::new(
                        ErrorDomain::RPC,
                        ErrorNumber::RPC,
                        format!("Unexpected message status {}", s.0),
                    )),
                };
            }
            g = match deadline {
                None => slot.cond.wait(g).map_err(|_| socket_closed())?,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        drop(g);
                        sh.forget(serial);
                        return Err(Error::new(
                            ErrorDomain::RPC,
                            ErrorNumber::OPERATION_TIMEOUT,
                            format!(
                                "no reply from the daemon within {} ms to procedure {proc_}",
                                timeout.map_or(0, |t| t.as_millis())
                            ),
                        ));
                    }
                    slot.cond
                        .wait_timeout(g, d - now)
                        .map_err(|_| socket_closed())?
                        .0
                }
            };
        }
    }

    /// Starts sending keepalive PINGs after `interval` seconds of silence;
    /// after `count` unanswered PINGs the connection is closed.
    pub(crate) fn start_keepalive(&self, interval: u32, count: u32) -> Result<()> {
        let ka = &self.shared.keepalive;
        let was = ka.interval.swap(interval, Ordering::Relaxed);
        ka.count.store(count, Ordering::Relaxed);
        if interval == 0 || was != 0 {
            return Ok(());
        }
        let s = Arc::clone(&self.shared);
        std::thread::Builder::new()
            .name("ironvirt-remote-keepalive".into())
            .spawn(move || keepalive_loop(s))
            .map_err(|e| io_error("Unable to start the keepalive thread", &e))?;
        Ok(())
    }

    /// Marks the connection as closing on the client's request: the end
    /// of the stream that follows is reported as [`CloseReason::Client`].
    pub(crate) fn begin_close(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
    }

    /// Closes the connection (reason: client) without a CONNECT_CLOSE.
    pub(crate) fn shutdown(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.close(socket_closed(), CloseReason::Client);
    }
}

impl Shared {
    fn write(&self, bytes: &[u8]) -> Result<()> {
        let mut w = self.writer.lock().map_err(|_| socket_closed())?;
        if let Err(e) = w.write_all(bytes).and_then(|_| w.flush()) {
            drop(w);
            // A command transport whose process has gone: report it as
            // libvirt does, with what the process said on its way out.
            let err = if self.stderr.is_some() {
                self.eof_error()
            } else {
                io_error("Cannot write data", &e)
            };
            self.close(err.clone(), CloseReason::Error);
            return Err(err);
        }
        Ok(())
    }

    fn forget(&self, serial: u32) {
        if let Ok(mut st) = self.state.lock() {
            st.pending.remove(&serial);
        }
    }

    /// Marks the connection closed: pending calls fail with `err`, the
    /// stream is shut, close callbacks run. Only the first close counts.
    fn close(&self, err: Error, reason: CloseReason) {
        let (pending, callbacks) = {
            let Ok(mut st) = self.state.lock() else {
                return;
            };
            if st.closed.is_some() {
                return;
            }
            st.closed = Some(err.clone());
            st.close_reason = Some(reason);
            st.close_reported = !st.pending.is_empty();
            let pending: Vec<_> = st.pending.drain().map(|(_, s)| s).collect();
            (pending, std::mem::take(&mut st.close_callbacks))
        };
        self.closed_cond.notify_all();
        self.closer.close();
        for slot in pending {
            slot.complete(Err(err.clone()));
        }
        if let Ok(mut h) = self.handler.lock() {
            *h = None;
        }
        for cb in callbacks {
            cb(reason);
        }
    }

    fn note_rx(&self) {
        let ms = self.keepalive.epoch.elapsed().as_millis() as u64;
        self.keepalive.last_rx.store(ms, Ordering::Relaxed);
    }

    /// The error for the stream ending: libvirt's wording, which names the
    /// child's standard error for command transports.
    fn eof_error(&self) -> Error {
        match &self.stderr {
            Some(cap) => {
                let text = cap.text();
                let mut e = Error::new(
                    ErrorDomain::RPC,
                    ErrorNumber::SYSTEM_ERROR,
                    format!("Cannot recv data: {text}: Connection reset by peer"),
                );
                e.int1 = libc::ECONNRESET;
                e
            }
            None => {
                let mut e = Error::new(
                    ErrorDomain::RPC,
                    ErrorNumber::SYSTEM_ERROR,
                    "End of file while reading data: Input/output error",
                );
                e.int1 = libc::EIO;
                e
            }
        }
    }
}

enum ReadOutcome {
    Packet(Packet),
    Eof,
    Failed(Error, CloseReason),
}

fn read_packet(r: &mut impl Read) -> ReadOutcome {
    let mut len = [0u8; LEN_SIZE];
    let mut got = 0;
    while got < LEN_SIZE {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return ReadOutcome::Eof,
            Ok(0) => return ReadOutcome::Eof,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return ReadOutcome::Eof,
            Err(e) => {
                return ReadOutcome::Failed(io_error("Cannot recv data", &e), CloseReason::Error)
            }
        }
    }
    let total = match packet_length(len) {
        Ok(n) => n,
        Err(e) => return ReadOutcome::Failed(Error::from(e), CloseReason::Error),
    };
    let mut body = vec![0u8; total - LEN_SIZE];
    if let Err(e) = r.read_exact(&mut body) {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => ReadOutcome::Eof,
            _ => ReadOutcome::Failed(io_error("Cannot recv data", &e), CloseReason::Error),
        };
    }
    match Packet::parse_body(&body) {
        Ok(p) => ReadOutcome::Packet(p),
        Err(e) => ReadOutcome::Failed(Error::from(e), CloseReason::Error),
    }
}

fn reader_loop(sh: Arc<Shared>, reader: Box<dyn Read + Send>) {
    let mut r = BufReader::with_capacity(64 * 1024, reader);
    loop {
        match read_packet(&mut r) {
            ReadOutcome::Packet(p) => {
                sh.note_rx();
                dispatch(&sh, p);
            }
            ReadOutcome::Eof => {
                if sh.closing.load(Ordering::SeqCst) {
                    sh.close(socket_closed(), CloseReason::Client);
                } else {
                    sh.close(sh.eof_error(), CloseReason::Eof);
                }
                return;
            }
            ReadOutcome::Failed(e, reason) => {
                if sh.closing.load(Ordering::SeqCst) {
                    sh.close(socket_closed(), CloseReason::Client);
                } else {
                    sh.close(e, reason);
                }
                return;
            }
        }
    }
}

fn dispatch(sh: &Shared, p: Packet) {
    let h = p.header;
    if h.prog == program::KEEPALIVE_PROGRAM {
        if h.proc_ == keepalive::PING && h.type_ == MessageType::MESSAGE {
            let _ = sh.write(&ironvirt_proto::keepalive_packet(keepalive::PONG));
        }
        return;
    }
    match h.type_ {
        MessageType::REPLY | MessageType::REPLY_WITH_FDS => {
            let slot = sh
                .state
                .lock()
                .ok()
                .and_then(|mut st| st.pending.remove(&h.serial));
            // A reply nobody waits for belongs to a call that timed out.
            if let Some(slot) = slot {
                slot.complete(Ok(p));
            }
        }
        MessageType::MESSAGE
            if h.prog == program::REMOTE_PROGRAM
                && h.proc_ == num::CONNECT_EVENT_CONNECTION_CLOSED =>
        {
            // The daemon's driver closed: tell the close callbacks once,
            // as libvirt does; the connection itself stays up.
            if let Ok(m) = p.decode::<ConnectEventConnectionClosedMsg>() {
                let cbs = sh
                    .state
                    .lock()
                    .map(|mut st| std::mem::take(&mut st.close_callbacks))
                    .unwrap_or_default();
                for cb in cbs {
                    cb(CloseReason::from_i32(m.reason));
                }
            }
        }
        MessageType::MESSAGE if h.prog == program::REMOTE_PROGRAM => {
            let handler = sh.handler.lock().ok().and_then(|g| g.clone());
            if let Some(handler) = handler {
                handler(p);
            }
        }
        _ => {}
    }
}

fn keepalive_loop(sh: Arc<Shared>) {
    let ka = &sh.keepalive;
    let mut left = ka.count.load(Ordering::Relaxed);
    let mut last_seen = ka.last_rx.load(Ordering::Relaxed);
    loop {
        let interval = ka.interval.load(Ordering::Relaxed);
        if interval == 0 {
            return;
        }
        let wait = Duration::from_secs(u64::from(interval));
        {
            let Ok(st) = sh.state.lock() else { return };
            if st.closed.is_some() {
                return;
            }
            let Ok((st, _)) = sh.closed_cond.wait_timeout(st, wait) else {
                return;
            };
            if st.closed.is_some() {
                return;
            }
        }
        let rx = ka.last_rx.load(Ordering::Relaxed);
        if rx != last_seen {
            last_seen = rx;
            left = ka.count.load(Ordering::Relaxed);
        }
        let idle = ka.epoch.elapsed().as_millis() as u64 - rx;
        if idle < u64::from(interval) * 1000 {
            continue;
        }
        if left == 0 {
            sh.close(
                Error::new(
                    ErrorDomain::RPC,
                    ErrorNumber::INTERNAL_ERROR,
                    "connection closed due to keepalive timeout",
                ),
                CloseReason::Keepalive,
            );
            return;
        }
        left -= 1;
        let _ = sh.write(&ironvirt_proto::keepalive_packet(keepalive::PING));
    }
}
