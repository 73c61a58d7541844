//! From a call of the remote program to a [`Driver`] method and back: the
//! per-connection session state (the open driver, read-only mode, event
//! registrations, keepalive) and the procedure table of what the daemon
//! serves.
//!
//! Order of checks, as libvirtd does them (measured on libvirt 9.0):
//! unknown procedure, then the arguments' decoding ("Unable to decode
//! message payload"), then "hypervisor connection not open", then the
//! read-only refusal, then the driver. One deliberate difference: on a
//! read-only connection a procedure that always changes state is refused
//! before its arguments are decoded, so a read-only client never gets a
//! write procedure's arguments parsed at all.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ironvirt_driver::{
    DomainRef, Driver, Error, ErrorDomain, ErrorNumber, LifecycleCallback, Result, Uuid,
};
use ironvirt_proto::procedures::{self, num, Access, Procedure};
use ironvirt_proto::remote::*;
use ironvirt_proto::types::{AuthType, NonnullDomain};
use ironvirt_proto::{error_packet, result_packet, Header, ProtoError};
use ironvirt_xdr::{Decoder, XdrDecode, XdrEncode};

use crate::drivers::{Kind, Opened, Target};
use crate::outbox::{Outbox, Registration};
use crate::server::Daemon;

/// What the connection does with a call.
pub enum Action {
    /// Send this reply.
    Reply(Vec<u8>),
    /// Send this reply, then close the connection (`CONNECT_CLOSE`).
    ReplyThenClose(Vec<u8>),
    /// Run this on the blocking pool; it returns the reply.
    Blocking(Box<dyn FnOnce() -> Vec<u8> + Send>),
    /// Open a driver on the blocking pool, then answer `CONNECT_OPEN`.
    Open(Header, Box<Target>, bool),
}

/// `VIR_CONNECT_RO`.
const CONNECT_RO: u32 = 1;
/// `VIR_DOMAIN_EVENT_ID_LAST` in libvirt 9.0: valid event ids are below it.
const EVENT_ID_LAST: i32 = 27;

/// `VIR_DRV_FEATURE_*` numbers ironvirtd answers yes to.
mod feature {
    /// `VIR_TYPED_PARAM_STRING` values cross the wire.
    pub const TYPED_PARAM_STRING: i32 = 9;
    /// The keepalive program (asked before `CONNECT_OPEN`).
    pub const PROGRAM_KEEPALIVE: i32 = 10;
    /// Callback ids in domain events (`DOMAIN_EVENT_CALLBACK_*`).
    pub const REMOTE_EVENT_CALLBACK: i32 = 14;
    /// `CONNECT_REGISTER_CLOSE_CALLBACK`.
    pub const REMOTE_CLOSE_CALLBACK: i32 = 15;
    pub const SUPPORTED: &[i32] = &[
        TYPED_PARAM_STRING,
        PROGRAM_KEEPALIVE,
        REMOTE_EVENT_CALLBACK,
        REMOTE_CLOSE_CALLBACK,
    ];
}

fn rpc_internal(msg: &str) -> Error {
    Error::new(ErrorDomain::RPC, ErrorNumber::INTERNAL_ERROR, msg)
}

/// libvirtd's answer to any call that needs a driver before `CONNECT_OPEN`.
pub fn not_open() -> Error {
    rpc_internal("hypervisor connection not open")
}

fn decode<A: XdrDecode>(payload: &[u8]) -> Result<A> {
    // libvirt's XDR routines ignore bytes after the arguments (measured).
    Decoder::new(payload)
        .get::<A>()
        .map_err(|e| Error::from(ProtoError::from(e)))
}

/// A driver's own "not supported" error names the API in the API's error
/// domain, as libvirt's public functions raise it.
fn fix_error(e: Error, p: &Procedure, drv_domain: ErrorDomain) -> Error {
    if e.code == ErrorNumber::NO_SUPPORT && e.domain == drv_domain {
        p.no_support()
    } else {
        e
    }
}

