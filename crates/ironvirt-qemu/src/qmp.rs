//! A QMP client on a unix socket: commands with ids answered in any order,
//! asynchronous events and end-of-file handed to callbacks from a reader
//! thread.
//!
//! QEMU talks one JSON object per line. The greeting and
//! `qmp_capabilities` are exchanged synchronously by [`Qmp::connect`];
//! after that a reader thread owns the receiving half: replies go to the
//! command waiting for their id, events and EOF to the [`Handler`].
//! Anything QEMU sends that is not valid JSON is logged and skipped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result};
use serde_json::{json, Value};

const DOM: ErrorDomain = ErrorDomain::QEMU;

/// Receives what QEMU says on its own; called on the reader thread.
pub trait Handler: Send + Sync {
    /// An asynchronous event (`SHUTDOWN`, `STOP`, `RESUME`, ...).
    fn event(&self, name: &str, data: &Value);
    /// The connection closed (QEMU exited, or the socket broke).
    fn eof(&self);
}

type Reply = std::result::Result<Value, Value>;

/// A connected monitor.
pub struct Qmp {
    writer: Mutex<UnixStream>,
    pending: Arc<Mutex<HashMap<u64, Sender<Reply>>>>,
    next: AtomicU64,
    closed: Arc<AtomicBool>,
    /// The version QEMU announced in its greeting.
    pub version: Value,
}

impl std::fmt::Debug for Qmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qmp").finish_non_exhaustive()
    }
}

fn mon_err(msg: impl Into<String>) -> Error {
    Error::new(DOM, ErrorNumber::OPERATION_FAILED, msg)
}

fn read_json_line(r: &mut BufReader<UnixStream>) -> Result<Value> {
    loop {
        let mut line = String::new();
        let n = r
            .read_line(&mut line)
            .map_err(|e| mon_err(format!("unable to read from monitor: {e}")))?;
        if n == 0 {
            return Err(mon_err("End of file from qemu monitor"));
        }
        if line.trim().is_empty() {
            continue;
        }
        return serde_json::from_str(&line)
            .map_err(|e| mon_err(format!("cannot parse monitor reply '{}': {e}", line.trim())));
    }
}

impl Qmp {
    /// Connects to `path`, retrying until `deadline` while `alive` says the
    /// process is still there; reads the greeting and negotiates
    /// capabilities, then hands the connection to a reader thread.
    pub fn connect(
        path: &Path,
        deadline: Instant,
        alive: &dyn Fn() -> bool,
        handler: Arc<dyn Handler>,
    ) -> Result<Arc<Qmp>> {
        let mut delay = Duration::from_micros(200);
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) => {
                    if !alive() {
                        return Err(mon_err("process exited while connecting to monitor"));
                    }
                    if Instant::now() >= deadline {
                        return Err(mon_err(format!(
                            "monitor socket did not show up: {} ({e})",
                            path.display()
                        )));
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(4));
                }
            }
        };
        let remaining = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        stream
            .set_read_timeout(Some(remaining))
            .map_err(|e| mon_err(e.to_string()))?;
        let mut reader = BufReader::new(stream.try_clone().map_err(|e| mon_err(e.to_string()))?);
        let greeting = read_json_line(&mut reader)?;
        let version = greeting
            .get("QMP")
            .and_then(|q| q.get("version"))
            .cloned()
            .ok_or_else(|| mon_err("unexpected QMP greeting"))?;
        let mut w = stream.try_clone().map_err(|e| mon_err(e.to_string()))?;
        w.write_all(b"{\"execute\":\"qmp_capabilities\",\"id\":\"cap\"}\r\n")
            .map_err(|e| mon_err(format!("unable to write to monitor: {e}")))?;
        // Events may arrive before the reply (a guest that stops at once):
        // keep them for the handler.
        let mut early = Vec::new();
        loop {
            let v = read_json_line(&mut reader)?;
            if v.get("event").is_some() {
                early.push(v);
                continue;
            }
            if let Some(e) = v.get("error") {
                return Err(mon_err(format!("qmp_capabilities failed: {e}")));
            }
            break;
        }
        stream
            .set_read_timeout(None)
            .map_err(|e| mon_err(e.to_string()))?;
        let qmp = Arc::new(Qmp {
            writer: Mutex::new(w),
            pending: Arc::new(Mutex::new(HashMap::new())),
            next: AtomicU64::new(1),
            closed: Arc::new(AtomicBool::new(false)),
            version,
        });
        let pending = qmp.pending.clone();
        let closed = qmp.closed.clone();
        std::thread::Builder::new()
            .name("qemu-monitor".into())
            .spawn(move || {
                for e in early {
                    dispatch_event(&*handler, &e);
                }
                loop {
                    match read_json_line(&mut reader) {
                        Ok(v) => {
                            if v.get("event").is_some() {
                                dispatch_event(&*handler, &v);
                                continue;
                            }
                            let id = v.get("id").and_then(Value::as_u64);
                            let reply = match (v.get("return"), v.get("error")) {
                                (Some(r), _) => Ok(r.clone()),
                                (None, Some(e)) => Err(e.clone()),
                                _ => {
                                    tracing::warn!(reply = %v, "unexpected monitor message");
                                    continue;
                                }
                            };
                            if let Some(tx) = id.and_then(|id| lock(&pending).remove(&id)) {
                                let _ = tx.send(reply);
                            }
                        }
                        Err(e) => {
                            if e.message.contains("cannot parse") {
                                tracing::warn!(error = %e, "ignoring monitor garbage");
                                continue;
                            }
                            break;
                        }
                    }
                }
                closed.store(true, Ordering::SeqCst);
                // Fail every waiting command: dropping the senders wakes them.
                lock(&pending).clear();
                handler.eof();
            })
            .map_err(|e| mon_err(format!("cannot start monitor thread: {e}")))?;
        Ok(qmp)
    }

    /// Runs a command and waits up to `timeout` for its reply.
    pub fn execute(&self, cmd: &str, args: Option<Value>, timeout: Duration) -> Result<Value> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(mon_err("monitor connection is closed"));
        }
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = channel();
        lock(&self.pending).insert(id, tx);
        let mut msg = json!({"execute": cmd, "id": id});
        if let Some(a) = args {
            msg["arguments"] = a;
        }
        let mut line = msg.to_string();
        line.push_str("\r\n");
        let wres = lock(&self.writer).write_all(line.as_bytes());
        if let Err(e) = wres {
            lock(&self.pending).remove(&id);
            return Err(mon_err(format!("unable to write to monitor: {e}")));
        }
        match rx.recv_timeout(timeout) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let desc = e
                    .get("desc")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_string();
                Err(Error::new(
                    DOM,
                    ErrorNumber::INTERNAL_ERROR,
                    format!("unable to execute QEMU command '{cmd}': {desc}"),
                ))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                lock(&self.pending).remove(&id);
                Err(Error::new(
                    DOM,
                    ErrorNumber::OPERATION_TIMEOUT,
                    format!("timed out waiting for the reply to QEMU command '{cmd}'"),
                ))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(mon_err(format!("monitor closed while running '{cmd}'")))
            }
        }
    }

    /// Whether the reader has seen the end of the connection.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Shuts the socket down (the reader thread then sees EOF).
    pub fn close(&self) {
        let _ = lock(&self.writer).shutdown(std::net::Shutdown::Both);
    }
}

