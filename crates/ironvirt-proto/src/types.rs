//! Types shared by many procedures: the object handles, strings, typed
//! parameters, and libvirt 9.0's protocol limits.

use ironvirt_xdr::{xdr_enum, xdr_struct, xdr_union};

/// Limits of the remote protocol (`remote_protocol.x`, libvirt 9.0).
#[allow(missing_docs)]
pub mod limits {
    pub const REMOTE_STRING_MAX: u32 = 4_194_304;
    pub const REMOTE_CONNECT_IDENTITY_PARAMS_MAX: u32 = 20;
    pub const REMOTE_DOMAIN_LIST_MAX: u32 = 16_384;
    pub const REMOTE_CPUMAP_MAX: u32 = 2048;
    pub const REMOTE_VCPUINFO_MAX: u32 = 16_384;
    pub const REMOTE_CPUMAPS_MAX: u32 = 8_388_608;
    pub const REMOTE_IOTHREAD_INFO_MAX: u32 = 16_384;
    pub const REMOTE_MIGRATE_COOKIE_MAX: u32 = 4_194_304;
    pub const REMOTE_NETWORK_LIST_MAX: u32 = 16_384;
    pub const REMOTE_NETWORK_PORT_LIST_MAX: u32 = 16_384;
    pub const REMOTE_INTERFACE_LIST_MAX: u32 = 16_384;
    pub const REMOTE_STORAGE_POOL_LIST_MAX: u32 = 16_384;
    pub const REMOTE_STORAGE_VOL_LIST_MAX: u32 = 16_384;
    pub const REMOTE_NODE_DEVICE_LIST_MAX: u32 = 65_536;
    pub const REMOTE_NODE_DEVICE_CAPS_LIST_MAX: u32 = 65_536;
    pub const REMOTE_NWFILTER_LIST_MAX: u32 = 16_384;
    pub const REMOTE_NWFILTER_BINDING_LIST_MAX: u32 = 16_384;
    pub const REMOTE_DOMAIN_SCHEDULER_PARAMETERS_MAX: u32 = 16;
    pub const REMOTE_DOMAIN_BLKIO_PARAMETERS_MAX: u32 = 16;
    pub const REMOTE_DOMAIN_MEMORY_PARAMETERS_MAX: u32 = 16;
    pub const REMOTE_DOMAIN_BLOCK_IO_TUNE_PARAMETERS_MAX: u32 = 32;
    pub const REMOTE_DOMAIN_NUMA_PARAMETERS_MAX: u32 = 16;
    pub const REMOTE_DOMAIN_PERF_EVENTS_MAX: u32 = 64;
    pub const REMOTE_DOMAIN_BLOCK_COPY_PARAMETERS_MAX: u32 = 16;
    pub const REMOTE_NODE_CPU_STATS_MAX: u32 = 16;
    pub const REMOTE_NODE_MEMORY_STATS_MAX: u32 = 16;
    pub const REMOTE_DOMAIN_BLOCK_STATS_PARAMETERS_MAX: u32 = 16;
    pub const REMOTE_NODE_MAX_CELLS: u32 = 1024;
    pub const REMOTE_AUTH_SASL_DATA_MAX: u32 = 65_536;
    pub const REMOTE_AUTH_TYPE_LIST_MAX: u32 = 20;
    pub const REMOTE_DOMAIN_MEMORY_STATS_MAX: u32 = 1024;
    pub const REMOTE_DOMAIN_CHECKPOINT_LIST_MAX: u32 = 16_384;
    pub const REMOTE_DOMAIN_SNAPSHOT_LIST_MAX: u32 = 16_384;
    pub const REMOTE_DOMAIN_BLOCK_PEEK_BUFFER_MAX: u32 = 4_194_304;
    pub const REMOTE_DOMAIN_MEMORY_PEEK_BUFFER_MAX: u32 = 4_194_304;
    pub const REMOTE_SECURITY_LABEL_LIST_MAX: u32 = 64;
    /// `VIR_SECURITY_MODEL_BUFLEN` (256 + 1).
    pub const REMOTE_SECURITY_MODEL_MAX: u32 = 257;
    /// `VIR_SECURITY_LABEL_BUFLEN` (4096 + 1).
    pub const REMOTE_SECURITY_LABEL_MAX: u32 = 4097;
    /// `VIR_SECURITY_DOI_BUFLEN` (256 + 1).
    pub const REMOTE_SECURITY_DOI_MAX: u32 = 257;
    pub const REMOTE_SECRET_VALUE_MAX: u32 = 65_536;
    pub const REMOTE_SECRET_LIST_MAX: u32 = 16_384;
    pub const REMOTE_CPU_BASELINE_MAX: u32 = 256;
    pub const REMOTE_DOMAIN_SEND_KEY_MAX: u32 = 16;
    pub const REMOTE_DOMAIN_INTERFACE_PARAMETERS_MAX: u32 = 16;
    pub const REMOTE_DOMAIN_GET_CPU_STATS_NCPUS_MAX: u32 = 128;
    pub const REMOTE_DOMAIN_GET_CPU_STATS_MAX: u32 = 2048;
    pub const REMOTE_DOMAIN_DISK_ERRORS_MAX: u32 = 256;
    pub const REMOTE_NODE_MEMORY_PARAMETERS_MAX: u32 = 64;
    pub const REMOTE_DOMAIN_MIGRATE_PARAM_LIST_MAX: u32 = 64;
    pub const REMOTE_DOMAIN_SAVE_PARAMS_MAX: u32 = 64;
    pub const REMOTE_DOMAIN_JOB_STATS_MAX: u32 = 64;
    pub const REMOTE_CONNECT_CPU_MODELS_MAX: u32 = 8192;
    pub const REMOTE_DOMAIN_FSFREEZE_MOUNTPOINTS_MAX: u32 = 256;
    pub const REMOTE_NETWORK_DHCP_LEASES_MAX: u32 = 65_536;
    pub const REMOTE_CONNECT_GET_ALL_DOMAIN_STATS_MAX: u32 = 262_144;
    pub const REMOTE_DOMAIN_EVENT_TUNABLE_MAX: u32 = 2048;
    pub const REMOTE_DOMAIN_FSINFO_MAX: u32 = 256;
    pub const REMOTE_DOMAIN_FSINFO_DISKS_MAX: u32 = 256;
    pub const REMOTE_DOMAIN_INTERFACE_MAX: u32 = 2048;
    pub const REMOTE_DOMAIN_IP_ADDR_MAX: u32 = 2048;
    pub const REMOTE_DOMAIN_GUEST_VCPU_PARAMS_MAX: u32 = 64;
    pub const REMOTE_DOMAIN_IOTHREAD_PARAMS_MAX: u32 = 64;
    pub const REMOTE_NODE_SEV_INFO_MAX: u32 = 64;
    pub const REMOTE_DOMAIN_LAUNCH_SECURITY_INFO_PARAMS_MAX: u32 = 64;
    pub const REMOTE_DOMAIN_LAUNCH_SECURITY_STATE_PARAMS_MAX: u32 = 64;
    pub const REMOTE_DOMAIN_GUEST_INFO_PARAMS_MAX: u32 = 2048;
    pub const REMOTE_NETWORK_PORT_PARAMETERS_MAX: u32 = 16;
    pub const REMOTE_DOMAIN_AUTHORIZED_SSH_KEYS_MAX: u32 = 2048;
    pub const REMOTE_DOMAIN_MESSAGES_MAX: u32 = 2048;
    pub const REMOTE_DOMAIN_EVENT_GRAPHICS_IDENTITY_MAX: u32 = 20;
    /// `VIR_UUID_BUFLEN`.
    pub const VIR_UUID_BUFLEN: usize = 16;
}

