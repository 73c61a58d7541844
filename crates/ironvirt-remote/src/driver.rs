//! [`RemoteDriver`]: the [`Driver`] trait implemented by RPC calls.

use crate::client::{socket_closed, Client, CloseCallback, CloseReason};
use crate::transport::{self, Target};
use ironvirt_driver::{
    DomainInfo, DomainRef, Driver, Error, ErrorDomain, ErrorNumber, LifecycleCallback,
    LifecycleEvent, NodeInfo, Result, SecurityLabel, SecurityModel, Uri, Uuid,
};
use ironvirt_proto::packet::Packet;
use ironvirt_proto::procedures::num;
use ironvirt_proto::remote::*;
use ironvirt_proto::types::{AuthType, NonnullDomain};
use ironvirt_xdr::xdr_struct;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

xdr_struct! {
    /// AUTH_POLKIT reply (`remote_auth_polkit_ret`).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct AuthPolkitRet {
        pub complete: i32,
    }
}

/// `virDrvFeature` numbers the client probes.
mod feature {
    pub const PROGRAM_KEEPALIVE: i32 = 10;
    pub const REMOTE_EVENT_CALLBACK: i32 = 14;
    pub const REMOTE_CLOSE_CALLBACK: i32 = 15;
}

/// `VIR_DOMAIN_EVENT_ID_LIFECYCLE`.
const EVENT_ID_LIFECYCLE: i32 = 0;
/// `VIR_CONNECT_RO`.
const CONNECT_RO: u32 = 1;

/// How to open a connection.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Open read-only (`VIR_CONNECT_RO`; the `-ro` socket for local daemons).
    pub read_only: bool,
    /// Keepalive: PING after this many seconds of silence, give up after
    /// `keepalive_count` unanswered PINGs. `None` turns keepalive off.
    /// virsh's default is 5 seconds and 6 PINGs.
    pub keepalive: Option<(u32, u32)>,
    /// How long one call waits for its reply; `None` waits as long as the
    /// connection lives.
    pub call_timeout: Option<Duration>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            read_only: false,
            keepalive: Some((5, 6)),
            call_timeout: None,
        }
    }
}

/// An event for the event thread, with the daemon's callback id for it
/// (`None` for old-style events, which carry none).
type QueuedEvent = (Option<i32>, LifecycleEvent);

/// Lifecycle callbacks registered on a connection. Like libvirt's client,
/// one registration with the daemon serves every local callback (the
/// daemon refuses a second one for the same event on one connection):
/// it is made with the first callback and dropped with the last.
#[derive(Default)]
struct Events {
    /// Local callbacks by the id the caller got back, and the daemon's
    /// registration: `Some(id)` for a callback registration (the id events
    /// carry), `Some(-1)` for an old-style one, `None` when not registered.
    state: Mutex<EventState>,
    /// Event thread's queue; created with the first registration.
    queue: Mutex<Option<mpsc::Sender<QueuedEvent>>>,
}

#[derive(Default)]
struct EventState {
    callbacks: HashMap<i32, LifecycleCallback>,
    next_id: i32,
    server: Option<i32>,
}

impl Events {
    fn push(&self, server_id: Option<i32>, ev: LifecycleEvent) {
        if let Ok(q) = self.queue.lock() {
            if let Some(tx) = q.as_ref() {
                let _ = tx.send((server_id, ev));
            }
        }
    }

    fn ensure_thread(self: &Arc<Self>) -> Result<()> {
        let mut q = self.queue.lock().map_err(|_| socket_closed())?;
        if q.is_some() {
            return Ok(());
        }
        let (tx, rx) = mpsc::channel::<QueuedEvent>();
        let me = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("remote-events".into())
            .spawn(move || {
                while let Ok((server_id, ev)) = rx.recv() {
                    let Some(events) = me.upgrade() else { return };
                    let cbs: Vec<LifecycleCallback> = match events.state.lock() {
                        Ok(st) if server_id.is_none() || st.server == server_id => {
                            let mut ids: Vec<_> = st.callbacks.keys().copied().collect();
                            ids.sort_unstable();
                            ids.iter()
                                .filter_map(|i| st.callbacks.get(i).cloned())
                                .collect()
                        }
                        Ok(_) => Vec::new(),
                        Err(_) => return,
                    };
                    drop(events);
                    for cb in cbs {
                        cb(&ev);
                    }
                }
            })
            .map_err(|e| Error::system(ErrorDomain::RPC, "Unable to start the event thread", &e))?;
        *q = Some(tx);
        Ok(())
    }
}