/// Whether a QEMU driver call only reads in-memory state (answered on the
/// connection's own task); every other QEMU call goes to the blocking pool.
fn qemu_quick(n: i32) -> bool {
    matches!(
        n,
        num::CONNECT_GET_TYPE
            | num::CONNECT_GET_URI
            | num::CONNECT_GET_LIB_VERSION
            | num::CONNECT_GET_HOSTNAME
            | num::NODE_GET_SECURITY_MODEL
            | num::CONNECT_NUM_OF_DOMAINS
            | num::CONNECT_NUM_OF_DEFINED_DOMAINS
            | num::CONNECT_LIST_DOMAINS
            | num::CONNECT_LIST_DEFINED_DOMAINS
            | num::CONNECT_LIST_ALL_DOMAINS
            | num::DOMAIN_LOOKUP_BY_ID
            | num::DOMAIN_LOOKUP_BY_NAME
            | num::DOMAIN_LOOKUP_BY_UUID
            | num::DOMAIN_GET_INFO
            | num::DOMAIN_GET_STATE
            | num::DOMAIN_GET_XML_DESC
            | num::DOMAIN_GET_OS_TYPE
            | num::DOMAIN_GET_MAX_MEMORY
            | num::DOMAIN_GET_AUTOSTART
            | num::DOMAIN_IS_ACTIVE
            | num::DOMAIN_IS_PERSISTENT
            | num::DOMAIN_IS_UPDATED
            | num::DOMAIN_HAS_MANAGED_SAVE_IMAGE
            | num::DOMAIN_GET_SECURITY_LABEL
    )
}

fn dom(d: NonnullDomain) -> DomainRef {
    DomainRef::from(d)
}

fn b2i(b: bool) -> i32 {
    b as i32
}

/// One client's session.
pub struct Session {
    daemon: Arc<Daemon>,
    out: Arc<Outbox>,
    /// Read-only socket or `VIR_CONNECT_RO`.
    pub readonly: bool,
    secure: bool,
    opened: Option<Opened>,
    /// The driver-level lifecycle callback feeding this client's events.
    driver_cb: Option<i32>,
    /// The client asked about `VIR_DRV_FEATURE_PROGRAM_KEEPALIVE`: the
    /// daemon pings it when it is idle, as libvirtd does.
    pub keepalive: bool,
}

impl Session {
    /// A session for a new client.
    pub fn new(daemon: Arc<Daemon>, out: Arc<Outbox>, readonly: bool, secure: bool) -> Session {
        Session {
            daemon,
            out,
            readonly,
            secure,
            opened: None,
            driver_cb: None,
            keepalive: false,
        }
    }

    /// Installs the result of an [`Action::Open`].
    pub fn finish_open(&mut self, hdr: &Header, res: Result<Opened>, ro: bool) -> Vec<u8> {
        match res {
            Ok(o) => {
                if self.opened.is_some() {
                    // Another open won meanwhile: keep that one.
                    return error_packet(hdr, &rpc_internal("connection already open"));
                }
                self.opened = Some(o);
                self.readonly |= ro;
                result_packet(hdr, Ok(()))
            }
            Err(e) => error_packet(hdr, &e),
        }
    }

    /// Closes the driver connection: events deregistered, driver closed
    /// (a shared driver stays open for the other clients).
    pub fn close_driver(&mut self) {
        self.out.with_regs(|r| r.list.clear());
        if let Some(o) = self.opened.take() {
            if let Some(id) = self.driver_cb.take() {
                let _ = o.drv.domain_event_deregister(id);
            }
            if !o.shared {
                if let Err(e) = o.drv.close() {
                    tracing::warn!("closing driver connection: {e}");
                }
            }
        }
    }