use limits::REMOTE_STRING_MAX;

/// `remote_uuid`: 16 raw bytes.
pub type RemoteUuid = [u8; 16];

xdr_struct! {
    /// `remote_nonnull_domain`: a domain handle (`id` is -1 when inactive).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct NonnullDomain {
        pub name: String [REMOTE_STRING_MAX],
        pub uuid: RemoteUuid,
        pub id: i32,
    }
}

xdr_struct! {
    /// `remote_nonnull_network`.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct NonnullNetwork {
        pub name: String [REMOTE_STRING_MAX],
        pub uuid: RemoteUuid,
    }
}

xdr_struct! {
    /// `remote_nonnull_storage_pool`.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct NonnullStoragePool {
        pub name: String [REMOTE_STRING_MAX],
        pub uuid: RemoteUuid,
    }
}

xdr_struct! {
    /// `remote_nonnull_storage_vol`.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct NonnullStorageVol {
        pub pool: String [REMOTE_STRING_MAX],
        pub name: String [REMOTE_STRING_MAX],
        pub key: String [REMOTE_STRING_MAX],
    }
}

/// `remote_domain`: an optional domain handle.
pub type RemoteDomain = Option<NonnullDomain>;
/// `remote_network`: an optional network handle.
pub type RemoteNetwork = Option<NonnullNetwork>;

