//! The RPC client: serial numbers, replies read by the threads that wait
//! for them, a writer lock, keepalive, and the close notification.
//!
//! Reading follows libvirt's client ("passing the buck"). A call registers
//! its serial, writes its packet under the writer lock and, when no other
//! thread is reading the connection, becomes its reader: it reads packets
//! on its own thread until its reply arrives. Replies for other calls met
//! on the way are handed to their threads, events and keepalive PINGs are
//! dispatched, and once its own reply is in, the reader passes the role to
//! another thread still waiting for a reply, if any. A lone caller thus
//! reads its reply itself, with no other thread woken; any number of
//! threads may have calls in flight on one connection at once.
//!
//! While no call reads, a background thread watches the connection so
//! that events and PINGs are still handled. It waits in epoll on a
//! one-shot registration of the stream: a caller that takes the reading
//! role disarms it (which does not wake the thread) and re-arms it when it
//! lets go, so the background thread only runs when input arrives while
//! nobody else reads.

use crate::transport::{Closer, RxHalf, StderrCapture, Stream};
use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result};
use ironvirt_proto::packet::{packet_length, Header, MessageType, Packet, Status, LEN_SIZE};
use ironvirt_proto::procedures::num;
use ironvirt_proto::program::{self, keepalive};
use ironvirt_proto::RemoteError;
use ironvirt_xdr::{xdr_struct, XdrDecode, XdrEncode};
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
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

/// Calls whose packet is at most this long take the reading role before
/// they are written, so that their reply cannot wake the background
/// thread. Longer ones are written first: a reader stuck in a long write
/// would hold up the replies of every other caller.
const TAKE_BEFORE_WRITE_MAX: usize = 256 * 1024;

/// Initial size of the receive buffer; a longer packet grows it.
const RX_INITIAL: usize = 64 * 1024;

/// One call waiting for its reply.
struct Call {
    /// Filled by the reader that reads the reply, or by the close.
    reply: Option<Result<Packet>>,
    /// Where its thread sleeps (with the state lock) while another reads.
    cond: Arc<Condvar>,
    /// Whether its thread sleeps on `cond` now (no need to wake it if not).
    sleeping: bool,
}

/// Who reads the connection now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reader {
    /// Nobody: the background watch is armed.
    Nobody,
    /// The background thread, handling input that came while no call read.
    Background,
    /// The thread of the call with this serial.
    Call(u32),
}

struct State {
    pending: HashMap<u32, Call>,
    reader: Reader,
    /// Whether the stream is armed in the background thread's epoll set.
    armed: bool,
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

/// Who read the packets that arrived, and how often the reading role
/// went straight from one caller to another.
#[derive(Default)]
struct Counters {
    by_callers: AtomicU64,
    by_background: AtomicU64,
    handovers: AtomicU64,
}

pub(crate) struct Shared {
    writer: Mutex<Box<dyn Write + Send>>,
    /// The reading half; locked by whoever holds the reading role (always
    /// before `state` when both are held).
    rx: Mutex<Rx>,
    state: Mutex<State>,
    watch: Watch,
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
    counters: Counters,
}

/// A connection to a daemon at the RPC level.
#[derive(Clone)]
pub(crate) struct Client {
    shared: Arc<Shared>,
}

impl Client {
    /// Takes over `stream` and starts its background reader thread.
    pub(crate) fn start(stream: Stream) -> Result<Client> {
        let Stream {
            reader,
            writer,
            closer,
            stderr,
            ..
        } = stream;
        let watch = Watch::new(reader.raw_fd())
            .map_err(|e| io_error("Unable to watch the connection", &e))?;
        let shared = Arc::new(Shared {
            writer: Mutex::new(writer),
            rx: Mutex::new(Rx::new(reader)),
            state: Mutex::new(State {
                pending: HashMap::new(),
                reader: Reader::Nobody,
                armed: true,
                closed: None,
                close_callbacks: Vec::new(),
                close_reason: None,
                close_reported: false,
            }),
            watch,
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
            counters: Counters::default(),
        });
        let s = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("remote-rx".into())
            .spawn(move || background_loop(s))
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
        let cond = Arc::new(Condvar::new());
        let reading = {
            let mut st = sh.state.lock().map_err(|_| socket_closed())?;
            if let Some(e) = &st.closed {
                if st.close_reported {
                    return Err(socket_closed());
                }
                let e = e.clone();
                st.close_reported = true;
                return Err(e);
            }
            st.pending.insert(
                serial,
                Call {
                    reply: None,
                    cond: Arc::clone(&cond),
                    sleeping: false,
                },
            );
            bytes.len() <= TAKE_BEFORE_WRITE_MAX && sh.try_take(&mut st, Reader::Call(serial))
        };
        let timeout = match sh.timeout_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        };
        if let Err(e) = sh.write(&bytes) {
            sh.abandon(serial);
            return Err(e);
        }
        let w = Waiter {
            serial,
            proc_,
            cond,
            timeout: timeout.map(|t| (Instant::now() + t, t)),
        };
        let p = sh.await_reply(&w, reading)?;
        match p.header.status {
            Status::OK => Ok(p),
            Status::ERROR => Err(p.decode::<RemoteError>()?.into_error()),
            s => Err(Error::new(
                ErrorDomain::RPC,
                ErrorNumber::RPC,
                format!("Unexpected message status {}", s.0),
            )),
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
            .name("remote-keepalive".into())
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

/// What a waiting call needs to know about itself.
struct Waiter {
    serial: u32,
    proc_: i32,
    cond: Arc<Condvar>,
    /// Deadline and the timeout it came from.
    timeout: Option<(Instant, Duration)>,
}

impl Waiter {
    fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|(d, _)| d)
    }