/// What the daemon said it supports.
#[derive(Clone, Copy, Debug, Default)]
struct Features {
    keepalive: bool,
    event_callback: bool,
    close_callback: bool,
}

/// A connection to a libvirt daemon (libvirtd, virtqemud, ironvirtd, ...)
/// through libvirt's RPC protocol. Every [`Driver`] method is one call (or
/// a few) to the daemon; errors come back as the daemon raised them.
///
/// Cheap to share between threads: calls from many threads travel on the
/// one connection at the same time.
pub struct RemoteDriver {
    client: Client,
    uri: Uri,
    target: Target,
    secure: bool,
    encrypted: bool,
    features: Features,
    events: Arc<Events>,
    close_registered: AtomicBool,
    closed: AtomicBool,
}

impl std::fmt::Debug for RemoteDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteDriver")
            .field("uri", &self.uri.original)
            .field("transport", &self.target.transport)
            .finish()
    }
}

fn dom(d: &DomainRef) -> NonnullDomain {
    NonnullDomain::from(d)
}

impl RemoteDriver {
    /// Opens a connection as libvirt's remote driver does: picks the
    /// transport and socket from the URI, authenticates, probes the
    /// daemon's features and opens the daemon's driver for the URI.
    pub fn connect(uri: &Uri, opts: &ConnectOptions) -> Result<RemoteDriver> {
        let target = Target::from_uri(uri, opts.read_only)?;
        let stream = transport::connect(&target)?;
        let (secure, encrypted) = (stream.secure, stream.encrypted);
        let client = Client::start(stream)?;
        let events = Arc::new(Events::default());
        let ev = Arc::clone(&events);
        client.set_message_handler(Box::new(move |p| handle_message(&ev, p)));
        let mut drv = RemoteDriver {
            client,
            uri: uri.clone(),
            target,
            secure,
            encrypted,
            features: Features::default(),
            events,
            close_registered: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        };
        if let Err(e) = drv.handshake(opts) {
            drv.client.shutdown();
            return Err(e);
        }
        Ok(drv)
    }

    fn handshake(&mut self, opts: &ConnectOptions) -> Result<()> {
        self.authenticate()?;
        if opts.keepalive.is_some() {
            self.features.keepalive = self.supports(feature::PROGRAM_KEEPALIVE);
        }
        self.client.call::<_, ()>(
            num::CONNECT_OPEN,
            &ConnectOpenArgs {
                name: Some(self.target.name.clone()),
                flags: if opts.read_only { CONNECT_RO } else { 0 },
            },
        )?;
        self.features.event_callback = self.supports(feature::REMOTE_EVENT_CALLBACK);
        self.features.close_callback = self.supports(feature::REMOTE_CLOSE_CALLBACK);
        if let (true, Some((interval, count))) = (self.features.keepalive, opts.keepalive) {
            self.client.start_keepalive(interval, count)?;
        }
        self.client.set_timeout(opts.call_timeout);
        Ok(())
    }

    /// libvirt's remoteAuthenticate: AUTH_LIST, then the first offered
    /// type (or the one `auth=` asks for).
    fn authenticate(&self) -> Result<()> {
        let list: AuthListRet = match self.client.call(num::AUTH_LIST, &()) {
            Ok(l) => l,
            // A daemon too old to know AUTH_LIST needs no authentication.
            Err(e) if e.code == ErrorNumber::NO_SUPPORT => return Ok(()),
            Err(e) => return Err(e),
        };
        if list.types.is_empty() {
            return Ok(());
        }
        let name = |t: AuthType| match t {
            AuthType::None => "none",
            AuthType::Sasl => "sasl",
            AuthType::Polkit => "polkit",
        };
        let chosen = match self.target.auth.as_deref() {
            Some(want) => {
                let want_l = want.to_ascii_lowercase();
                let base = want_l.split('.').next().unwrap_or("");
                list.types
                    .iter()
                    .copied()
                    .find(|t| name(*t) == base)
                    .ok_or_else(|| {
                        Error::new(
                            ErrorDomain::REMOTE,
                            ErrorNumber::AUTH_FAILED,
                            format!("requested authentication type {want} rejected"),
                        )
                    })?
            }
            None => list.types[0],
        };
        match chosen {
            AuthType::None => Ok(()),
            AuthType::Polkit => {
                let r: AuthPolkitRet = self.client.call(num::AUTH_POLKIT, &())?;
                if r.complete == 0 {
                    return Err(Error::new(
                        ErrorDomain::REMOTE,
                        ErrorNumber::AUTH_FAILED,
                        "polkit authentication did not complete",
                    ));
                }
                Ok(())
            }
            AuthType::Sasl => Err(Error::new(
                ErrorDomain::REMOTE,
                ErrorNumber::AUTH_UNAVAILABLE,
                "the daemon requires SASL authentication, which ironvirt's client does not implement",
            )),
        }
    }

