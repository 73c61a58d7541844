//! Argument (`…Args`), reply (`…Ret`) and event (`…Msg`) structs of the
//! remote program, one field per line in wire order. Calls whose arguments
//! or reply are `void` use `()`.
//!
//! Which struct goes with which procedure is listed in [`SIGNATURES`].

use crate::procedures::num;
use crate::types::limits::*;
use crate::types::{AuthType, NonnullDomain, NonnullNetwork, RemoteUuid};
use ironvirt_xdr::{xdr_struct, CharArray, Chars};

xdr_struct! {
    /// CONNECT_OPEN.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectOpenArgs {
        pub name: Option<String> [REMOTE_STRING_MAX],
        pub flags: u32,
    }
}

xdr_struct! {
    /// CONNECT_GET_TYPE.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectGetTypeRet {
        pub type_: String [REMOTE_STRING_MAX],
    }
}

xdr_struct! {
    /// CONNECT_GET_VERSION.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectGetVersionRet {
        pub hv_ver: u64,
    }
}

xdr_struct! {
    /// CONNECT_GET_LIB_VERSION.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectGetLibVersionRet {
        pub lib_ver: u64,
    }
}

xdr_struct! {
    /// CONNECT_GET_HOSTNAME.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectGetHostnameRet {
        pub hostname: String [REMOTE_STRING_MAX],
    }
}

xdr_struct! {
    /// CONNECT_GET_URI.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectGetUriRet {
        pub uri: String [REMOTE_STRING_MAX],
    }
}

xdr_struct! {
    /// CONNECT_GET_CAPABILITIES.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectGetCapabilitiesRet {
        pub capabilities: String [REMOTE_STRING_MAX],
    }
}

xdr_struct! {
    /// CONNECT_GET_DOMAIN_CAPABILITIES.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectGetDomainCapabilitiesArgs {
        pub emulatorbin: Option<String> [REMOTE_STRING_MAX],
        pub arch: Option<String> [REMOTE_STRING_MAX],
        pub machine: Option<String> [REMOTE_STRING_MAX],
        pub virttype: Option<String> [REMOTE_STRING_MAX],
        pub flags: u32,
    }
}

xdr_struct! {
    /// CONNECT_GET_DOMAIN_CAPABILITIES.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectGetDomainCapabilitiesRet {
        pub capabilities: String [REMOTE_STRING_MAX],
    }
}

xdr_struct! {
    /// CONNECT_DOMAIN_XML_TO_NATIVE.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectDomainXmlToNativeArgs {
        pub native_format: String [REMOTE_STRING_MAX],
        pub domain_xml: String [REMOTE_STRING_MAX],
        pub flags: u32,
    }
}

xdr_struct! {
    /// CONNECT_DOMAIN_XML_TO_NATIVE.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectDomainXmlToNativeRet {
        pub native_config: String [REMOTE_STRING_MAX],
    }
}

xdr_struct! {
    /// CONNECT_SUPPORTS_FEATURE.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectSupportsFeatureArgs {
        pub feature: i32,
    }
}

xdr_struct! {
    /// CONNECT_SUPPORTS_FEATURE.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectSupportsFeatureRet {
        pub supported: i32,
    }
}

xdr_struct! {
    /// CONNECT_IS_SECURE.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectIsSecureRet {
        pub secure: i32,
    }
}

xdr_struct! {
    /// CONNECT_GET_MAX_VCPUS.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectGetMaxVcpusArgs {
        pub type_: Option<String> [REMOTE_STRING_MAX],
    }
}

xdr_struct! {
    /// CONNECT_GET_MAX_VCPUS.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectGetMaxVcpusRet {
        pub max_vcpus: i32,
    }
}

xdr_struct! {
    /// AUTH_LIST.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct AuthListRet {
        pub types: Vec<AuthType> [REMOTE_AUTH_TYPE_LIST_MAX],
    }
}