    /// Handles one call of the remote program (header already checked).
    pub fn call(&mut self, hdr: &Header, payload: &[u8]) -> Action {
        let p = match procedures::lookup(hdr.proc_) {
            Some(p) if p.kind != procedures::Kind::Event => p,
            _ => return self.err(hdr, procedures::unknown_procedure(hdr.proc_)),
        };
        if self.readonly && p.access == Access::Write && self.opened.is_some() {
            if let Err(e) = p.check_readonly(0) {
                return self.err(hdr, e);
            }
        }
        match p.number {
            num::AUTH_LIST => Action::Reply(result_packet(
                hdr,
                Ok(AuthListRet {
                    types: vec![AuthType::None],
                }),
            )),
            num::AUTH_SASL_INIT | num::AUTH_SASL_START | num::AUTH_SASL_STEP | num::AUTH_POLKIT => {
                self.err(
                    hdr,
                    Error::new(
                        ErrorDomain::RPC,
                        ErrorNumber::AUTH_FAILED,
                        "authentication failed",
                    ),
                )
            }
            num::CONNECT_OPEN => self.open(hdr, payload),
            num::CONNECT_CLOSE => {
                self.close_driver();
                Action::ReplyThenClose(result_packet(hdr, Ok(())))
            }
            num::CONNECT_SUPPORTS_FEATURE => {
                let a: ConnectSupportsFeatureArgs = match decode(payload) {
                    Ok(a) => a,
                    Err(e) => return self.err(hdr, e),
                };
                if a.feature == feature::PROGRAM_KEEPALIVE {
                    self.keepalive = true;
                } else if self.opened.is_none() {
                    return self.err(hdr, not_open());
                }
                let supported = b2i(feature::SUPPORTED.contains(&a.feature));
                Action::Reply(result_packet(
                    hdr,
                    Ok(ConnectSupportsFeatureRet { supported }),
                ))
            }
            num::CONNECT_IS_SECURE => {
                let secure = b2i(self.secure);
                self.with_args(hdr, payload, move |_, ()| Ok(ConnectIsSecureRet { secure }))
            }
            num::CONNECT_GET_TYPE => self.drv(hdr, p, payload, |d, ()| {
                Ok(ConnectGetTypeRet {
                    type_: d.get_type()?,
                })
            }),
            num::CONNECT_GET_VERSION => self.drv(hdr, p, payload, |d, ()| {
                Ok(ConnectGetVersionRet {
                    hv_ver: d.get_version()?,
                })
            }),
            num::CONNECT_GET_LIB_VERSION => self.drv(hdr, p, payload, |d, ()| {
                Ok(ConnectGetLibVersionRet {
                    lib_ver: d.get_lib_version()?,
                })
            }),
            num::CONNECT_GET_HOSTNAME => self.drv(hdr, p, payload, |d, ()| {
                Ok(ConnectGetHostnameRet {
                    hostname: d.get_hostname()?,
                })
            }),
            num::CONNECT_GET_URI => self.drv(hdr, p, payload, |d, ()| {
                Ok(ConnectGetUriRet { uri: d.get_uri()? })
            }),
            num::CONNECT_GET_CAPABILITIES => self.drv(hdr, p, payload, |d, ()| {
                Ok(ConnectGetCapabilitiesRet {
                    capabilities: d.get_capabilities()?,
                })
            }),
            num::CONNECT_GET_DOMAIN_CAPABILITIES => {
                self.drv(hdr, p, payload, |d, a: ConnectGetDomainCapabilitiesArgs| {
                    let caps = d.get_domain_capabilities(
                        a.emulatorbin.as_deref(),
                        a.arch.as_deref(),
                        a.machine.as_deref(),
                        a.virttype.as_deref(),
                        a.flags,
                    )?;
                    Ok(ConnectGetDomainCapabilitiesRet { capabilities: caps })
                })
            }
            num::CONNECT_DOMAIN_XML_TO_NATIVE => {
                self.drv(hdr, p, payload, |d, a: ConnectDomainXmlToNativeArgs| {
                    Ok(ConnectDomainXmlToNativeRet {
                        native_config: d.domain_xml_to_native(
                            &a.native_format,
                            &a.domain_xml,
                            a.flags,
                        )?,
                    })
                })
            }
            num::NODE_GET_INFO => self.drv(hdr, p, payload, |d, ()| {
                Ok(NodeGetInfoRet::from(&d.node_get_info()?))
            }),
            num::NODE_GET_SECURITY_MODEL => self.drv(hdr, p, payload, |d, ()| {
                Ok(NodeGetSecurityModelRet::from(&d.node_get_security_model()?))
            }),
            num::CONNECT_NUM_OF_DOMAINS => self.drv(hdr, p, payload, |d, ()| {
                Ok(ConnectNumOfDomainsRet {
                    num: d.num_of_domains()?,
                })
            }),
            num::CONNECT_NUM_OF_DEFINED_DOMAINS => self.drv(hdr, p, payload, |d, ()| {
                Ok(ConnectNumOfDefinedDomainsRet {
                    num: d.num_of_defined_domains()?,
                })
            }),
            num::CONNECT_LIST_DOMAINS => {
                self.drv(hdr, p, payload, |d, a: ConnectListDomainsArgs| {
                    let max = list_max(a.maxids, "maxids")?;
                    let mut ids: Vec<i32> = d
                        .list_all_domains(ironvirt_driver::list_flags::ACTIVE)?
                        .into_iter()
                        .map(|r| r.id)
                        .collect();
                    ids.sort_unstable();
                    ids.truncate(max);
                    Ok(ConnectListDomainsRet { ids })
                })
            }
            num::CONNECT_LIST_DEFINED_DOMAINS => {
                self.drv(hdr, p, payload, |d, a: ConnectListDefinedDomainsArgs| {
                    let max = list_max(a.maxnames, "maxnames")?;
                    let mut names: Vec<String> = d
                        .list_all_domains(ironvirt_driver::list_flags::INACTIVE)?
                        .into_iter()
                        .map(|r| r.name)
                        .collect();
                    names.truncate(max);
                    Ok(ConnectListDefinedDomainsRet { names })
                })
            }
            num::CONNECT_LIST_ALL_DOMAINS => {
                self.drv(hdr, p, payload, |d, a: ConnectListAllDomainsArgs| {
                    let doms = d.list_all_domains(a.flags)?;
                    let ret = doms.len() as u32;
                    let domains = if a.need_results != 0 {
                        doms.into_iter().map(NonnullDomain::from).collect()
                    } else {
                        Vec::new()
                    };
                    Ok(ConnectListAllDomainsRet { domains, ret })
                })
            }
            num::DOMAIN_LOOKUP_BY_ID => self.drv(hdr, p, payload, |d, a: DomainLookupByIdArgs| {
                Ok(DomainRet {
                    dom: d.domain_lookup_by_id(a.id)?.into(),
                })
            }),
            num::DOMAIN_LOOKUP_BY_NAME => {
                self.drv(hdr, p, payload, |d, a: DomainLookupByNameArgs| {
                    Ok(DomainRet {
                        dom: d.domain_lookup_by_name(&a.name)?.into(),
                    })
                })
            }
            num::DOMAIN_LOOKUP_BY_UUID => {
                self.drv(hdr, p, payload, |d, a: DomainLookupByUuidArgs| {
                    Ok(DomainRet {
                        dom: d.domain_lookup_by_uuid(&Uuid(a.uuid))?.into(),
                    })
                })
            }
            num::DOMAIN_DEFINE_XML => self.drv(hdr, p, payload, |d, a: DomainDefineXmlArgs| {
                Ok(DomainRet {
                    dom: d.domain_define_xml(&a.xml, 0)?.into(),
                })
            }),
            num::DOMAIN_DEFINE_XML_FLAGS => {
                self.drv(hdr, p, payload, |d, a: DomainDefineXmlFlagsArgs| {
                    Ok(DomainRet {
                        dom: d.domain_define_xml(&a.xml, a.flags)?.into(),
                    })
                })
            }
            num::DOMAIN_UNDEFINE => self.drv(hdr, p, payload, |d, a: DomainArgs| {
                d.domain_undefine(&dom(a.dom), 0)
            }),
            num::DOMAIN_UNDEFINE_FLAGS => self.drv(hdr, p, payload, |d, a: DomainFlagsArgs| {
                d.domain_undefine(&dom(a.dom), a.flags)
            }),
            num::DOMAIN_CREATE => self.drv(hdr, p, payload, |d, a: DomainArgs| {
                d.domain_create(&dom(a.dom), 0).map(|_| ())
            }),
            num::DOMAIN_CREATE_WITH_FLAGS => self.drv(hdr, p, payload, |d, a: DomainFlagsArgs| {
                Ok(DomainRet {
                    dom: d.domain_create(&dom(a.dom), a.flags)?.into(),
                })
            }),
            num::DOMAIN_CREATE_XML => self.drv(hdr, p, payload, |d, a: DomainCreateXmlArgs| {
                Ok(DomainRet {
                    dom: d.domain_create_xml(&a.xml_desc, a.flags)?.into(),
                })
            }),
            num::DOMAIN_DESTROY => self.drv(hdr, p, payload, |d, a: DomainArgs| {
                d.domain_destroy(&dom(a.dom), 0)
            }),
            num::DOMAIN_DESTROY_FLAGS => self.drv(hdr, p, payload, |d, a: DomainFlagsArgs| {
                d.domain_destroy(&dom(a.dom), a.flags)
            }),
            num::DOMAIN_SHUTDOWN => self.drv(hdr, p, payload, |d, a: DomainArgs| {
                d.domain_shutdown(&dom(a.dom), 0)
            }),
            num::DOMAIN_SHUTDOWN_FLAGS => self.drv(hdr, p, payload, |d, a: DomainFlagsArgs| {
                d.domain_shutdown(&dom(a.dom), a.flags)
            }),
            num::DOMAIN_REBOOT => self.drv(hdr, p, payload, |d, a: DomainFlagsArgs| {
                d.domain_reboot(&dom(a.dom), a.flags)
            }),
            num::DOMAIN_RESET => self.drv(hdr, p, payload, |d, a: DomainFlagsArgs| {
                d.domain_reset(&dom(a.dom), a.flags)
            }),
            num::DOMAIN_SUSPEND => self.drv(hdr, p, payload, |d, a: DomainArgs| {
                d.domain_suspend(&dom(a.dom))
            }),
            num::DOMAIN_RESUME => self.drv(hdr, p, payload, |d, a: DomainArgs| {
                d.domain_resume(&dom(a.dom))
            }),
            num::DOMAIN_GET_INFO => self.drv(hdr, p, payload, |d, a: DomainArgs| {
                Ok(DomainGetInfoRet::from(&d.domain_get_info(&dom(a.dom))?))
            }),
            num::DOMAIN_GET_STATE => self.drv(hdr, p, payload, |d, a: DomainFlagsArgs| {
                let (state, reason) = d.domain_get_state(&dom(a.dom), a.flags)?;
                Ok(DomainGetStateRet { state, reason })
            }),
            num::DOMAIN_GET_XML_DESC => {
                let a: DomainFlagsArgs = match decode(payload) {
                    Ok(a) => a,
                    Err(e) => return self.err(hdr, e),
                };
                if self.opened.is_some() && self.readonly {
                    if let Err(e) = p.check_readonly(a.flags) {
                        return self.err(hdr, e);
                    }
                }
                self.drv_decoded(hdr, p, a, |d, a: DomainFlagsArgs| {
                    Ok(DomainGetXmlDescRet {
                        xml: d.domain_get_xml_desc(&dom(a.dom), a.flags)?,
                    })
                })
            }
            num::DOMAIN_GET_OS_TYPE => self.drv(hdr, p, payload, |d, a: DomainArgs| {
                Ok(DomainGetOsTypeRet {
                    type_: d.domain_get_os_type(&dom(a.dom))?,
                })
            }),
            num::DOMAIN_GET_MAX_MEMORY => self.drv(hdr, p, payload, |d, a: DomainArgs| {
                Ok(DomainGetMaxMemoryRet {
                    memory: d.domain_get_max_memory(&dom(a.dom))?,
                })
            }),
            num::DOMAIN_GET_AUTOSTART => self.drv(hdr, p, payload, |d, a: DomainArgs| {
                Ok(DomainGetAutostartRet {
                    autostart: b2i(d.domain_get_autostart(&dom(a.dom))?),
                })
            }),
            num::DOMAIN_SET_AUTOSTART => {
                self.drv(hdr, p, payload, |d, a: DomainSetAutostartArgs| {
                    d.domain_set_autostart(&dom(a.dom), a.autostart != 0)
                })
            }
            num::DOMAIN_IS_ACTIVE => self.drv(hdr, p, payload, |d, a: DomainArgs| {
                Ok(DomainIsActiveRet {
                    active: b2i(d.domain_is_active(&dom(a.dom))?),
                })
            }),
            num::DOMAIN_IS_PERSISTENT => self.drv(hdr, p, payload, |d, a: DomainArgs| {
                Ok(DomainIsPersistentRet {
                    persistent: b2i(d.domain_is_persistent(&dom(a.dom))?),
                })
            }),
            num::DOMAIN_IS_UPDATED => self.drv(hdr, p, payload, |d, a: DomainArgs| {
                Ok(DomainIsUpdatedRet {
                    updated: b2i(d.domain_is_updated(&dom(a.dom))?),
                })
            }),
            num::DOMAIN_HAS_MANAGED_SAVE_IMAGE => {
                self.drv(hdr, p, payload, |d, a: DomainFlagsArgs| {
                    Ok(DomainHasManagedSaveImageRet {
                        result: b2i(d.domain_has_managed_save_image(&dom(a.dom), a.flags)?),
                    })
                })
            }
            num::DOMAIN_GET_SECURITY_LABEL => self.drv(hdr, p, payload, |d, a: DomainArgs| {
                Ok(DomainGetSecurityLabelRet::from(
                    &d.domain_get_security_label(&dom(a.dom))?,
                ))
            }),
            num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY => self.with_args(
                hdr,
                payload,
                |s, a: ConnectDomainEventCallbackRegisterAnyArgs| {
                    s.register(a.event_id, a.dom.map(|d| d.uuid), false)
                        .map(|callback_id| ConnectDomainEventCallbackRegisterAnyRet { callback_id })
                },
            ),
            num::CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY => self.with_args(
                hdr,
                payload,
                |s, a: ConnectDomainEventCallbackDeregisterAnyArgs| {
                    if s.out.with_regs(|r| r.remove_id(a.callback_id)) {
                        Ok(())
                    } else {
                        Err(rpc_internal(&format!(
                            "domain event callback {} not registered",
                            a.callback_id
                        )))
                    }
                },
            ),
            num::CONNECT_DOMAIN_EVENT_REGISTER_ANY => {
                self.with_args(hdr, payload, |s, a: ConnectDomainEventRegisterAnyArgs| {
                    s.register(a.event_id, None, true).map(|_| ())
                })
            }
            num::CONNECT_DOMAIN_EVENT_DEREGISTER_ANY => {
                self.with_args(hdr, payload, |s, a: ConnectDomainEventDeregisterAnyArgs| {
                    s.deregister_legacy(a.event_id)
                })
            }
            num::CONNECT_DOMAIN_EVENT_REGISTER => self.with_args(hdr, payload, |s, ()| {
                s.register(crate::outbox::EVENT_ID_LIFECYCLE, None, true)?;
                Ok(ConnectDomainEventRegisterRet { cb_registered: 0 })
            }),
            num::CONNECT_DOMAIN_EVENT_DEREGISTER => self.with_args(hdr, payload, |s, ()| {
                s.deregister_legacy(crate::outbox::EVENT_ID_LIFECYCLE)?;
                Ok(ConnectDomainEventRegisterRet { cb_registered: 0 })
            }),
            // The daemon never closes a driver connection under a client,
            // so there is nothing to report; registering is always fine.
            num::CONNECT_REGISTER_CLOSE_CALLBACK | num::CONNECT_UNREGISTER_CLOSE_CALLBACK => {
                self.with_args(hdr, payload, |_, ()| Ok(()))
            }
            _ => {
                if self.opened.is_none() {
                    self.err(hdr, not_open())
                } else {
                    self.err(hdr, p.no_support())
                }
            }
        }
    }

