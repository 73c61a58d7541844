//! Conversions between wire structs and the driver seam's types, shared by
//! the daemon (driver → wire) and the remote client (wire → driver).

use crate::remote::{
    DomainEventLifecycleMsg, DomainGetInfoRet, DomainGetSecurityLabelRet, NodeGetInfoRet,
    NodeGetSecurityModelRet,
};
use crate::types::NonnullDomain;
use ironvirt_driver::{
    DomainInfo, DomainRef, LifecycleEvent, NodeInfo, SecurityLabel, SecurityModel, Uuid,
};
use ironvirt_xdr::{CharArray, Chars};

impl From<&DomainRef> for NonnullDomain {
    fn from(d: &DomainRef) -> Self {
        NonnullDomain {
            name: d.name.clone(),
            uuid: d.uuid.0,
            id: d.id,
        }
    }
}

impl From<DomainRef> for NonnullDomain {
    fn from(d: DomainRef) -> Self {
        NonnullDomain {
            name: d.name,
            uuid: d.uuid.0,
            id: d.id,
        }
    }
}

impl From<NonnullDomain> for DomainRef {
    fn from(d: NonnullDomain) -> Self {
        DomainRef {
            name: d.name,
            uuid: Uuid(d.uuid),
            id: d.id,
        }
    }
}

impl From<&NonnullDomain> for DomainRef {
    fn from(d: &NonnullDomain) -> Self {
        DomainRef {
            name: d.name.clone(),
            uuid: Uuid(d.uuid),
            id: d.id,
        }
    }
}

impl From<&NodeInfo> for NodeGetInfoRet {
    /// The model is cut to 31 bytes, as libvirt's `char model[32]` holds it.
    fn from(n: &NodeInfo) -> Self {
        NodeGetInfoRet {
            model: CharArray::from_str_truncated(&n.model),
            memory: n.memory,
            cpus: n.cpus as i32,
            mhz: n.mhz as i32,
            nodes: n.nodes as i32,
            sockets: n.sockets as i32,
            cores: n.cores as i32,
            threads: n.threads as i32,
        }
    }
}

impl From<NodeGetInfoRet> for NodeInfo {
    fn from(r: NodeGetInfoRet) -> Self {
        NodeInfo {
            model: r.model.to_string_lossy(),
            memory: r.memory,
            cpus: r.cpus as u32,
            mhz: r.mhz as u32,
            nodes: r.nodes as u32,
            sockets: r.sockets as u32,
            cores: r.cores as u32,
            threads: r.threads as u32,
        }
    }
}

impl From<&DomainInfo> for DomainGetInfoRet {
    fn from(i: &DomainInfo) -> Self {
        DomainGetInfoRet {
            state: i.state,
            max_mem: i.max_mem,
            memory: i.memory,
            nr_virt_cpu: i.nr_virt_cpu,
            cpu_time: i.cpu_time,
        }
    }
}

impl From<DomainGetInfoRet> for DomainInfo {
    fn from(r: DomainGetInfoRet) -> Self {
        DomainInfo {
            state: r.state,
            max_mem: r.max_mem,
            memory: r.memory,
            nr_virt_cpu: r.nr_virt_cpu,
            cpu_time: r.cpu_time,
        }
    }
}

impl From<&SecurityModel> for NodeGetSecurityModelRet {
    /// libvirt's daemon sends each string with its terminating NUL (an
    /// empty string is a single NUL).
    fn from(m: &SecurityModel) -> Self {
        NodeGetSecurityModelRet {
            model: Chars::from_c_string(&m.model),
            doi: Chars::from_c_string(&m.doi),
        }
    }
}

impl From<NodeGetSecurityModelRet> for SecurityModel {
    fn from(r: NodeGetSecurityModelRet) -> Self {
        SecurityModel {
            model: r.model.to_string_lossy(),
            doi: r.doi.to_string_lossy(),
        }
    }
}

impl From<&SecurityLabel> for DomainGetSecurityLabelRet {
    fn from(l: &SecurityLabel) -> Self {
        DomainGetSecurityLabelRet {
            label: Chars::from_c_string(&l.label),
            enforcing: l.enforcing as i32,
        }
    }
}

impl From<DomainGetSecurityLabelRet> for SecurityLabel {
    fn from(r: DomainGetSecurityLabelRet) -> Self {
        SecurityLabel {
            label: r.label.to_string_lossy(),
            enforcing: r.enforcing != 0,
        }
    }
}

impl From<&LifecycleEvent> for DomainEventLifecycleMsg {
    fn from(e: &LifecycleEvent) -> Self {
        DomainEventLifecycleMsg {
            dom: (&e.dom).into(),
            event: e.event,
            detail: e.detail,
        }
    }
}

impl From<DomainEventLifecycleMsg> for LifecycleEvent {
    fn from(m: DomainEventLifecycleMsg) -> Self {
        LifecycleEvent {
            dom: m.dom.into(),
            event: m.event,
            detail: m.detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironvirt_xdr::{XdrDecode, XdrEncode};

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }

    #[test]
    fn security_model_and_label_as_measured() {
        // NODE_GET_SECURITY_MODEL and DOMAIN_GET_SECURITY_LABEL replies of
        // the reference daemon's test driver.
        let model = unhex("0000000d000000740000006500000073000000740000005300000065000000630000007500000072000000690000007400000079000000000000000100000000");
        let r = NodeGetSecurityModelRet::from_xdr(&model).expect("decodes");
        let m = SecurityModel::from(r);
        assert_eq!(
            m,
            SecurityModel {
                model: "testSecurity".into(),
                doi: String::new()
            }
        );
        assert_eq!(
            NodeGetSecurityModelRet::from(&m).to_xdr().expect("encodes"),
            model
        );

        let label = unhex("0000000d0000006c0000006900000062000000760000006900000072000000740000002d000000740000006500000073000000740000000000000001");
        let l = SecurityLabel::from(DomainGetSecurityLabelRet::from_xdr(&label).expect("decodes"));
        assert_eq!(
            l,
            SecurityLabel {
                label: "libvirt-test".into(),
                enforcing: true
            }
        );
        assert_eq!(
            DomainGetSecurityLabelRet::from(&l)
                .to_xdr()
                .expect("encodes"),
            label
        );
    }

    #[test]
    fn node_and_domain_info() {
        let n = NodeInfo {
            model: "x".repeat(40),
            memory: 1,
            cpus: 2,
            mhz: 3,
            nodes: 4,
            sockets: 5,
            cores: 6,
            threads: 7,
        };
        let back = NodeInfo::from(NodeGetInfoRet::from(&n));
        assert_eq!(back.model, "x".repeat(31));
        assert_eq!((back.cpus, back.threads), (2, 7));
        let i = DomainInfo {
            state: 5,
            max_mem: 10,
            memory: 9,
            nr_virt_cpu: 3,
            cpu_time: 77,
        };
        assert_eq!(DomainInfo::from(DomainGetInfoRet::from(&i)), i);
        let d = DomainRef {
            name: "a".into(),
            uuid: Uuid([7; 16]),
            id: -1,
        };
        assert_eq!(DomainRef::from(NonnullDomain::from(&d)), d);
    }
}