xdr_enum! {
    /// `remote_auth_type`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum AuthType {
        None = 0,
        Sasl = 1,
        Polkit = 2,
    }
}

xdr_union! {
    /// `remote_typed_param_value`: the value of a `virTypedParameter`,
    /// switched on `VIR_TYPED_PARAM_*`. A boolean travels as an int.
    #[derive(Clone, Debug, PartialEq)]
    pub enum TypedParamValue {
        1 => Int(i32),
        2 => UInt(u32),
        3 => LLong(i64),
        4 => ULLong(u64),
        5 => Double(f64),
        6 => Boolean(i32),
        7 => String(String [REMOTE_STRING_MAX]),
    }
}

xdr_struct! {
    /// `remote_typed_param`: a named value.
    #[derive(Clone, Debug, PartialEq)]
    pub struct TypedParam {
        pub field: String [REMOTE_STRING_MAX],
        pub value: TypedParamValue,
    }
}

/// `VIR_TYPED_PARAM_FIELD_LENGTH`: libvirt refuses longer field names
/// (80 bytes including the terminating NUL).
pub const TYPED_PARAM_FIELD_LENGTH: usize = 80;

impl TypedParam {
    /// A parameter.
    pub fn new(field: impl Into<String>, value: TypedParamValue) -> Self {
        TypedParam {
            field: field.into(),
            value,
        }
    }
}

xdr_struct! {
    /// `remote_vcpu_info`.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct VcpuInfo {
        pub number: u32,
        pub state: i32,
        pub cpu_time: u64,
        pub cpu: i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironvirt_xdr::{XdrDecode, XdrEncode};

    #[test]
    fn domain_handle_layout() {
        // The handle of the test driver's "test" domain, as the reference
        // daemon sends it.
        let bytes = [
            0, 0, 0, 4, b't', b'e', b's', b't', 0x66, 0x95, 0xeb, 0x01, 0xf6, 0xa4, 0x83, 0x04,
            0x79, 0xaa, 0x97, 0xf2, 0x50, 0x2e, 0x19, 0x3f, 0, 0, 0, 1,
        ];
        let d = NonnullDomain::from_xdr(&bytes).expect("decodes");
        assert_eq!(d.name, "test");
        assert_eq!(d.id, 1);
        assert_eq!(d.to_xdr().expect("encodes"), bytes);
        assert_eq!(NonnullDomain::MIN_SIZE, 4 + 16 + 4);
    }

    #[test]
    fn typed_params() {
        for (v, disc) in [
            (TypedParamValue::Int(-1), 1),
            (TypedParamValue::UInt(7), 2),
            (TypedParamValue::LLong(-9), 3),
            (TypedParamValue::ULLong(u64::MAX), 4),
            (TypedParamValue::Double(0.5), 5),
            (TypedParamValue::Boolean(1), 6),
            (TypedParamValue::String("x".into()), 7),
        ] {
            let p = TypedParam::new("f", v);
            let b = p.to_xdr().expect("encodes");
            assert_eq!(&b[8..12], &(disc as u32).to_be_bytes());
            assert_eq!(TypedParam::from_xdr(&b).expect("decodes"), p);
        }
        let bad = [0, 0, 0, 1, b'f', 0, 0, 0, 0, 0, 0, 8];
        assert!(TypedParam::from_xdr(&bad).is_err());
    }
}