    fn supports(&self, f: i32) -> bool {
        self.client
            .call::<_, ConnectSupportsFeatureRet>(
                num::CONNECT_SUPPORTS_FEATURE,
                &ConnectSupportsFeatureArgs { feature: f },
            )
            .map(|r| r.supported != 0)
            .unwrap_or(false)
    }

    /// The URI this connection was opened with.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Whether the connection is still open.
    pub fn is_alive(&self) -> bool {
        self.client.is_open()
    }

    /// libvirt's `virConnectIsSecure` view: UNIX sockets, TLS and ssh are
    /// secure; plain TCP and `ext` commands are not.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Whether the traffic is encrypted (TLS).
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// Sets how long each later call waits for its reply (`None`: no limit).
    pub fn set_call_timeout(&self, t: Option<Duration>) {
        self.client.set_timeout(t);
    }

    /// Changes keepalive (interval seconds, unanswered PINGs before the
    /// connection is dropped); interval 0 stops it. Fails when the daemon
    /// does not take part in keepalive.
    pub fn set_keepalive(&self, interval: u32, count: u32) -> Result<()> {
        if !self.features.keepalive {
            return Err(Error::new(
                ErrorDomain::RPC,
                ErrorNumber::INTERNAL_ERROR,
                "the caller doesn't support keepalive protocol; perhaps it's missing event loop implementation",
            ));
        }
        self.client.start_keepalive(interval, count)
    }

    /// Calls `cb` once when the connection closes, with the reason: the
    /// daemon went away (`Eof`), an I/O error (`Error`), keepalive gave up
    /// (`Keepalive`), or the connection was closed here (`Client`).
    pub fn on_close(&self, cb: impl Fn(CloseReason) + Send + Sync + 'static) {
        let cb: CloseCallback = Arc::new(cb);
        self.client.on_close(cb);
        if self.features.close_callback && !self.close_registered.swap(true, Ordering::SeqCst) {
            let _ = self
                .client
                .call::<_, ()>(num::CONNECT_REGISTER_CLOSE_CALLBACK, &());
        }
    }

    /// Any call of the remote program: procedure number, arguments, reply
    /// type. For APIs the [`Driver`] trait does not carry.
    pub fn call<A: ironvirt_xdr::XdrEncode + ?Sized, R: ironvirt_xdr::XdrDecode>(
        &self,
        proc_: i32,
        args: &A,
    ) -> Result<R> {
        self.client.call(proc_, args)
    }

    /// Any call of any program (e.g. the QEMU program); returns the reply packet.
    pub fn call_program<A: ironvirt_xdr::XdrEncode + ?Sized>(
        &self,
        prog: u32,
        vers: u32,
        proc_: i32,
        args: &A,
    ) -> Result<Packet> {
        self.client.call_packet(prog, vers, proc_, args)
    }

    fn dom_call<R: ironvirt_xdr::XdrDecode>(&self, proc_: i32, d: &DomainRef) -> Result<R> {
        self.client.call(proc_, &DomainArgs { dom: dom(d) })
    }

    fn dom_flags_call<R: ironvirt_xdr::XdrDecode>(
        &self,
        proc_: i32,
        d: &DomainRef,
        flags: u32,
    ) -> Result<R> {
        self.client
            .call(proc_, &DomainFlagsArgs { dom: dom(d), flags })
    }
}

fn handle_message(events: &Events, p: Packet) {
    match p.header.proc_ {
        num::DOMAIN_EVENT_CALLBACK_LIFECYCLE => {
            if let Ok(m) = p.decode::<DomainEventCallbackLifecycleMsg>() {
                events.push(Some(m.callback_id), LifecycleEvent::from(m.msg));
            }
        }
        num::DOMAIN_EVENT_LIFECYCLE => {
            if let Ok(m) = p.decode::<DomainEventLifecycleMsg>() {
                events.push(None, LifecycleEvent::from(m));
            }
        }
        _ => {}
    }
}

impl Drop for RemoteDriver {
    fn drop(&mut self) {
        self.client.shutdown();
    }
}