fn dispatch_event(h: &dyn Handler, v: &Value) {
    let name = v.get("event").and_then(Value::as_str).unwrap_or("");
    let data = v.get("data").cloned().unwrap_or(Value::Null);
    h.event(name, &data);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    struct Rec(Mutex<Vec<String>>);
    impl Handler for Rec {
        fn event(&self, name: &str, _data: &Value) {
            lock(&self.0).push(name.to_string());
        }
        fn eof(&self) {
            lock(&self.0).push("EOF".into());
        }
    }

    #[test]
    fn replies_events_and_eof() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.sock");
        let l = UnixListener::bind(&p).unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            w.write_all(
                b"{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7}}, \"capabilities\": []}}\r\n",
            )
            .unwrap();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.contains("qmp_capabilities"));
            w.write_all(b"{\"event\": \"EARLY\"}\r\n{\"return\": {}, \"id\": \"cap\"}\r\n")
                .unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            let id = v["id"].clone();
            w.write_all(b"not json\r\n{\"event\": \"STOP\"}\r\n")
                .unwrap();
            w.write_all(
                format!("{{\"return\": {{\"status\": \"paused\"}}, \"id\": {id}}}\r\n").as_bytes(),
            )
            .unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            let id = v["id"].clone();
            w.write_all(
                format!("{{\"error\": {{\"class\": \"GenericError\", \"desc\": \"nope\"}}, \"id\": {id}}}\r\n")
                    .as_bytes(),
            )
            .unwrap();
        });
        let rec = Arc::new(Rec(Mutex::new(Vec::new())));
        let q = Qmp::connect(
            &p,
            Instant::now() + Duration::from_secs(5),
            &|| true,
            rec.clone(),
        )
        .unwrap();
        let r = q
            .execute("query-status", None, Duration::from_secs(5))
            .unwrap();
        assert_eq!(r["status"], "paused");
        let e = q
            .execute("bogus", None, Duration::from_secs(5))
            .unwrap_err();
        assert!(e.message.contains("nope"), "{e}");
        server.join().unwrap();
        let t = Instant::now();
        while !q.is_closed() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(q.execute("x", None, Duration::from_secs(1)).is_err());
        assert_eq!(*lock(&rec.0), vec!["EARLY", "STOP", "EOF"]);
    }
}