    fn timed_out(&self) -> Error {
        Error::new(
            ErrorDomain::RPC,
            ErrorNumber::OPERATION_TIMEOUT,
            format!(
                "no reply from the daemon within {} ms to procedure {}",
                self.timeout.map_or(0, |(_, t)| t.as_millis()),
                self.proc_
            ),
        )
    }
}

fn is_reply(h: &Header) -> bool {
    h.prog != program::KEEPALIVE_PROGRAM
        && matches!(h.type_, MessageType::REPLY | MessageType::REPLY_WITH_FDS)
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

    /// Makes `who` the reader if nobody reads, disarming the background
    /// watch (without waking it) so that the input that follows wakes
    /// only `who`.
    fn try_take(&self, st: &mut State, who: Reader) -> bool {
        if st.reader != Reader::Nobody || st.closed.is_some() {
            return false;
        }
        st.reader = who;
        if st.armed {
            self.watch.disarm();
            st.armed = false;
        }
        true
    }

    /// Gives up the reading role, whose holder's own call (if any) is no
    /// longer pending: to a call still waiting for its reply, else to
    /// nobody, re-arming the background watch, and waking the background
    /// thread at once when a whole packet is already buffered (`ready`),
    /// which the watch would not see. Returns the thread to wake once the
    /// state lock is let go.
    fn pass_on(&self, st: &mut State, ready: bool) -> Option<Arc<Condvar>> {
        if st.closed.is_some() {
            st.reader = Reader::Nobody;
            return None;
        }
        if let Some((&serial, call)) = st.pending.iter().find(|(_, c)| c.reply.is_none()) {
            st.reader = Reader::Call(serial);
            self.counters.handovers.fetch_add(1, Ordering::Relaxed);
            return call.sleeping.then(|| Arc::clone(&call.cond));
        }
        st.reader = Reader::Nobody;
        if !st.armed {
            self.watch.arm();
            st.armed = true;
        }
        if ready {
            self.watch.wake();
        }
        None
    }

    /// Lets go of the reading role held through `rx`: drops `serial`'s
    /// call (when given) from the pending ones, returning its reply if one
    /// was set (by the close), and passes the role on.
    fn finish_reading(
        &self,
        mut rx: MutexGuard<'_, Rx>,
        serial: Option<u32>,
    ) -> Option<Result<Packet>> {
        let ready = rx.ready();
        let (wake, reply) = match self.state.lock() {
            Ok(mut st) => {
                let reply = serial
                    .and_then(|s| st.pending.remove(&s))
                    .and_then(|c| c.reply);
                (self.pass_on(&mut st, ready), reply)
            }
            Err(_) => (None, None),
        };
        drop(rx);
        if let Some(c) = wake {
            c.notify_one();
        }
        reply
    }

    /// Drops a call that will not wait for its reply, passing the reading
    /// role on if it was handed to it.
    fn abandon(&self, serial: u32) {
        let mine = match self.state.lock() {
            Ok(mut st) => {
                st.pending.remove(&serial);
                st.reader == Reader::Call(serial)
            }
            Err(_) => return,
        };
        if mine {
            if let Ok(rx) = self.rx.lock() {
                self.finish_reading(rx, None);
            }
        }
    }
}

impl Shared {
    /// Waits for `w`'s reply: reads the connection itself while it holds
    /// the reading role (`reading`, or handed to it later), else sleeps
    /// until the reader delivers the reply or passes the role.
    fn await_reply(&self, w: &Waiter, reading: bool) -> Result<Packet> {
        if !reading {
            if let Some(r) = self.wait_turn(w)? {
                return r;
            }
        }
        self.read_until_reply(w)
    }