    /// The error for a call of the QEMU or LXC program: ironvirt serves
    /// none of their APIs, but answers like libvirtd does for a driver
    /// without them (measured: errors in `VIR_FROM_NONE`).
    pub fn side_program(&self, hdr: &Header) -> Error {
        use ironvirt_proto::program::{LXC_PROGRAM, QEMU_PROGRAM};
        let known: Option<(&str, bool)> = match (hdr.prog, hdr.proc_) {
            (QEMU_PROGRAM, 1) => Some(("virDomainQemuMonitorCommand", true)),
            (QEMU_PROGRAM, 2) => Some(("virDomainQemuAttach", true)),
            (QEMU_PROGRAM, 3) => Some(("virDomainQemuAgentCommand", true)),
            (QEMU_PROGRAM, 4) => Some(("virConnectDomainQemuMonitorEventRegister", false)),
            (QEMU_PROGRAM, 5) => Some(("virConnectDomainQemuMonitorEventDeregister", false)),
            (QEMU_PROGRAM, 7) => Some(("virDomainQemuMonitorCommandWithFiles", true)),
            (LXC_PROGRAM, 1) => Some(("virDomainLxcOpenNamespace", true)),
            _ => None,
        };
        let Some((api, write)) = known else {
            return procedures::unknown_procedure(hdr.proc_);
        };
        if self.opened.is_none() {
            not_open()
        } else if write && self.readonly {
            Error::new(
                ErrorDomain::NONE,
                ErrorNumber::OPERATION_DENIED,
                format!("read only access prevents {api}"),
            )
        } else {
            Error::no_support(ErrorDomain::NONE, api)
        }
    }