impl Driver for RemoteDriver {
    fn error_domain(&self) -> ErrorDomain {
        ErrorDomain::REMOTE
    }

    fn get_type(&self) -> Result<String> {
        Ok(self
            .client
            .call::<_, ConnectGetTypeRet>(num::CONNECT_GET_TYPE, &())?
            .type_)
    }

    /// The URI as the caller gave it, as libvirt's `virConnectGetURI` does.
    fn get_uri(&self) -> Result<String> {
        Ok(self.uri.original.clone())
    }

    fn get_hostname(&self) -> Result<String> {
        Ok(self
            .client
            .call::<_, ConnectGetHostnameRet>(num::CONNECT_GET_HOSTNAME, &())?
            .hostname)
    }

    fn get_version(&self) -> Result<u64> {
        Ok(self
            .client
            .call::<_, ConnectGetVersionRet>(num::CONNECT_GET_VERSION, &())?
            .hv_ver)
    }

    fn get_lib_version(&self) -> Result<u64> {
        Ok(self
            .client
            .call::<_, ConnectGetLibVersionRet>(num::CONNECT_GET_LIB_VERSION, &())?
            .lib_ver)
    }

    fn get_capabilities(&self) -> Result<String> {
        Ok(self
            .client
            .call::<_, ConnectGetCapabilitiesRet>(num::CONNECT_GET_CAPABILITIES, &())?
            .capabilities)
    }

    fn domain_xml_to_native(&self, native_format: &str, xml: &str, flags: u32) -> Result<String> {
        let args = ConnectDomainXmlToNativeArgs {
            native_format: native_format.to_string(),
            domain_xml: xml.to_string(),
            flags,
        };
        Ok(self
            .client
            .call::<_, ConnectDomainXmlToNativeRet>(num::CONNECT_DOMAIN_XML_TO_NATIVE, &args)?
            .native_config)
    }

    fn get_domain_capabilities(
        &self,
        emulator: Option<&str>,
        arch: Option<&str>,
        machine: Option<&str>,
        virttype: Option<&str>,
        flags: u32,
    ) -> Result<String> {
        let args = ConnectGetDomainCapabilitiesArgs {
            emulatorbin: emulator.map(str::to_string),
            arch: arch.map(str::to_string),
            machine: machine.map(str::to_string),
            virttype: virttype.map(str::to_string),
            flags,
        };
        Ok(self
            .client
            .call::<_, ConnectGetDomainCapabilitiesRet>(
                num::CONNECT_GET_DOMAIN_CAPABILITIES,
                &args,
            )?
            .capabilities)
    }

    fn node_get_info(&self) -> Result<NodeInfo> {
        Ok(self
            .client
            .call::<_, NodeGetInfoRet>(num::NODE_GET_INFO, &())?
            .into())
    }

    fn node_get_security_model(&self) -> Result<SecurityModel> {
        Ok(self
            .client
            .call::<_, NodeGetSecurityModelRet>(num::NODE_GET_SECURITY_MODEL, &())?
            .into())
    }

    fn num_of_domains(&self) -> Result<i32> {
        Ok(self
            .client
            .call::<_, ConnectNumOfDomainsRet>(num::CONNECT_NUM_OF_DOMAINS, &())?
            .num)
    }

    fn num_of_defined_domains(&self) -> Result<i32> {
        Ok(self
            .client
            .call::<_, ConnectNumOfDefinedDomainsRet>(num::CONNECT_NUM_OF_DEFINED_DOMAINS, &())?
            .num)
    }

    fn domain_lookup_by_name(&self, name: &str) -> Result<DomainRef> {
        let r: DomainRet = self.client.call(
            num::DOMAIN_LOOKUP_BY_NAME,
            &DomainLookupByNameArgs {
                name: name.to_string(),
            },
        )?;
        Ok(r.dom.into())
    }

    fn domain_lookup_by_uuid(&self, uuid: &Uuid) -> Result<DomainRef> {
        let r: DomainRet = self.client.call(
            num::DOMAIN_LOOKUP_BY_UUID,
            &DomainLookupByUuidArgs { uuid: uuid.0 },
        )?;
        Ok(r.dom.into())
    }

    fn domain_lookup_by_id(&self, id: i32) -> Result<DomainRef> {
        let r: DomainRet = self
            .client
            .call(num::DOMAIN_LOOKUP_BY_ID, &DomainLookupByIdArgs { id })?;
        Ok(r.dom.into())
    }