xdr_struct! {
    /// NODE_GET_INFO (`model` is a `char[32]`, each char on 4 bytes).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct NodeGetInfoRet {
        pub model: CharArray<32>,
        pub memory: u64,
        pub cpus: i32,
        pub mhz: i32,
        pub nodes: i32,
        pub sockets: i32,
        pub cores: i32,
        pub threads: i32,
    }
}

xdr_struct! {
    /// NODE_GET_SECURITY_MODEL (NUL-terminated `char` arrays).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct NodeGetSecurityModelRet {
        pub model: Chars [REMOTE_SECURITY_MODEL_MAX],
        pub doi: Chars [REMOTE_SECURITY_DOI_MAX],
    }
}

xdr_struct! {
    /// NODE_GET_FREE_MEMORY.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct NodeGetFreeMemoryRet {
        pub free_mem: u64,
    }
}

xdr_struct! {
    /// CONNECT_NUM_OF_DOMAINS.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectNumOfDomainsRet {
        pub num: i32,
    }
}

xdr_struct! {
    /// CONNECT_LIST_DOMAINS.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectListDomainsArgs {
        pub maxids: i32,
    }
}

xdr_struct! {
    /// CONNECT_LIST_DOMAINS.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectListDomainsRet {
        pub ids: Vec<i32> [REMOTE_DOMAIN_LIST_MAX],
    }
}

xdr_struct! {
    /// CONNECT_NUM_OF_DEFINED_DOMAINS.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectNumOfDefinedDomainsRet {
        pub num: i32,
    }
}

xdr_struct! {
    /// CONNECT_LIST_DEFINED_DOMAINS.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectListDefinedDomainsArgs {
        pub maxnames: i32,
    }
}

xdr_struct! {
    /// CONNECT_LIST_DEFINED_DOMAINS.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectListDefinedDomainsRet {
        pub names: Vec<String> [REMOTE_DOMAIN_LIST_MAX],
    }
}

xdr_struct! {
    /// CONNECT_LIST_ALL_DOMAINS.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectListAllDomainsArgs {
        pub need_results: i32,
        pub flags: u32,
    }
}

xdr_struct! {
    /// CONNECT_LIST_ALL_DOMAINS.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectListAllDomainsRet {
        pub domains: Vec<NonnullDomain> [REMOTE_DOMAIN_LIST_MAX],
        pub ret: u32,
    }
}

xdr_struct! {
    /// CONNECT_LIST_ALL_NETWORKS.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectListAllNetworksArgs {
        pub need_results: i32,
        pub flags: u32,
    }
}

xdr_struct! {
    /// CONNECT_LIST_ALL_NETWORKS.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectListAllNetworksRet {
        pub nets: Vec<NonnullNetwork> [REMOTE_NETWORK_LIST_MAX],
        pub ret: u32,
    }
}

xdr_struct! {
    /// DOMAIN_LOOKUP_BY_ID.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainLookupByIdArgs {
        pub id: i32,
    }
}

xdr_struct! {
    /// DOMAIN_LOOKUP_BY_NAME.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainLookupByNameArgs {
        pub name: String [REMOTE_STRING_MAX],
    }
}

xdr_struct! {
    /// DOMAIN_LOOKUP_BY_UUID.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainLookupByUuidArgs {
        pub uuid: RemoteUuid,
    }
}

xdr_struct! {
    /// DOMAIN_LOOKUP_BY_ID/NAME/UUID, DOMAIN_DEFINE_XML(_FLAGS), DOMAIN_CREATE_XML and DOMAIN_CREATE_WITH_FLAGS replies (all `{ remote_nonnull_domain dom; }`).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainRet {
        pub dom: NonnullDomain,
    }
}