    /// Sleeps while another thread reads: until that reader delivers
    /// `w`'s reply (`Some`), or the reading role comes to `w` (`None`).
    fn wait_turn(&self, w: &Waiter) -> Result<Option<Result<Packet>>> {
        let mut st = self.state.lock().map_err(|_| socket_closed())?;
        loop {
            let Some(call) = st.pending.get_mut(&w.serial) else {
                return Err(socket_closed());
            };
            if let Some(r) = call.reply.take() {
                st.pending.remove(&w.serial);
                return Ok(Some(r));
            }
            if st.reader == Reader::Call(w.serial) || self.try_take(&mut st, Reader::Call(w.serial))
            {
                return Ok(None);
            }
            let now = Instant::now();
            if w.deadline().is_some_and(|d| now >= d) {
                st.pending.remove(&w.serial);
                return Err(w.timed_out());
            }
            if let Some(call) = st.pending.get_mut(&w.serial) {
                call.sleeping = true;
            }
            st = match w.deadline() {
                None => w.cond.wait(st).map_err(|_| socket_closed())?,
                Some(d) => {
                    w.cond
                        .wait_timeout(st, d - now)
                        .map_err(|_| socket_closed())?
                        .0
                }
            };
            if let Some(call) = st.pending.get_mut(&w.serial) {
                call.sleeping = false;
            }
        }
    }

    /// The reader's loop: reads packets until `w`'s reply, handing on
    /// everything else, then passes the reading role on.
    fn read_until_reply(&self, w: &Waiter) -> Result<Packet> {
        let _guard = PanicGuard(self);
        let mut rx = self.rx.lock().map_err(|_| socket_closed())?;
        loop {
            match rx.read_packet(w.deadline()) {
                ReadOutcome::Packet(p) => {
                    self.note_rx();
                    self.counters.by_callers.fetch_add(1, Ordering::Relaxed);
                    if is_reply(&p.header) && p.header.serial == w.serial {
                        self.finish_reading(rx, Some(w.serial));
                        return Ok(p);
                    }
                    dispatch(self, p);
                }
                ReadOutcome::TimedOut => {
                    self.finish_reading(rx, Some(w.serial));
                    return Err(w.timed_out());
                }
                end => {
                    self.end_of_stream(end);
                    // The close gave every pending call, this one too, its error.
                    return self
                        .finish_reading(rx, Some(w.serial))
                        .unwrap_or_else(|| Err(socket_closed()));
                }
            }
        }
    }

    /// Closes the connection for the stream's end or read error.
    fn end_of_stream(&self, outcome: ReadOutcome) {
        let (err, reason) = match outcome {
            ReadOutcome::Failed(e, r) => (e, r),
            _ => (self.eof_error(), CloseReason::Eof),
        };
        if self.closing.load(Ordering::SeqCst) {
            self.close(socket_closed(), CloseReason::Client);
        } else {
            self.close(err, reason);
        }
    }