    fn list_all_domains(&self, flags: u32) -> Result<Vec<DomainRef>> {
        let r: ConnectListAllDomainsRet = self.client.call(
            num::CONNECT_LIST_ALL_DOMAINS,
            &ConnectListAllDomainsArgs {
                need_results: 1,
                flags,
            },
        )?;
        Ok(r.domains.into_iter().map(DomainRef::from).collect())
    }

    fn domain_define_xml(&self, xml: &str, flags: u32) -> Result<DomainRef> {
        // virDomainDefineXML and virDomainDefineXMLFlags are two procedures;
        // without flags the older one works with every daemon.
        let r: DomainRet = if flags == 0 {
            self.client.call(
                num::DOMAIN_DEFINE_XML,
                &DomainDefineXmlArgs {
                    xml: xml.to_string(),
                },
            )?
        } else {
            self.client.call(
                num::DOMAIN_DEFINE_XML_FLAGS,
                &DomainDefineXmlFlagsArgs {
                    xml: xml.to_string(),
                    flags,
                },
            )?
        };
        Ok(r.dom.into())
    }

    fn domain_undefine(&self, d: &DomainRef, flags: u32) -> Result<()> {
        if flags == 0 {
            self.dom_call(num::DOMAIN_UNDEFINE, d)
        } else {
            self.dom_flags_call(num::DOMAIN_UNDEFINE_FLAGS, d, flags)
        }
    }

    fn domain_create(&self, d: &DomainRef, flags: u32) -> Result<DomainRef> {
        let r: DomainRet = self.dom_flags_call(num::DOMAIN_CREATE_WITH_FLAGS, d, flags)?;
        Ok(r.dom.into())
    }

    fn domain_create_xml(&self, xml: &str, flags: u32) -> Result<DomainRef> {
        let r: DomainRet = self.client.call(
            num::DOMAIN_CREATE_XML,
            &DomainCreateXmlArgs {
                xml_desc: xml.to_string(),
                flags,
            },
        )?;
        Ok(r.dom.into())
    }

    fn domain_destroy(&self, d: &DomainRef, flags: u32) -> Result<()> {
        if flags == 0 {
            self.dom_call(num::DOMAIN_DESTROY, d)
        } else {
            self.dom_flags_call(num::DOMAIN_DESTROY_FLAGS, d, flags)
        }
    }

    fn domain_shutdown(&self, d: &DomainRef, flags: u32) -> Result<()> {
        if flags == 0 {
            self.dom_call(num::DOMAIN_SHUTDOWN, d)
        } else {
            self.dom_flags_call(num::DOMAIN_SHUTDOWN_FLAGS, d, flags)
        }
    }

    fn domain_reboot(&self, d: &DomainRef, flags: u32) -> Result<()> {
        self.dom_flags_call(num::DOMAIN_REBOOT, d, flags)
    }

    fn domain_reset(&self, d: &DomainRef, flags: u32) -> Result<()> {
        self.dom_flags_call(num::DOMAIN_RESET, d, flags)
    }

    fn domain_suspend(&self, d: &DomainRef) -> Result<()> {
        self.dom_call(num::DOMAIN_SUSPEND, d)
    }

    fn domain_resume(&self, d: &DomainRef) -> Result<()> {
        self.dom_call(num::DOMAIN_RESUME, d)
    }

    fn domain_get_info(&self, d: &DomainRef) -> Result<DomainInfo> {
        Ok(self
            .dom_call::<DomainGetInfoRet>(num::DOMAIN_GET_INFO, d)?
            .into())
    }

    fn domain_get_state(&self, d: &DomainRef, flags: u32) -> Result<(i32, i32)> {
        let r: DomainGetStateRet = self.dom_flags_call(num::DOMAIN_GET_STATE, d, flags)?;
        Ok((r.state, r.reason))
    }

    fn domain_get_xml_desc(&self, d: &DomainRef, flags: u32) -> Result<String> {
        Ok(self
            .dom_flags_call::<DomainGetXmlDescRet>(num::DOMAIN_GET_XML_DESC, d, flags)?
            .xml)
    }

    fn domain_get_os_type(&self, d: &DomainRef) -> Result<String> {
        Ok(self
            .dom_call::<DomainGetOsTypeRet>(num::DOMAIN_GET_OS_TYPE, d)?
            .type_)
    }

    fn domain_get_max_memory(&self, d: &DomainRef) -> Result<u64> {
        Ok(self
            .dom_call::<DomainGetMaxMemoryRet>(num::DOMAIN_GET_MAX_MEMORY, d)?
            .memory)
    }