xdr_struct! {
    /// the arguments of every call that takes only a domain: DOMAIN_UNDEFINE, DOMAIN_CREATE, DOMAIN_DESTROY, DOMAIN_SHUTDOWN, DOMAIN_SUSPEND, DOMAIN_RESUME, DOMAIN_GET_INFO, DOMAIN_GET_OS_TYPE, DOMAIN_GET_MAX_MEMORY, DOMAIN_GET_AUTOSTART, DOMAIN_IS_ACTIVE, DOMAIN_IS_PERSISTENT, DOMAIN_IS_UPDATED, DOMAIN_GET_SECURITY_LABEL.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainArgs {
        pub dom: NonnullDomain,
    }
}

xdr_struct! {
    /// the arguments of every call that takes a domain and flags: DOMAIN_UNDEFINE_FLAGS, DOMAIN_CREATE_WITH_FLAGS, DOMAIN_DESTROY_FLAGS, DOMAIN_SHUTDOWN_FLAGS, DOMAIN_REBOOT, DOMAIN_RESET, DOMAIN_GET_STATE, DOMAIN_GET_XML_DESC, DOMAIN_HAS_MANAGED_SAVE_IMAGE, DOMAIN_GET_VCPUS_FLAGS.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainFlagsArgs {
        pub dom: NonnullDomain,
        pub flags: u32,
    }
}

xdr_struct! {
    /// DOMAIN_DEFINE_XML.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainDefineXmlArgs {
        pub xml: String [REMOTE_STRING_MAX],
    }
}

xdr_struct! {
    /// DOMAIN_DEFINE_XML_FLAGS.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainDefineXmlFlagsArgs {
        pub xml: String [REMOTE_STRING_MAX],
        pub flags: u32,
    }
}

xdr_struct! {
    /// DOMAIN_CREATE_XML.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainCreateXmlArgs {
        pub xml_desc: String [REMOTE_STRING_MAX],
        pub flags: u32,
    }
}

xdr_struct! {
    /// DOMAIN_GET_INFO (`state` is an `unsigned char`, `nr_virt_cpu` an `unsigned short`, each on 4 bytes).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainGetInfoRet {
        pub state: u8,
        pub max_mem: u64,
        pub memory: u64,
        pub nr_virt_cpu: u16,
        pub cpu_time: u64,
    }
}

xdr_struct! {
    /// DOMAIN_GET_STATE.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainGetStateRet {
        pub state: i32,
        pub reason: i32,
    }
}

xdr_struct! {
    /// DOMAIN_GET_XML_DESC.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainGetXmlDescRet {
        pub xml: String [REMOTE_STRING_MAX],
    }
}

xdr_struct! {
    /// DOMAIN_GET_OS_TYPE.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainGetOsTypeRet {
        pub type_: String [REMOTE_STRING_MAX],
    }
}

xdr_struct! {
    /// DOMAIN_GET_MAX_MEMORY.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainGetMaxMemoryRet {
        pub memory: u64,
    }
}

xdr_struct! {
    /// DOMAIN_GET_AUTOSTART.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainGetAutostartRet {
        pub autostart: i32,
    }
}

xdr_struct! {
    /// DOMAIN_SET_AUTOSTART.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainSetAutostartArgs {
        pub dom: NonnullDomain,
        pub autostart: i32,
    }
}

xdr_struct! {
    /// DOMAIN_IS_ACTIVE.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainIsActiveRet {
        pub active: i32,
    }
}

xdr_struct! {
    /// DOMAIN_IS_PERSISTENT.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainIsPersistentRet {
        pub persistent: i32,
    }
}

xdr_struct! {
    /// DOMAIN_IS_UPDATED.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainIsUpdatedRet {
        pub updated: i32,
    }
}

xdr_struct! {
    /// DOMAIN_HAS_MANAGED_SAVE_IMAGE.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainHasManagedSaveImageRet {
        pub result: i32,
    }
}

xdr_struct! {
    /// DOMAIN_GET_SECURITY_LABEL (`label` is a NUL-terminated `char` array).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainGetSecurityLabelRet {
        pub label: Chars [REMOTE_SECURITY_LABEL_MAX],
        pub enforcing: i32,
    }
}