    fn err(&self, hdr: &Header, e: Error) -> Action {
        Action::Reply(error_packet(hdr, &e))
    }

    fn open(&mut self, hdr: &Header, payload: &[u8]) -> Action {
        let a: ConnectOpenArgs = match decode(payload) {
            Ok(a) => a,
            Err(e) => return self.err(hdr, e),
        };
        if self.opened.is_some() {
            // libvirtd drops the open connection in this case (measured:
            // every later call answers "hypervisor connection not open").
            self.close_driver();
            return self.err(hdr, rpc_internal("connection already open"));
        }
        let ro = a.flags & CONNECT_RO != 0;
        let target = match self.daemon.drivers.resolve(a.name.as_deref()) {
            Ok(t) => t,
            Err(e) => return self.err(hdr, e),
        };
        if self.daemon.drivers.open_may_block(&target) {
            return Action::Open(*hdr, Box::new(target), ro);
        }
        let res = self.daemon.drivers.open(target);
        Action::Reply(self.finish_open(hdr, res, ro))
    }

    /// A call answered by the daemon itself; needs an open connection.
    fn with_args<A: XdrDecode, R: XdrEncode>(
        &mut self,
        hdr: &Header,
        payload: &[u8],
        f: impl FnOnce(&mut Self, A) -> Result<R>,
    ) -> Action {
        let a: A = match decode(payload) {
            Ok(a) => a,
            Err(e) => return self.err(hdr, e),
        };
        if self.opened.is_none() {
            return self.err(hdr, not_open());
        }
        Action::Reply(result_packet(hdr, f(self, a)))
    }