    /// Marks the connection closed: pending calls fail with `err`, the
    /// stream is shut, close callbacks run. Only the first close counts.
    fn close(&self, err: Error, reason: CloseReason) {
        let (sleepers, callbacks) = {
            let Ok(mut st) = self.state.lock() else {
                return;
            };
            if st.closed.is_some() {
                return;
            }
            st.closed = Some(err.clone());
            st.close_reason = Some(reason);
            let mut told = false;
            let mut sleepers = Vec::new();
            for call in st.pending.values_mut() {
                if call.reply.is_none() {
                    call.reply = Some(Err(err.clone()));
                    told = true;
                    if call.sleeping {
                        sleepers.push(Arc::clone(&call.cond));
                    }
                }
            }
            st.close_reported = told;
            (sleepers, std::mem::take(&mut st.close_callbacks))
        };
        self.closed_cond.notify_all();
        // Ends the stream: a reader blocked on it wakes with end of file.
        self.closer.close();
        self.watch.wake();
        for c in sleepers {
            c.notify_one();
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
    /// The deadline passed before a whole packet arrived (what did arrive
    /// stays buffered).
    TimedOut,
}

/// The receiving side: the transport's reading half and a buffer that
/// may hold several packets (or the start of one) read in one go.
struct Rx {
    inner: Box<dyn RxHalf>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Rx {
    fn new(inner: Box<dyn RxHalf>) -> Rx {
        Rx {
            inner,
            buf: vec![0; RX_INITIAL],
            start: 0,
            end: 0,
        }
    }

    /// The length of the packet at the front of the buffer, once its
    /// length word is in.
    fn front_length(&self) -> Option<ironvirt_proto::Result<usize>> {
        let b = self.buf.get(self.start..self.start + LEN_SIZE)?;
        if self.end - self.start < LEN_SIZE {
            return None;
        }
        Some(packet_length([b[0], b[1], b[2], b[3]]))
    }

    /// Whether a packet can be had without waiting on the descriptor: a
    /// whole one (or a bad length word) is buffered here, or the
    /// transport holds input of its own.
    fn ready(&mut self) -> bool {
        match self.front_length() {
            Some(Ok(total)) if self.end - self.start >= total => true,
            Some(Err(_)) => true,
            _ => self.inner.has_buffered(),
        }
    }

    /// Reads one packet, waiting for input until `deadline` at most.
    fn read_packet(&mut self, deadline: Option<Instant>) -> ReadOutcome {
        loop {
            let need = match self.front_length() {
                Some(Ok(total)) if self.end - self.start >= total => {
                    let body = &self.buf[self.start + LEN_SIZE..self.start + total];
                    let parsed = Packet::parse_body(body);
                    self.start += total;
                    if self.start == self.end {
                        self.start = 0;
                        self.end = 0;
                        if self.buf.len() > 16 * RX_INITIAL {
                            self.buf = vec![0; RX_INITIAL];
                        }
                    }
                    return match parsed {
                        Ok(p) => ReadOutcome::Packet(p),
                        Err(e) => ReadOutcome::Failed(Error::from(e), CloseReason::Error),
                    };
                }
                Some(Ok(total)) => total,
                Some(Err(e)) => return ReadOutcome::Failed(Error::from(e), CloseReason::Error),
                None => LEN_SIZE,
            };
            // Room for the whole packet from `start`.
            if self.start + need > self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                if need > self.buf.len() {
                    self.buf.resize(need, 0);
                }
            }
            if let Some(d) = deadline {
                if !self.inner.has_buffered() {
                    match wait_readable(self.inner.raw_fd(), Some(d)) {
                        Ok(true) => {}
                        Ok(false) => return ReadOutcome::TimedOut,
                        Err(e) => {
                            return ReadOutcome::Failed(
                                io_error("Cannot recv data", &e),
                                CloseReason::Error,
                            )
                        }
                    }
                }
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => return ReadOutcome::Eof,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return ReadOutcome::Eof,
                Err(e) => {
                    return ReadOutcome::Failed(
                        io_error("Cannot recv data", &e),
                        CloseReason::Error,
                    )
                }
            }
        }
    }
}

/// Waits until `fd` is readable, or `deadline` passes (`false`); `None`
/// only looks.
fn wait_readable(fd: RawFd, deadline: Option<Instant>) -> std::io::Result<bool> {
    loop {
        let ms = match deadline {
            None => 0,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Whole milliseconds, rounded up so as not to spin.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            }
        };
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `p` is one valid pollfd that outlives the call.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n > 0 {
            return Ok(true);
        }
        if ms == 0 {
            return Ok(false);
        }
    }
}

const TOKEN_STREAM: u64 = 0;
const TOKEN_WAKE: u64 = 1;
const ARMED: u32 = (libc::EPOLLIN | libc::EPOLLONESHOT) as u32;
const DISARMED: u32 = libc::EPOLLONESHOT as u32;

fn cvt(r: libc::c_int) -> std::io::Result<libc::c_int> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// What the background thread waits on: an epoll set holding the stream's
/// descriptor, one-shot and armed only while no caller reads, and an
/// eventfd to wake the thread on purpose.
struct Watch {
    epoll: OwnedFd,
    wake: OwnedFd,
    fd: RawFd,
}

impl Watch {
    /// Watches `fd` (armed) and a fresh eventfd.
    fn new(fd: RawFd) -> std::io::Result<Watch> {
        // SAFETY: epoll_create1 takes no pointers.
        let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `ep` was just opened and is owned by nobody else.
        let epoll = unsafe { OwnedFd::from_raw_fd(ep) };
        // SAFETY: eventfd takes no pointers.
        let ev = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: `ev` was just opened and is owned by nobody else.
        let wake = unsafe { OwnedFd::from_raw_fd(ev) };
        let w = Watch { epoll, wake, fd };
        w.ctl(
            libc::EPOLL_CTL_ADD,
            w.wake.as_raw_fd(),
            libc::EPOLLIN as u32,
            TOKEN_WAKE,
        )?;
        w.ctl(libc::EPOLL_CTL_ADD, fd, ARMED, TOKEN_STREAM)?;
        Ok(w)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> std::io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call;
        // both descriptors are open (the stream's lives as long as `self`).
        cvt(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut ev) }).map(drop)
    }

    /// The next input on the stream wakes the background thread (at once
    /// if some is already waiting in the kernel).
    fn arm(&self) {
        let _ = self.ctl(libc::EPOLL_CTL_MOD, self.fd, ARMED, TOKEN_STREAM);
    }

    /// Input on the stream no longer wakes the background thread; a
    /// thread already waiting stays asleep.
    fn disarm(&self) {
        let _ = self.ctl(libc::EPOLL_CTL_MOD, self.fd, DISARMED, TOKEN_STREAM);
    }

    /// Wakes the background thread.
    fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of `one`, which outlives the call.
        let _ = unsafe {
            libc::write(
                self.wake.as_raw_fd(),
                std::ptr::addr_of!(one).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Sleeps until the armed stream has input or [`Watch::wake`] is
    /// called; says whether the stream fired (which disarms it).
    fn wait(&self) -> std::io::Result<bool> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 2];
        loop {
            // SAFETY: `evs` has room for the 2 events asked for.
            let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), evs.as_mut_ptr(), 2, -1) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut fired = false;
            for ev in evs.iter().take(n as usize) {
                let token = ev.u64;
                if token == TOKEN_WAKE {
                    let mut v: u64 = 0;
                    // SAFETY: reads at most 8 bytes into `v`; the eventfd is
                    // non-blocking, so this only drains it.
                    let _ = unsafe {
                        libc::read(
                            self.wake.as_raw_fd(),
                            std::ptr::addr_of_mut!(v).cast(),
                            std::mem::size_of::<u64>(),
                        )
                    };
                } else {
                    fired = true;
                }
            }
            return Ok(fired);
        }
    }
}