xdr_struct! {
    /// DOMAIN_GET_VCPUS_FLAGS.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainGetVcpusFlagsRet {
        pub num: i32,
    }
}

xdr_struct! {
    /// CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY (`dom` limits the events to one domain).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectDomainEventCallbackRegisterAnyArgs {
        pub event_id: i32,
        pub dom: Option<NonnullDomain>,
    }
}

xdr_struct! {
    /// CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectDomainEventCallbackRegisterAnyRet {
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectDomainEventCallbackDeregisterAnyArgs {
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// CONNECT_DOMAIN_EVENT_REGISTER_ANY (old style: one registration per event id).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectDomainEventRegisterAnyArgs {
        pub event_id: i32,
    }
}

xdr_struct! {
    /// CONNECT_DOMAIN_EVENT_DEREGISTER_ANY (old style).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectDomainEventDeregisterAnyArgs {
        pub event_id: i32,
    }
}

xdr_struct! {
    /// CONNECT_DOMAIN_EVENT_REGISTER and _DEREGISTER (oldest style).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ConnectDomainEventRegisterRet {
        pub cb_registered: i32,
    }
}

xdr_struct! {
    /// DOMAIN_EVENT_LIFECYCLE message (old-style registrations).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainEventLifecycleMsg {
        pub dom: NonnullDomain,
        pub event: i32,
        pub detail: i32,
    }
}

xdr_struct! {
    /// DOMAIN_EVENT_CALLBACK_LIFECYCLE message.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct DomainEventCallbackLifecycleMsg {
        pub callback_id: i32,
        pub msg: DomainEventLifecycleMsg,
    }
}
/// Declares which argument and reply types go with which procedure, and
/// generates [`SIGNATURES`], [`reencode_args`] and [`reencode_ret`].
macro_rules! signatures {
    ($( $proc:ident => $args:ty, $ret:ty; )*) => {
        /// `(procedure, argument type, reply type)` for every procedure this
        /// crate has structs for (`()` is `void`).
        pub const SIGNATURES: &[(i32, &str, &str)] = &[
            $( (num::$proc, stringify!($args), stringify!($ret)), )*
        ];

        /// Decodes `payload` as the arguments of procedure `proc` and encodes
        /// them again; `None` when this crate has no struct for `proc`.
        /// Used to check decoders against captured traffic and by fuzzing.
        pub fn reencode_args(proc_: i32, payload: &[u8]) -> Option<crate::Result<Vec<u8>>> {
            match proc_ {
                $( num::$proc => Some(reencode::<$args>(payload)), )*
                _ => None,
            }
        }

        /// Like [`reencode_args`] for the reply of procedure `proc`.
        pub fn reencode_ret(proc_: i32, payload: &[u8]) -> Option<crate::Result<Vec<u8>>> {
            match proc_ {
                $( num::$proc => Some(reencode::<$ret>(payload)), )*
                _ => None,
            }
        }
    };
}

fn reencode<T: ironvirt_xdr::XdrDecode + ironvirt_xdr::XdrEncode>(
    payload: &[u8],
) -> crate::Result<Vec<u8>> {
    let v = T::from_xdr(payload)?;
    Ok(v.to_xdr()?)
}