    /// A call the driver answers.
    fn drv<A, R, F>(&mut self, hdr: &Header, p: &'static Procedure, payload: &[u8], f: F) -> Action
    where
        A: XdrDecode + Send + 'static,
        R: XdrEncode,
        F: FnOnce(&dyn Driver, A) -> Result<R> + Send + 'static,
    {
        match decode::<A>(payload) {
            Ok(a) => self.drv_decoded(hdr, p, a, f),
            Err(e) => self.err(hdr, e),
        }
    }

    fn drv_decoded<A, R, F>(&mut self, hdr: &Header, p: &'static Procedure, a: A, f: F) -> Action
    where
        A: Send + 'static,
        R: XdrEncode,
        F: FnOnce(&dyn Driver, A) -> Result<R> + Send + 'static,
    {
        let Some(o) = &self.opened else {
            return self.err(hdr, not_open());
        };
        if o.kind == Kind::Qemu && !qemu_quick(p.number) {
            let drv = o.drv.clone();
            let hdr = *hdr;
            return Action::Blocking(Box::new(move || {
                let dd = drv.error_domain();
                result_packet(&hdr, f(&*drv, a).map_err(|e| fix_error(e, p, dd)))
            }));
        }
        let d = &*o.drv;
        Action::Reply(result_packet(
            hdr,
            f(d, a).map_err(|e| fix_error(e, p, d.error_domain())),
        ))
    }

    fn ensure_driver_callback(&mut self) -> Result<()> {
        if self.driver_cb.is_some() {
            return Ok(());
        }
        let Some(o) = &self.opened else {
            return Err(not_open());
        };
        let weak = Arc::downgrade(&self.out);
        let cb: LifecycleCallback = Arc::new(move |ev| {
            if let Some(out) = weak.upgrade() {
                out.deliver(ev);
            }
        });
        self.driver_cb = Some(o.drv.domain_event_register(cb)?);
        Ok(())
    }

    fn check_event_id(event_id: i32) -> Result<()> {
        if (0..EVENT_ID_LAST).contains(&event_id) {
            Ok(())
        } else {
            Err(rpc_internal(&format!("unsupported event ID {event_id}")))
        }
    }

    fn already_tracked() -> Error {
        Error::new(
            ErrorDomain::NONE,
            ErrorNumber::INVALID_ARG,
            "event callback already tracked",
        )
    }

    fn register(&mut self, event_id: i32, dom: Option<[u8; 16]>, legacy: bool) -> Result<i32> {
        Self::check_event_id(event_id)?;
        if self.out.with_regs(|r| r.tracks(event_id, dom)) {
            return Err(Self::already_tracked());
        }
        self.ensure_driver_callback()?;
        let callback_id = self.daemon.next_callback_id.fetch_add(1, Ordering::Relaxed);
        self.out.with_regs(|r| {
            r.list.push(Registration {
                callback_id,
                event_id,
                dom,
                legacy,
            })
        });
        Ok(callback_id)
    }

    fn deregister_legacy(&mut self, event_id: i32) -> Result<()> {
        if self.out.with_regs(|r| r.remove_event(event_id)) {
            Ok(())
        } else {
            Err(rpc_internal(&format!(
                "domain event {event_id} not registered"
            )))
        }
    }
}

/// The length limit of a legacy list call (`maxids`, `maxnames`).
fn list_max(max: i32, what: &str) -> Result<usize> {
    if max > ironvirt_proto::types::limits::REMOTE_DOMAIN_LIST_MAX as i32 {
        return Err(Error::new(
            ErrorDomain::RPC,
            ErrorNumber::RPC,
            format!("{what} > REMOTE_DOMAIN_LIST_MAX"),
        ));
    }
    Ok(max.max(0) as usize)
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close_driver();
    }
}