/// Closes the connection if the reader's thread unwinds (a close callback
/// that panicked): the reading role dies with it, and every other call
/// must get an error rather than wait for ever.
struct PanicGuard<'a>(&'a Shared);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.close(
                Error::internal(ErrorDomain::RPC, "the connection's reader panicked"),
                CloseReason::Error,
            );
        }
    }
}

/// The background thread: handles what arrives while no call reads
/// (events, PINGs, the daemon hanging up), and gives the reading role to
/// any call that wants it as soon as that input is dealt with.
fn background_loop(sh: Arc<Shared>) {
    let _guard = PanicGuard(&sh);
    loop {
        let fired = match sh.watch.wait() {
            Ok(f) => f,
            Err(e) => {
                sh.close(io_error("Unable to wait for data", &e), CloseReason::Error);
                return;
            }
        };
        {
            let Ok(mut st) = sh.state.lock() else { return };
            if st.closed.is_some() {
                return;
            }
            if fired {
                st.armed = false;
            }
            // A caller reads now: it re-arms the watch when done.
            if !sh.try_take(&mut st, Reader::Background) {
                continue;
            }
        }
        let Ok(mut rx) = sh.rx.lock() else { return };
        let mut more = rx.ready() || matches!(wait_readable(rx.inner.raw_fd(), None), Ok(true));
        while more {
            match rx.read_packet(None) {
                ReadOutcome::Packet(p) => {
                    sh.note_rx();
                    sh.counters.by_background.fetch_add(1, Ordering::Relaxed);
                    dispatch(&sh, p);
                    // What the kernel still holds re-fires the watch.
                    more = rx.ready();
                }
                ReadOutcome::TimedOut => more = false,
                end => {
                    sh.end_of_stream(end);
                    return;
                }
            }
        }
        sh.finish_reading(rx, None);
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
            let wake = sh.state.lock().ok().and_then(|mut st| {
                // A reply nobody waits for belongs to a call that timed out.
                let call = st.pending.get_mut(&h.serial)?;
                if call.reply.is_some() {
                    return None;
                }
                call.reply = Some(Ok(p));
                call.sleeping.then(|| Arc::clone(&call.cond))
            });
            if let Some(c) = wake {
                c.notify_one();
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

#[cfg(test)]
mod tests {
    //! The reading role against a scripted daemon on the other end of a
    //! socket pair: who reads which packet, and what every waiting thread
    //! gets, in the hand-over cases.

    use super::*;
    use crate::transport::Closer;
    use ironvirt_proto::packet::encode_packet;
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc;
    use std::thread::JoinHandle;

    const LIMIT: Duration = Duration::from_secs(30);

    /// A client on one end of a socket pair; the test is the daemon on
    /// the other.
    fn fake() -> (Client, UnixStream) {
        let (ours, theirs) = UnixStream::pair().expect("socket pair");
        theirs.set_read_timeout(Some(LIMIT)).expect("timeout");
        let stream = Stream {
            reader: Box::new(ours.try_clone().expect("clone")),
            writer: Box::new(ours.try_clone().expect("clone")),
            closer: Closer::Unix(ours),
            stderr: None,
            secure: true,
            encrypted: false,
        };
        (Client::start(stream).expect("client"), theirs)
    }

    /// The next packet the client sent.
    fn next_packet(d: &mut UnixStream) -> Packet {
        let mut len = [0u8; LEN_SIZE];
        d.read_exact(&mut len).expect("a packet from the client");
        let n = packet_length(len).expect("length");
        let mut body = vec![0u8; n - LEN_SIZE];
        d.read_exact(&mut body).expect("the packet's body");
        Packet::parse_body(&body).expect("parses")
    }

    /// The next packet the client sent, which must be a call.
    fn next_call(d: &mut UnixStream) -> Header {
        let p = next_packet(d);
        assert_eq!(p.header.type_, MessageType::CALL, "{:?}", p.header);
        p.header
    }

    fn reply(h: &Header) -> Vec<u8> {
        ironvirt_proto::reply_packet(h, &()).expect("encodes")
    }

    fn event<T: XdrEncode + ?Sized>(proc_: i32, body: &T) -> Vec<u8> {
        let h = Header {
            prog: program::REMOTE_PROGRAM,
            vers: program::REMOTE_VERSION,
            proc_,
            type_: MessageType::MESSAGE,
            serial: 1,
            status: Status::OK,
        };
        encode_packet(&h, body).expect("encodes")
    }

    /// Starts a call of procedure `proc_` on its own thread.
    fn call(c: &Client, proc_: i32) -> (JoinHandle<()>, mpsc::Receiver<Result<Packet>>) {
        let c = c.clone();
        let (tx, rx) = mpsc::channel();
        let h = std::thread::spawn(move || {
            let _ = tx.send(c.call_packet(
                program::REMOTE_PROGRAM,
                program::REMOTE_VERSION,
                proc_,
                &(),
            ));
        });
        (h, rx)
    }

    fn outcome(rx: &mpsc::Receiver<Result<Packet>>) -> Result<Packet> {
        rx.recv_timeout(LIMIT).expect("the call returned (no hang)")
    }

    fn reader(c: &Client) -> Reader {
        c.shared.state.lock().expect("state").reader
    }

    /// Waits until the call with `serial` sleeps while another reads.
    fn until_sleeping(c: &Client, serial: u32) {
        let deadline = Instant::now() + LIMIT;
        loop {
            let st = c.shared.state.lock().expect("state");
            if st.pending.get(&serial).is_some_and(|x| x.sleeping) {
                return;
            }
            drop(st);
            assert!(Instant::now() < deadline, "call {serial} never slept");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The procedure numbers of the messages the client hands to its
    /// message handler, in order.
    fn event_procedures(c: &Client) -> mpsc::Receiver<i32> {
        let (tx, events) = mpsc::channel();
        let tx = Mutex::new(tx);
        c.set_message_handler(Box::new(move |p| {
            let _ = tx.lock().map(|t| t.send(p.header.proc_));
        }));
        events
    }

    fn counts(c: &Client) -> (u64, u64, u64) {
        let k = &c.shared.counters;
        (
            k.by_callers.load(Ordering::Relaxed),
            k.by_background.load(Ordering::Relaxed),
            k.handovers.load(Ordering::Relaxed),
        )
    }

    /// Two calls in flight, A reading: its call reached the daemon first,
    /// and it took the role before writing it.
    fn two_in_flight(
        c: &Client,
        d: &mut UnixStream,
    ) -> [(Header, mpsc::Receiver<Result<Packet>>); 2] {
        let (_, rx_a) = call(c, 1);
        let a = next_call(d);
        assert_eq!(reader(c), Reader::Call(a.serial));
        let (_, rx_b) = call(c, 2);
        let b = next_call(d);
        until_sleeping(c, b.serial);
        assert_eq!(reader(c), Reader::Call(a.serial));
        [(a, rx_a), (b, rx_b)]
    }

    #[test]
    fn a_lone_caller_reads_its_own_reply() {
        let (c, mut d) = fake();
        for _ in 0..3 {
            let (_, rx) = call(&c, 1);
            let h = next_call(&mut d);
            d.write_all(&reply(&h)).expect("reply");
            assert_eq!(outcome(&rx).expect("reply").header.serial, h.serial);
        }
        assert_eq!(
            counts(&c),
            (3, 0, 0),
            "read by callers, background, handovers"
        );
        assert_eq!(reader(&c), Reader::Nobody);
        assert!(c.shared.state.lock().expect("state").armed);
    }

    #[test]
    fn the_reader_hands_a_reply_to_the_thread_it_belongs_to() {
        let (c, mut d) = fake();
        let [(a, rx_a), (b, rx_b)] = two_in_flight(&c, &mut d);
        d.write_all(&reply(&b)).expect("reply to B");
        assert_eq!(outcome(&rx_b).expect("B").header.serial, b.serial);
        assert!(rx_a.try_recv().is_err(), "A still waits for its reply");
        assert_eq!(reader(&c), Reader::Call(a.serial));
        d.write_all(&reply(&a)).expect("reply to A");
        assert_eq!(outcome(&rx_a).expect("A").header.serial, a.serial);
        assert_eq!(counts(&c), (2, 0, 0));
        assert_eq!(reader(&c), Reader::Nobody);
    }

    #[test]
    fn the_reader_passes_the_role_when_its_own_reply_comes_first() {
        let (c, mut d) = fake();
        let [(a, rx_a), (b, rx_b)] = two_in_flight(&c, &mut d);
        d.write_all(&reply(&a)).expect("reply to A");
        assert_eq!(outcome(&rx_a).expect("A").header.serial, a.serial);
        assert_eq!(reader(&c), Reader::Call(b.serial), "B reads now");
        d.write_all(&reply(&b)).expect("reply to B");
        assert_eq!(outcome(&rx_b).expect("B").header.serial, b.serial);
        assert_eq!(counts(&c), (2, 0, 1), "B read its reply itself");
        assert_eq!(reader(&c), Reader::Nobody);
    }

    #[test]
    fn replies_in_one_read_reach_both_threads() {
        let (c, mut d) = fake();
        let [(a, rx_a), (b, rx_b)] = two_in_flight(&c, &mut d);
        let mut both = reply(&a);
        both.extend(reply(&b));
        d.write_all(&both).expect("both replies");
        assert_eq!(outcome(&rx_a).expect("A").header.serial, a.serial);
        assert_eq!(outcome(&rx_b).expect("B").header.serial, b.serial);
        let (callers, background, _) = counts(&c);
        assert_eq!((callers, background), (2, 0));
    }

    #[test]
    fn events_and_pings_met_by_a_reading_caller_are_handled() {
        let (c, mut d) = fake();
        let events = event_procedures(&c);
        let (_, rx) = call(&c, 1);
        let h = next_call(&mut d);
        assert_eq!(reader(&c), Reader::Call(h.serial));
        let mut out = event(num::DOMAIN_EVENT_LIFECYCLE, &());
        out.extend(ironvirt_proto::keepalive_packet(keepalive::PING));
        d.write_all(&out).expect("event and PING");
        assert_eq!(
            events.recv_timeout(LIMIT).expect("event"),
            num::DOMAIN_EVENT_LIFECYCLE
        );
        let pong = next_packet(&mut d);
        assert_eq!(
            (pong.header.prog, pong.header.proc_),
            (program::KEEPALIVE_PROGRAM, keepalive::PONG)
        );
        assert!(rx.try_recv().is_err(), "the call still waits");
        d.write_all(&reply(&h)).expect("reply");
        assert_eq!(outcome(&rx).expect("reply").header.serial, h.serial);
        assert_eq!(counts(&c), (3, 0, 0), "the caller read all three");
    }

    #[test]
    fn events_while_no_call_runs_reach_the_background_thread() {
        let (c, mut d) = fake();
        let events = event_procedures(&c);
        d.write_all(&event(num::DOMAIN_EVENT_LIFECYCLE, &()))
            .expect("event");
        assert_eq!(
            events.recv_timeout(LIMIT).expect("event"),
            num::DOMAIN_EVENT_LIFECYCLE
        );
        d.write_all(&ironvirt_proto::keepalive_packet(keepalive::PING))
            .expect("PING");
        let pong = next_packet(&mut d);
        assert_eq!(pong.header.proc_, keepalive::PONG);
        let (_, background, _) = counts(&c);
        assert_eq!(background, 2);
        // The role is the background thread's only while it reads (the
        // call may find it still there, and get it handed over): the call
        // reads its own reply.
        let (_, rx) = call(&c, 1);
        let h = next_call(&mut d);
        d.write_all(&reply(&h)).expect("reply");
        assert_eq!(outcome(&rx).expect("reply").header.serial, h.serial);
        let (callers, background, _) = counts(&c);
        assert_eq!((callers, background), (1, 2));
    }

    #[test]
    fn an_event_right_behind_a_reply_is_not_left_in_the_buffer() {
        let (c, mut d) = fake();
        let events = event_procedures(&c);
        let (_, rx) = call(&c, 1);
        let h = next_call(&mut d);
        // One write: the reader gets the event in the same read as its
        // reply, and must not leave it unhandled when it stops reading.
        let mut out = reply(&h);
        out.extend(event(num::DOMAIN_EVENT_LIFECYCLE, &()));
        d.write_all(&out).expect("reply and event");
        assert_eq!(outcome(&rx).expect("reply").header.serial, h.serial);
        assert_eq!(
            events.recv_timeout(LIMIT).expect("event"),
            num::DOMAIN_EVENT_LIFECYCLE
        );
    }

    #[test]
    fn daemon_dying_while_a_caller_reads_fails_every_call() {
        let (c, mut d) = fake();
        let (tx, closed) = mpsc::channel();
        let tx = Mutex::new(tx);
        c.on_close(Arc::new(move |r| {
            let _ = tx.lock().map(|t| t.send(r));
        }));
        let [(_, rx_a), (_, rx_b)] = two_in_flight(&c, &mut d);
        // Half a packet, then the daemon is gone.
        let (_, rx_c) = call(&c, 3);
        let h = next_call(&mut d);
        d.write_all(&reply(&h)[..10]).expect("part of a reply");
        d.shutdown(std::net::Shutdown::Both).expect("hang up");
        for rx in [&rx_a, &rx_b, &rx_c] {
            let e = outcome(rx).expect_err("daemon gone");
            assert_eq!(
                (e.code, e.domain, e.int1),
                (ErrorNumber::SYSTEM_ERROR, ErrorDomain::RPC, libc::EIO)
            );
            assert_eq!(
                e.message,
                "End of file while reading data: Input/output error"
            );
        }
        assert_eq!(
            closed.recv_timeout(LIMIT).expect("close callback"),
            CloseReason::Eof
        );
        let e = c
            .call_packet(program::REMOTE_PROGRAM, program::REMOTE_VERSION, 4, &())
            .expect_err("closed");
        assert_eq!(e.message, "internal error: client socket is closed");
    }

    #[test]
    fn a_reader_whose_callback_panics_leaves_no_call_hanging() {
        let (c, mut d) = fake();
        c.on_close(Arc::new(|_| panic!("a close callback that panics")));
        let [(_, rx_a), (_, rx_b)] = two_in_flight(&c, &mut d);
        d.write_all(&event(num::CONNECT_EVENT_CONNECTION_CLOSED, &0i32))
            .expect("driver closed");
        let e = outcome(&rx_b).expect_err("B gets an error");
        assert_eq!(
            e.message,
            "internal error: the connection's reader panicked"
        );
        assert!(
            rx_a.recv_timeout(LIMIT).is_err(),
            "A's thread unwound without an answer"
        );
        assert!(!c.is_open());
    }

    #[test]
    fn a_reader_that_times_out_passes_the_role_on() {
        let (c, mut d) = fake();
        c.set_timeout(Some(Duration::from_millis(200)));
        let (_, rx_a) = call(&c, 1);
        let a = next_call(&mut d);
        c.set_timeout(None);
        let (_, rx_b) = call(&c, 2);
        let b = next_call(&mut d);
        let e = outcome(&rx_a).expect_err("A timed out");
        assert_eq!(
            (e.code, e.domain),
            (ErrorNumber::OPERATION_TIMEOUT, ErrorDomain::RPC)
        );
        assert_eq!(reader(&c), Reader::Call(b.serial));
        // A's late reply is dropped; B's reaches B.
        let mut out = reply(&a);
        out.extend(reply(&b));
        d.write_all(&out).expect("replies");
        assert_eq!(outcome(&rx_b).expect("B").header.serial, b.serial);
        assert_eq!(counts(&c), (2, 0, 1));
    }

    #[test]
    fn a_waiting_call_that_times_out_leaves_the_reader_alone() {
        let (c, mut d) = fake();
        let (_, rx_a) = call(&c, 1);
        let a = next_call(&mut d);
        c.set_timeout(Some(Duration::from_millis(200)));
        let (_, rx_b) = call(&c, 2);
        let b = next_call(&mut d);
        let e = outcome(&rx_b).expect_err("B timed out");
        assert_eq!(e.code, ErrorNumber::OPERATION_TIMEOUT);
        assert_eq!(reader(&c), Reader::Call(a.serial));
        let mut out = reply(&b);
        out.extend(reply(&a));
        d.write_all(&out).expect("replies");
        assert_eq!(outcome(&rx_a).expect("A").header.serial, a.serial);
        assert!(c.shared.state.lock().expect("state").pending.is_empty());
    }

    #[test]
    fn many_threads_with_replies_in_any_order_and_events_between() {
        const THREADS: usize = 8;
        const CALLS: usize = 300;
        let (c, d) = fake();
        let (tx, events) = mpsc::channel();
        let tx = Mutex::new(tx);
        c.set_message_handler(Box::new(move |_| {
            let _ = tx.lock().map(|t| t.send(()));
        }));
        // The daemon: answers the calls it holds in reverse order, with
        // an event and a PING before every batch.
        let mut dr = d.try_clone().expect("clone");
        let mut dw = d;
        let total = THREADS * CALLS;
        let daemon = std::thread::spawn(move || {
            let mut answered = 0;
            let mut batches = 0;
            let mut held = Vec::new();
            while answered < total {
                let p = next_packet(&mut dr);
                if p.header.type_ == MessageType::CALL {
                    held.push(p.header);
                }
                // Up to three at a time, fewer when no more come soon.
                let more_soon = wait_readable(
                    dr.as_raw_fd(),
                    Some(Instant::now() + Duration::from_millis(5)),
                )
                .expect("poll");
                if held.is_empty() || (held.len() < 3 && more_soon) {
                    continue;
                }
                let mut out = event(num::DOMAIN_EVENT_LIFECYCLE, &());
                out.extend(ironvirt_proto::keepalive_packet(keepalive::PING));
                for h in held.drain(..).rev() {
                    out.extend(reply(&h));
                    answered += 1;
                }
                dw.write_all(&out).expect("answers");
                batches += 1;
            }
            (dw, batches)
        });
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..CALLS {
                        let p = c
                            .call_packet(
                                program::REMOTE_PROGRAM,
                                program::REMOTE_VERSION,
                                i as i32,
                                &(),
                            )
                            .expect("reply");
                        assert_eq!(p.header.proc_, i as i32, "a reply to another call");
                    }
                })
            })
            .collect();
        let (tx_done, done) = mpsc::channel();
        std::thread::spawn(move || {
            for t in threads {
                let _ = tx_done.send(t.join().is_ok());
            }
        });
        for _ in 0..THREADS {
            assert!(done
                .recv_timeout(Duration::from_secs(120))
                .expect("no hang"));
        }
        let (_dw, batches) = daemon.join().expect("daemon");
        for _ in 0..batches {
            events.recv_timeout(LIMIT).expect("every event");
        }
        assert!(c.shared.state.lock().expect("state").pending.is_empty());
    }
}