signatures! {
    CONNECT_OPEN => ConnectOpenArgs, ();
    CONNECT_CLOSE => (), ();
    CONNECT_GET_TYPE => (), ConnectGetTypeRet;
    CONNECT_GET_VERSION => (), ConnectGetVersionRet;
    CONNECT_GET_LIB_VERSION => (), ConnectGetLibVersionRet;
    CONNECT_GET_HOSTNAME => (), ConnectGetHostnameRet;
    CONNECT_GET_URI => (), ConnectGetUriRet;
    CONNECT_GET_CAPABILITIES => (), ConnectGetCapabilitiesRet;
    CONNECT_GET_DOMAIN_CAPABILITIES => ConnectGetDomainCapabilitiesArgs, ConnectGetDomainCapabilitiesRet;
    CONNECT_DOMAIN_XML_TO_NATIVE => ConnectDomainXmlToNativeArgs, ConnectDomainXmlToNativeRet;
    CONNECT_SUPPORTS_FEATURE => ConnectSupportsFeatureArgs, ConnectSupportsFeatureRet;
    CONNECT_IS_SECURE => (), ConnectIsSecureRet;
    CONNECT_GET_MAX_VCPUS => ConnectGetMaxVcpusArgs, ConnectGetMaxVcpusRet;
    AUTH_LIST => (), AuthListRet;
    NODE_GET_INFO => (), NodeGetInfoRet;
    NODE_GET_SECURITY_MODEL => (), NodeGetSecurityModelRet;
    NODE_GET_FREE_MEMORY => (), NodeGetFreeMemoryRet;
    CONNECT_NUM_OF_DOMAINS => (), ConnectNumOfDomainsRet;
    CONNECT_LIST_DOMAINS => ConnectListDomainsArgs, ConnectListDomainsRet;
    CONNECT_NUM_OF_DEFINED_DOMAINS => (), ConnectNumOfDefinedDomainsRet;
    CONNECT_LIST_DEFINED_DOMAINS => ConnectListDefinedDomainsArgs, ConnectListDefinedDomainsRet;
    CONNECT_LIST_ALL_DOMAINS => ConnectListAllDomainsArgs, ConnectListAllDomainsRet;
    CONNECT_LIST_ALL_NETWORKS => ConnectListAllNetworksArgs, ConnectListAllNetworksRet;
    DOMAIN_LOOKUP_BY_ID => DomainLookupByIdArgs, DomainRet;
    DOMAIN_LOOKUP_BY_NAME => DomainLookupByNameArgs, DomainRet;
    DOMAIN_LOOKUP_BY_UUID => DomainLookupByUuidArgs, DomainRet;
    DOMAIN_DEFINE_XML => DomainDefineXmlArgs, DomainRet;
    DOMAIN_DEFINE_XML_FLAGS => DomainDefineXmlFlagsArgs, DomainRet;
    DOMAIN_UNDEFINE => DomainArgs, ();
    DOMAIN_UNDEFINE_FLAGS => DomainFlagsArgs, ();
    DOMAIN_CREATE => DomainArgs, ();
    DOMAIN_CREATE_WITH_FLAGS => DomainFlagsArgs, DomainRet;
    DOMAIN_CREATE_XML => DomainCreateXmlArgs, DomainRet;
    DOMAIN_DESTROY => DomainArgs, ();
    DOMAIN_DESTROY_FLAGS => DomainFlagsArgs, ();
    DOMAIN_SHUTDOWN => DomainArgs, ();
    DOMAIN_SHUTDOWN_FLAGS => DomainFlagsArgs, ();
    DOMAIN_REBOOT => DomainFlagsArgs, ();
    DOMAIN_RESET => DomainFlagsArgs, ();
    DOMAIN_SUSPEND => DomainArgs, ();
    DOMAIN_RESUME => DomainArgs, ();
    DOMAIN_GET_INFO => DomainArgs, DomainGetInfoRet;
    DOMAIN_GET_STATE => DomainFlagsArgs, DomainGetStateRet;
    DOMAIN_GET_XML_DESC => DomainFlagsArgs, DomainGetXmlDescRet;
    DOMAIN_GET_OS_TYPE => DomainArgs, DomainGetOsTypeRet;
    DOMAIN_GET_MAX_MEMORY => DomainArgs, DomainGetMaxMemoryRet;
    DOMAIN_GET_AUTOSTART => DomainArgs, DomainGetAutostartRet;
    DOMAIN_SET_AUTOSTART => DomainSetAutostartArgs, ();
    DOMAIN_IS_ACTIVE => DomainArgs, DomainIsActiveRet;
    DOMAIN_IS_PERSISTENT => DomainArgs, DomainIsPersistentRet;
    DOMAIN_IS_UPDATED => DomainArgs, DomainIsUpdatedRet;
    DOMAIN_HAS_MANAGED_SAVE_IMAGE => DomainFlagsArgs, DomainHasManagedSaveImageRet;
    DOMAIN_GET_SECURITY_LABEL => DomainArgs, DomainGetSecurityLabelRet;
    DOMAIN_GET_VCPUS_FLAGS => DomainFlagsArgs, DomainGetVcpusFlagsRet;
    CONNECT_DOMAIN_EVENT_REGISTER => (), ConnectDomainEventRegisterRet;
    CONNECT_DOMAIN_EVENT_DEREGISTER => (), ConnectDomainEventRegisterRet;
    CONNECT_DOMAIN_EVENT_REGISTER_ANY => ConnectDomainEventRegisterAnyArgs, ();
    CONNECT_DOMAIN_EVENT_DEREGISTER_ANY => ConnectDomainEventDeregisterAnyArgs, ();
    CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY => ConnectDomainEventCallbackRegisterAnyArgs, ConnectDomainEventCallbackRegisterAnyRet;
    CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY => ConnectDomainEventCallbackDeregisterAnyArgs, ();
    CONNECT_REGISTER_CLOSE_CALLBACK => (), ();
    CONNECT_UNREGISTER_CLOSE_CALLBACK => (), ();
    DOMAIN_EVENT_LIFECYCLE => DomainEventLifecycleMsg, ();
    DOMAIN_EVENT_CALLBACK_LIFECYCLE => DomainEventCallbackLifecycleMsg, ();
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironvirt_xdr::{XdrDecode, XdrEncode};

    #[test]
    fn signatures_name_known_procedures() {
        for &(n, _, _) in SIGNATURES {
            assert!(crate::procedures::lookup(n).is_some(), "{n}");
        }
        assert!(reencode_args(num::DOMAIN_BLOCK_COPY, &[]).is_none());
    }

    #[test]
    fn node_info_model_is_a_char_array() {
        let r = NodeGetInfoRet {
            model: CharArray::from_str_truncated("i686"),
            memory: 3_145_728,
            cpus: 16,
            mhz: 1400,
            nodes: 2,
            sockets: 2,
            cores: 2,
            threads: 2,
        };
        let b = r.to_xdr().expect("encodes");
        assert_eq!(b.len(), 32 * 4 + 8 + 6 * 4);
        assert_eq!(&b[..8], [0, 0, 0, b'i', 0, 0, 0, b'6']);
        assert_eq!(NodeGetInfoRet::from_xdr(&b).expect("decodes"), r);
    }

    #[test]
    fn every_struct_round_trips_and_rejects_truncation() {
        let dom = NonnullDomain {
            name: "d".into(),
            uuid: [3; 16],
            id: -1,
        };
        let samples: Vec<(i32, Vec<u8>)> = vec![
            (
                num::CONNECT_OPEN,
                ConnectOpenArgs {
                    name: Some("test:///default".into()),
                    flags: 1,
                }
                .to_xdr()
                .expect("ok"),
            ),
            (
                num::CONNECT_GET_DOMAIN_CAPABILITIES,
                ConnectGetDomainCapabilitiesArgs {
                    emulatorbin: None,
                    arch: Some("x86_64".into()),
                    machine: None,
                    virttype: Some("kvm".into()),
                    flags: 0,
                }
                .to_xdr()
                .expect("ok"),
            ),
            (
                num::CONNECT_LIST_ALL_DOMAINS,
                ConnectListAllDomainsArgs {
                    need_results: 1,
                    flags: 3,
                }
                .to_xdr()
                .expect("ok"),
            ),
            (
                num::DOMAIN_SET_AUTOSTART,
                DomainSetAutostartArgs {
                    dom: dom.clone(),
                    autostart: 1,
                }
                .to_xdr()
                .expect("ok"),
            ),
            (
                num::DOMAIN_GET_STATE,
                DomainFlagsArgs {
                    dom: dom.clone(),
                    flags: 0,
                }
                .to_xdr()
                .expect("ok"),
            ),
            (
                num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
                ConnectDomainEventCallbackRegisterAnyArgs {
                    event_id: 0,
                    dom: Some(dom.clone()),
                }
                .to_xdr()
                .expect("ok"),
            ),
            (
                num::DOMAIN_EVENT_CALLBACK_LIFECYCLE,
                DomainEventCallbackLifecycleMsg {
                    callback_id: 3,
                    msg: DomainEventLifecycleMsg {
                        dom: dom.clone(),
                        event: 2,
                        detail: 0,
                    },
                }
                .to_xdr()
                .expect("ok"),
            ),
        ];
        for (n, b) in samples {
            let again = reencode_args(n, &b).expect("known").expect("decodes");
            assert_eq!(again, b, "proc {n}");
            for cut in 0..b.len() {
                assert!(
                    reencode_args(n, &b[..cut]).expect("known").is_err(),
                    "proc {n} cut {cut}"
                );
            }
        }
        let rets: Vec<(i32, Vec<u8>)> = vec![
            (
                num::AUTH_LIST,
                AuthListRet {
                    types: vec![AuthType::None, AuthType::Polkit],
                }
                .to_xdr()
                .expect("ok"),
            ),
            (
                num::CONNECT_LIST_ALL_DOMAINS,
                ConnectListAllDomainsRet {
                    domains: vec![dom.clone(), dom.clone()],
                    ret: 2,
                }
                .to_xdr()
                .expect("ok"),
            ),
            (
                num::CONNECT_LIST_ALL_NETWORKS,
                ConnectListAllNetworksRet {
                    nets: vec![NonnullNetwork {
                        name: "default".into(),
                        uuid: [1; 16],
                    }],
                    ret: 1,
                }
                .to_xdr()
                .expect("ok"),
            ),
            (
                num::DOMAIN_GET_INFO,
                DomainGetInfoRet {
                    state: 1,
                    max_mem: 8,
                    memory: 4,
                    nr_virt_cpu: 2,
                    cpu_time: 99,
                }
                .to_xdr()
                .expect("ok"),
            ),
            (
                num::NODE_GET_SECURITY_MODEL,
                NodeGetSecurityModelRet {
                    model: Chars::from_c_string("selinux"),
                    doi: Chars::from_c_string("0"),
                }
                .to_xdr()
                .expect("ok"),
            ),
            (
                num::DOMAIN_GET_SECURITY_LABEL,
                DomainGetSecurityLabelRet {
                    label: Chars::from_c_string("x"),
                    enforcing: 1,
                }
                .to_xdr()
                .expect("ok"),
            ),
            (
                num::CONNECT_LIST_DEFINED_DOMAINS,
                ConnectListDefinedDomainsRet {
                    names: vec!["a".into(), "bcdef".into()],
                }
                .to_xdr()
                .expect("ok"),
            ),
        ];
        for (n, b) in rets {
            assert_eq!(
                reencode_ret(n, &b).expect("known").expect("decodes"),
                b,
                "proc {n}"
            );
            for cut in 0..b.len() {
                assert!(
                    reencode_ret(n, &b[..cut]).expect("known").is_err(),
                    "proc {n} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn limits_are_enforced() {
        // 20 auth types is the maximum; 21 is refused.
        let ok = AuthListRet {
            types: vec![AuthType::None; 20],
        };
        assert!(ok.to_xdr().is_ok());
        let too_many = AuthListRet {
            types: vec![AuthType::None; 21],
        };
        assert!(too_many.to_xdr().is_err());
        let mut b = ok.to_xdr().expect("ok");
        b[3] = 21;
        b.extend_from_slice(&[0, 0, 0, 0]);
        assert!(AuthListRet::from_xdr(&b).is_err());
        // A security model longer than VIR_SECURITY_MODEL_BUFLEN.
        let long = NodeGetSecurityModelRet {
            model: Chars(vec![b'a'; 258]),
            doi: Chars::default(),
        };
        assert!(long.to_xdr().is_err());
    }
}