    fn domain_get_autostart(&self, d: &DomainRef) -> Result<bool> {
        Ok(self
            .dom_call::<DomainGetAutostartRet>(num::DOMAIN_GET_AUTOSTART, d)?
            .autostart
            != 0)
    }

    fn domain_set_autostart(&self, d: &DomainRef, autostart: bool) -> Result<()> {
        self.client.call(
            num::DOMAIN_SET_AUTOSTART,
            &DomainSetAutostartArgs {
                dom: dom(d),
                autostart: autostart as i32,
            },
        )
    }

    fn domain_is_active(&self, d: &DomainRef) -> Result<bool> {
        Ok(self
            .dom_call::<DomainIsActiveRet>(num::DOMAIN_IS_ACTIVE, d)?
            .active
            != 0)
    }

    fn domain_is_persistent(&self, d: &DomainRef) -> Result<bool> {
        Ok(self
            .dom_call::<DomainIsPersistentRet>(num::DOMAIN_IS_PERSISTENT, d)?
            .persistent
            != 0)
    }

    fn domain_is_updated(&self, d: &DomainRef) -> Result<bool> {
        Ok(self
            .dom_call::<DomainIsUpdatedRet>(num::DOMAIN_IS_UPDATED, d)?
            .updated
            != 0)
    }

    fn domain_has_managed_save_image(&self, d: &DomainRef, flags: u32) -> Result<bool> {
        Ok(self
            .dom_flags_call::<DomainHasManagedSaveImageRet>(
                num::DOMAIN_HAS_MANAGED_SAVE_IMAGE,
                d,
                flags,
            )?
            .result
            != 0)
    }

    fn domain_get_security_label(&self, d: &DomainRef) -> Result<SecurityLabel> {
        Ok(self
            .dom_call::<DomainGetSecurityLabelRet>(num::DOMAIN_GET_SECURITY_LABEL, d)?
            .into())
    }

    fn domain_event_register(&self, callback: LifecycleCallback) -> Result<i32> {
        self.events.ensure_thread()?;
        let mut st = self.events.state.lock().map_err(|_| socket_closed())?;
        if st.server.is_none() {
            st.server = Some(if self.features.event_callback {
                let r: ConnectDomainEventCallbackRegisterAnyRet = self.client.call(
                    num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
                    &ConnectDomainEventCallbackRegisterAnyArgs {
                        event_id: EVENT_ID_LIFECYCLE,
                        dom: None,
                    },
                )?;
                r.callback_id
            } else {
                self.client.call::<_, ()>(
                    num::CONNECT_DOMAIN_EVENT_REGISTER_ANY,
                    &ConnectDomainEventRegisterAnyArgs {
                        event_id: EVENT_ID_LIFECYCLE,
                    },
                )?;
                -1
            });
        }
        let id = st.next_id;
        st.next_id += 1;
        st.callbacks.insert(id, callback);
        Ok(id)
    }

    fn domain_event_deregister(&self, callback_id: i32) -> Result<()> {
        let mut st = self.events.state.lock().map_err(|_| socket_closed())?;
        if !st.callbacks.contains_key(&callback_id) {
            // libvirt's client: VIR_ERR_INVALID_ARG in VIR_FROM_NONE (measured).
            return Err(Error::new(
                ErrorDomain::NONE,
                ErrorNumber::INVALID_ARG,
                format!("event callback id {callback_id} not registered"),
            ));
        }
        if st.callbacks.len() == 1 {
            match st.server {
                Some(-1) => self.client.call::<_, ()>(
                    num::CONNECT_DOMAIN_EVENT_DEREGISTER_ANY,
                    &ConnectDomainEventDeregisterAnyArgs {
                        event_id: EVENT_ID_LIFECYCLE,
                    },
                )?,
                Some(server_id) => self.client.call::<_, ()>(
                    num::CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
                    &ConnectDomainEventCallbackDeregisterAnyArgs {
                        callback_id: server_id,
                    },
                )?,
                None => {}
            }
            st.server = None;
        }
        st.callbacks.remove(&callback_id);
        Ok(())
    }

    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.client.begin_close();
        let r = if self.client.is_open() {
            if self.close_registered.load(Ordering::SeqCst) {
                let _ = self
                    .client
                    .call::<_, ()>(num::CONNECT_UNREGISTER_CLOSE_CALLBACK, &());
            }
            self.client.call::<_, ()>(num::CONNECT_CLOSE, &())
        } else {
            Ok(())
        };
        self.client.shutdown();
        r
    }
}
