//! What other threads hand to a connection: domain events raised by any
//! connection's driver call, delivered into the client's outgoing queue.
//!
//! Events never wait for the client: they are queued, and a client whose
//! queue grows past [`EVENT_QUEUE_MAX`] bytes (it stopped reading) is marked
//! dead and dropped by its connection task, so one stuck client can never
//! hold up the connection that raised the event.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use ironvirt_driver::LifecycleEvent;
use ironvirt_proto::event_packet;
use ironvirt_proto::procedures::num;
use ironvirt_proto::remote::{DomainEventCallbackLifecycleMsg, DomainEventLifecycleMsg};
use tokio::sync::Notify;

/// Bytes queued for one client (replies and events not yet written)
/// beyond which an event drops the client instead of queueing.
pub const EVENT_QUEUE_MAX: usize = 16 << 20;

/// `VIR_DOMAIN_EVENT_ID_LIFECYCLE`.
pub const EVENT_ID_LIFECYCLE: i32 = 0;

/// One domain event registration of a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The id the client gets back and finds in every event.
    pub callback_id: i32,
    /// `VIR_DOMAIN_EVENT_ID_*`.
    pub event_id: i32,
    /// Only events of this domain (by UUID), or all.
    pub dom: Option<[u8; 16]>,
    /// Made the old way (`CONNECT_DOMAIN_EVENT_REGISTER(_ANY)`): its
    /// events carry no callback id.
    pub legacy: bool,
}

/// The event registrations of one connection, in registration order.
///
/// libvirtd keeps both styles in one list per connection (measured): a
/// second registration for the same event and domain filter is refused
/// whatever its style, and an old-style deregistration removes the first
/// registration of that event, whatever its style.
#[derive(Default, Debug)]
pub struct Registrations {
    /// Every registration.
    pub list: Vec<Registration>,
}

impl Registrations {
    /// Whether a registration for this event and domain filter exists.
    pub fn tracks(&self, event_id: i32, dom: Option<[u8; 16]>) -> bool {
        self.list
            .iter()
            .any(|c| c.event_id == event_id && c.dom == dom)
    }

    /// Removes the registration with this callback id.
    pub fn remove_id(&mut self, callback_id: i32) -> bool {
        let before = self.list.len();
        self.list.retain(|c| c.callback_id != callback_id);
        self.list.len() != before
    }

    /// Removes the first registration of this event.
    pub fn remove_event(&mut self, event_id: i32) -> bool {
        match self.list.iter().position(|c| c.event_id == event_id) {
            Some(i) => {
                self.list.remove(i);
                true
            }
            None => false,
        }
    }
}

#[derive(Default)]
struct Inner {
    msgs: Vec<Vec<u8>>,
    regs: Registrations,
}

/// The part of a connection other threads can reach.
#[derive(Default)]
pub struct Outbox {
    inner: Mutex<Inner>,
    /// Bytes queued for the client, here and in the connection's own queue.
    pub queued: AtomicUsize,
    dead: AtomicBool,
    /// Wakes the connection task.
    pub notify: Notify,
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the registrations.
    pub fn with_regs<T>(&self, f: impl FnOnce(&mut Registrations) -> T) -> T {
        f(&mut self.lock().regs)
    }

    /// Whether the client was dropped for not reading its events.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }

    /// Takes the queued messages.
    pub fn take(&self, into: &mut std::collections::VecDeque<Vec<u8>>) {
        let mut g = self.lock();
        into.extend(g.msgs.drain(..));
    }

    /// Queues the messages a lifecycle event means for this client.
    pub fn deliver(&self, ev: &LifecycleEvent) {
        if self.is_dead() {
            return;
        }
        let msg = DomainEventLifecycleMsg::from(ev);
        let mut g = self.lock();
        let mut pkts = Vec::new();
        for r in &g.regs.list {
            if r.event_id != EVENT_ID_LIFECYCLE || r.dom.is_some_and(|u| u != ev.dom.uuid.0) {
                continue;
            }
            if r.legacy {
                pkts.extend(event_packet(num::DOMAIN_EVENT_LIFECYCLE, &msg).ok());
            } else {
                let m = DomainEventCallbackLifecycleMsg {
                    callback_id: r.callback_id,
                    msg: msg.clone(),
                };
                pkts.extend(event_packet(num::DOMAIN_EVENT_CALLBACK_LIFECYCLE, &m).ok());
            }
        }
        if pkts.is_empty() {
            return;
        }
        let add: usize = pkts.iter().map(Vec::len).sum();
        let before = self.queued.fetch_add(add, Ordering::Relaxed);
        if before + add > EVENT_QUEUE_MAX {
            self.dead.store(true, Ordering::Relaxed);
            g.msgs.clear();
            drop(g);
            tracing::warn!("dropping a client that does not read its events");
        } else {
            g.msgs.extend(pkts);
            drop(g);
        }
        self.notify.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironvirt_driver::{DomainRef, Uuid};
    use ironvirt_proto::Packet;

    fn ev(uuid: u8) -> LifecycleEvent {
        LifecycleEvent {
            dom: DomainRef {
                name: "d".into(),
                uuid: Uuid([uuid; 16]),
                id: -1,
            },
            event: 0,
            detail: 0,
        }
    }

    #[test]
    fn filters_and_overflow() {
        let o = Outbox::default();
        o.deliver(&ev(1));
        let mut q = std::collections::VecDeque::new();
        o.take(&mut q);
        assert!(q.is_empty());
        o.with_regs(|r| {
            r.list.push(Registration {
                callback_id: 6,
                event_id: 0,
                dom: None,
                legacy: true,
            });
            r.list.push(Registration {
                callback_id: 7,
                event_id: 0,
                dom: Some([2; 16]),
                legacy: false,
            });
            r.list.push(Registration {
                callback_id: 8,
                event_id: 3,
                dom: None,
                legacy: false,
            });
            assert!(r.tracks(0, None) && r.tracks(0, Some([2; 16])) && !r.tracks(0, Some([3; 16])));
        });
        o.deliver(&ev(1));
        o.take(&mut q);
        assert_eq!(q.len(), 1);
        let p = Packet::parse(&q[0]).unwrap();
        assert_eq!(p.header.proc_, num::DOMAIN_EVENT_LIFECYCLE);
        q.clear();
        o.deliver(&ev(2));
        o.take(&mut q);
        assert_eq!(q.len(), 2);
        let p = Packet::parse(&q[1]).unwrap();
        assert_eq!(p.header.proc_, num::DOMAIN_EVENT_CALLBACK_LIFECYCLE);
        let m: DomainEventCallbackLifecycleMsg = p.decode().unwrap();
        assert_eq!(m.callback_id, 7);
        o.with_regs(|r| {
            assert!(r.remove_event(0));
            assert_eq!(r.list[0].callback_id, 7);
            assert!(r.remove_id(8) && !r.remove_id(8));
        });
        // A client that never reads is dropped, not queued for forever.
        o.queued.store(EVENT_QUEUE_MAX, Ordering::Relaxed);
        o.deliver(&ev(2));
        assert!(o.is_dead());
    }
}
