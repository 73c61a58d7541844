//! Every procedure of libvirt's remote program (0x20008086, version 1) as
//! libvirt 9.0 defines it: number, name, the public API it serves, whether
//! a read-only connection may call it, and its dispatch priority.
//!
//! # How the table was derived
//!
//! * Numbers, names and the `@priority: high` marks come from the
//!   `remote_procedure` enum of libvirt 9.0's `src/remote/remote_protocol.x`.
//! * The API name is the procedure name in camel case with libvirt's
//!   acronym rules (`…_XML` → `XML`, `…_UUID` → `UUID`, `…_ID` → `ID`,
//!   `NWFILTER` → `NWFilter`, `PM…` → `PM…`, `SCSI`, `…_OS` → `OS`, …)
//!   prefixed with `vir`, checked against the function definitions in
//!   libvirt 9.0's `src/libvirt*.c`. A few differ from that rule and are
//!   spelled out: `CONNECT_DOMAIN_EVENT_CALLBACK_(DE)REGISTER_ANY` serve
//!   `virConnectDomainEvent(De)RegisterAny`; `NODE_GET_SEV_INFO`,
//!   `DOMAIN_AUTHORIZED_SSH_KEYS_GET/SET`, `DOMAIN_OPEN_GRAPHICS_FD` and
//!   `DOMAIN_FD_ASSOCIATE` serve `virNodeGetSEVInfo`,
//!   `virDomainAuthorizedSSHKeysGet/Set`, `virDomainOpenGraphicsFD` and
//!   `virDomainFDAssociate`. Events (`*_EVENT_*` messages sent by the
//!   daemon) and the `AUTH_*` handshake serve no API.
//! * Access: libvirt refuses a call on a read-only connection inside the
//!   public API function (`virCheckReadOnlyGoto`), not in the RPC layer.
//!   Every function that calls it is [`Access::Write`]; the four functions
//!   that only refuse some flags on a read-only connection
//!   (`virDomainGetXMLDesc` with `SECURE|MIGRATABLE`, and the `SECURE` flag
//!   of `virDomainSnapshotGetXMLDesc`, `virDomainCheckpointGetXMLDesc`,
//!   `virDomainManagedSaveGetXMLDesc`) are [`Access::WriteWithFlags`];
//!   everything else is [`Access::Read`].
//! * The error domain is the `VIR_FROM_THIS` of the file that defines the
//!   API function; libvirt reports both the read-only refusal and
//!   `VIR_ERR_NO_SUPPORT` in it.
//!
//! libvirt 9.0 has no gaps: numbers 1 to [`REMOTE_PROC_MAX`] are all used.
//! Checked against the reference daemon: a raw `DOMAIN_DESTROY` on the
//! read-only socket answers code 29, domain 20, "operation forbidden: read
//! only access prevents virDomainDestroy".

use ironvirt_driver::{Error, ErrorDomain, ErrorNumber};

/// May a read-only connection make this call?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Allowed on a read-only connection.
    Read,
    /// Refused on a read-only connection.
    Write,
    /// Refused on a read-only connection when any of these flags is set.
    WriteWithFlags(u32),
}

/// What kind of procedure this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A call a client makes, serving a public API.
    Call,
    /// An event message the daemon sends (type MESSAGE).
    Event,
    /// Part of the authentication handshake.
    Auth,
}

/// libvirt's dispatch priority (`@priority`): high-priority calls never
/// wait on a hypervisor and may run while low-priority workers are busy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// May block on the hypervisor.
    Low,
    /// Never blocks on the hypervisor.
    High,
}

/// One procedure of the remote program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Procedure {
    /// Its number on the wire.
    pub number: i32,
    /// Its name without the `REMOTE_PROC_` prefix.
    pub name: &'static str,
    /// The public API it serves (`virDomainDestroy`), empty for events and
    /// authentication.
    pub api: &'static str,
    /// Whether a read-only connection may call it.
    pub access: Access,
    /// The error domain libvirt reports the API's own errors in.
    pub error_domain: ErrorDomain,
    /// Dispatch priority.
    pub priority: Priority,
    /// Call, event or authentication.
    pub kind: Kind,
}

impl Procedure {
    /// Whether a read-only connection must refuse this call made with `flags`.
    pub fn denied_readonly(&self, flags: u32) -> bool {
        match self.access {
            Access::Read => false,
            Access::Write => true,
            Access::WriteWithFlags(mask) => flags & mask != 0,
        }
    }

    /// Whether the call changes state (refused on a read-only connection
    /// whatever its flags).
    pub fn changes_state(&self) -> bool {
        self.access == Access::Write
    }

    /// `Ok` when a read-only connection may make this call with `flags`,
    /// otherwise libvirt's `VIR_ERR_OPERATION_DENIED` error for it.
    pub fn check_readonly(&self, flags: u32) -> Result<(), Error> {
        if !self.denied_readonly(flags) {
            return Ok(());
        }
        let detail = match self.access {
            Access::WriteWithFlags(_) => format!("{} with secure flag", self.api),
            _ => format!("read only access prevents {}", self.api),
        };
        Err(Error::new(
            self.error_domain,
            ErrorNumber::OPERATION_DENIED,
            detail,
        ))
    }

    /// libvirt's `VIR_ERR_NO_SUPPORT` error for this call ("this function is
    /// not supported by the connection driver: virDomainXxx").
    pub fn no_support(&self) -> Error {
        let api = if self.api.is_empty() {
            self.name
        } else {
            self.api
        };
        Error::no_support(self.error_domain, api)
    }
}

/// The error libvirt's daemon answers for a procedure number its program
/// does not define: `VIR_ERR_RPC` in `VIR_FROM_RPC`, "unknown procedure: N"
/// (measured on the reference daemon).
pub fn unknown_procedure(number: i32) -> Error {
    Error::new(
        ErrorDomain::RPC,
        ErrorNumber::RPC,
        format!("unknown procedure: {number}"),
    )
}

/// The procedure with this number.
pub fn lookup(number: i32) -> Option<&'static Procedure> {
    let i = usize::try_from(number).ok()?.checked_sub(1)?;
    PROCEDURES.get(i).filter(|p| p.number == number)
}

/// The procedure with this name (without `REMOTE_PROC_`).
pub fn lookup_name(name: &str) -> Option<&'static Procedure> {
    PROCEDURES.iter().find(|p| p.name == name)
}

/// The first procedure serving this public API.
pub fn lookup_api(api: &str) -> Option<&'static Procedure> {
    PROCEDURES.iter().find(|p| p.api == api)
}

macro_rules! procedures {
    ($( $num:literal $name:ident $acc:ident $(($mask:expr))? $api:literal $dom:ident $prio:ident ),* $(,)?) => {
        /// Procedure numbers of the remote program, by name.
        #[allow(missing_docs)]
        pub mod num {
            $( pub const $name: i32 = $num; )*
        }

        /// Every procedure, in number order (`PROCEDURES[n - 1].number == n`).
        pub const PROCEDURES: &[Procedure] = &[
            $( Procedure {
                number: $num,
                name: stringify!($name),
                api: $api,
                access: procedures!(@acc $acc $($mask)?),
                error_domain: ErrorDomain::$dom,
                priority: procedures!(@prio $prio),
                kind: procedures!(@kind $acc),
            }, )*
        ];
    };
    (@acc R) => { Access::Read };
    (@acc W) => { Access::Write };
    (@acc E) => { Access::Read };
    (@acc A) => { Access::Read };
    (@acc C $mask:expr) => { Access::WriteWithFlags($mask) };
    (@prio H) => { Priority::High };
    (@prio L) => { Priority::Low };
    (@kind E) => { Kind::Event };
    (@kind A) => { Kind::Auth };
    (@kind $other:ident) => { Kind::Call };
}

/// The highest procedure number libvirt 9.0 defines.
pub const REMOTE_PROC_MAX: i32 = 443;

// number name access("R" read, "W" write, "C(mask)" write with flags, "E" event,
// "A" auth) api error-domain priority("H"igh, "L"ow)
procedures! {
    1 CONNECT_OPEN R "virConnectOpen" NONE H,
    2 CONNECT_CLOSE R "virConnectClose" NONE H,
    3 CONNECT_GET_TYPE R "virConnectGetType" DOMAIN H,
    4 CONNECT_GET_VERSION R "virConnectGetVersion" DOMAIN H,
    5 CONNECT_GET_MAX_VCPUS R "virConnectGetMaxVcpus" DOMAIN H,
    6 NODE_GET_INFO R "virNodeGetInfo" DOMAIN H,
    7 CONNECT_GET_CAPABILITIES R "virConnectGetCapabilities" DOMAIN L,
    8 DOMAIN_ATTACH_DEVICE W "virDomainAttachDevice" DOMAIN L,
    9 DOMAIN_CREATE W "virDomainCreate" DOMAIN L,
    10 DOMAIN_CREATE_XML W "virDomainCreateXML" DOMAIN L,
    11 DOMAIN_DEFINE_XML W "virDomainDefineXML" DOMAIN H,
    12 DOMAIN_DESTROY W "virDomainDestroy" DOMAIN H,
    13 DOMAIN_DETACH_DEVICE W "virDomainDetachDevice" DOMAIN L,
    14 DOMAIN_GET_XML_DESC C(1|8) "virDomainGetXMLDesc" DOMAIN L,
    15 DOMAIN_GET_AUTOSTART R "virDomainGetAutostart" DOMAIN H,
    16 DOMAIN_GET_INFO R "virDomainGetInfo" DOMAIN L,
    17 DOMAIN_GET_MAX_MEMORY R "virDomainGetMaxMemory" DOMAIN H,
    18 DOMAIN_GET_MAX_VCPUS R "virDomainGetMaxVcpus" DOMAIN H,
    19 DOMAIN_GET_OS_TYPE R "virDomainGetOSType" DOMAIN H,
    20 DOMAIN_GET_VCPUS R "virDomainGetVcpus" DOMAIN H,
    21 CONNECT_LIST_DEFINED_DOMAINS R "virConnectListDefinedDomains" DOMAIN H,
    22 DOMAIN_LOOKUP_BY_ID R "virDomainLookupByID" DOMAIN H,
    23 DOMAIN_LOOKUP_BY_NAME R "virDomainLookupByName" DOMAIN H,
    24 DOMAIN_LOOKUP_BY_UUID R "virDomainLookupByUUID" DOMAIN H,
    25 CONNECT_NUM_OF_DEFINED_DOMAINS R "virConnectNumOfDefinedDomains" DOMAIN H,
    26 DOMAIN_PIN_VCPU W "virDomainPinVcpu" DOMAIN L,
    27 DOMAIN_REBOOT W "virDomainReboot" DOMAIN L,
    28 DOMAIN_RESUME W "virDomainResume" DOMAIN L,
    29 DOMAIN_SET_AUTOSTART W "virDomainSetAutostart" DOMAIN H,
    30 DOMAIN_SET_MAX_MEMORY W "virDomainSetMaxMemory" DOMAIN H,
    31 DOMAIN_SET_MEMORY W "virDomainSetMemory" DOMAIN L,
    32 DOMAIN_SET_VCPUS W "virDomainSetVcpus" DOMAIN L,
    33 DOMAIN_SHUTDOWN W "virDomainShutdown" DOMAIN L,
    34 DOMAIN_SUSPEND W "virDomainSuspend" DOMAIN L,
    35 DOMAIN_UNDEFINE W "virDomainUndefine" DOMAIN H,
    36 CONNECT_LIST_DEFINED_NETWORKS R "virConnectListDefinedNetworks" NETWORK H,
    37 CONNECT_LIST_DOMAINS R "virConnectListDomains" DOMAIN H,
    38 CONNECT_LIST_NETWORKS R "virConnectListNetworks" NETWORK H,
    39 NETWORK_CREATE W "virNetworkCreate" NETWORK L,
    40 NETWORK_CREATE_XML W "virNetworkCreateXML" NETWORK L,
    41 NETWORK_DEFINE_XML W "virNetworkDefineXML" NETWORK H,
    42 NETWORK_DESTROY W "virNetworkDestroy" NETWORK H,
    43 NETWORK_GET_XML_DESC R "virNetworkGetXMLDesc" NETWORK H,
    44 NETWORK_GET_AUTOSTART R "virNetworkGetAutostart" NETWORK H,
    45 NETWORK_GET_BRIDGE_NAME R "virNetworkGetBridgeName" NETWORK H,
    46 NETWORK_LOOKUP_BY_NAME R "virNetworkLookupByName" NETWORK H,
    47 NETWORK_LOOKUP_BY_UUID R "virNetworkLookupByUUID" NETWORK H,
    48 NETWORK_SET_AUTOSTART W "virNetworkSetAutostart" NETWORK H,
    49 NETWORK_UNDEFINE W "virNetworkUndefine" NETWORK H,
    50 CONNECT_NUM_OF_DEFINED_NETWORKS R "virConnectNumOfDefinedNetworks" NETWORK H,
    51 CONNECT_NUM_OF_DOMAINS R "virConnectNumOfDomains" DOMAIN H,
    52 CONNECT_NUM_OF_NETWORKS R "virConnectNumOfNetworks" NETWORK H,
    53 DOMAIN_CORE_DUMP W "virDomainCoreDump" DOMAIN L,
    54 DOMAIN_RESTORE W "virDomainRestore" DOMAIN L,
    55 DOMAIN_SAVE W "virDomainSave" DOMAIN L,
    56 DOMAIN_GET_SCHEDULER_TYPE R "virDomainGetSchedulerType" DOMAIN L,
    57 DOMAIN_GET_SCHEDULER_PARAMETERS R "virDomainGetSchedulerParameters" DOMAIN L,
    58 DOMAIN_SET_SCHEDULER_PARAMETERS W "virDomainSetSchedulerParameters" DOMAIN L,
    59 CONNECT_GET_HOSTNAME R "virConnectGetHostname" DOMAIN H,
    60 CONNECT_SUPPORTS_FEATURE R "virConnectSupportsFeature" DOMAIN H,
    61 DOMAIN_MIGRATE_PREPARE W "virDomainMigratePrepare" DOMAIN L,
    62 DOMAIN_MIGRATE_PERFORM W "virDomainMigratePerform" DOMAIN L,
    63 DOMAIN_MIGRATE_FINISH W "virDomainMigrateFinish" DOMAIN L,
    64 DOMAIN_BLOCK_STATS R "virDomainBlockStats" DOMAIN L,
    65 DOMAIN_INTERFACE_STATS R "virDomainInterfaceStats" DOMAIN H,
    66 AUTH_LIST A "" NONE H,
    67 AUTH_SASL_INIT A "" NONE H,
    68 AUTH_SASL_START A "" NONE H,
    69 AUTH_SASL_STEP A "" NONE H,
    70 AUTH_POLKIT A "" NONE H,
    71 CONNECT_NUM_OF_STORAGE_POOLS R "virConnectNumOfStoragePools" STORAGE H,
    72 CONNECT_LIST_STORAGE_POOLS R "virConnectListStoragePools" STORAGE H,
    73 CONNECT_NUM_OF_DEFINED_STORAGE_POOLS R "virConnectNumOfDefinedStoragePools" STORAGE H,
    74 CONNECT_LIST_DEFINED_STORAGE_POOLS R "virConnectListDefinedStoragePools" STORAGE H,
    75 CONNECT_FIND_STORAGE_POOL_SOURCES W "virConnectFindStoragePoolSources" STORAGE L,
    76 STORAGE_POOL_CREATE_XML W "virStoragePoolCreateXML" STORAGE L,
    77 STORAGE_POOL_DEFINE_XML W "virStoragePoolDefineXML" STORAGE H,
    78 STORAGE_POOL_CREATE W "virStoragePoolCreate" STORAGE L,
    79 STORAGE_POOL_BUILD W "virStoragePoolBuild" STORAGE L,
    80 STORAGE_POOL_DESTROY W "virStoragePoolDestroy" STORAGE H,
    81 STORAGE_POOL_DELETE W "virStoragePoolDelete" STORAGE L,
    82 STORAGE_POOL_UNDEFINE W "virStoragePoolUndefine" STORAGE H,
    83 STORAGE_POOL_REFRESH W "virStoragePoolRefresh" STORAGE L,
    84 STORAGE_POOL_LOOKUP_BY_NAME R "virStoragePoolLookupByName" STORAGE H,
    85 STORAGE_POOL_LOOKUP_BY_UUID R "virStoragePoolLookupByUUID" STORAGE H,
    86 STORAGE_POOL_LOOKUP_BY_VOLUME R "virStoragePoolLookupByVolume" STORAGE H,
    87 STORAGE_POOL_GET_INFO R "virStoragePoolGetInfo" STORAGE H,
    88 STORAGE_POOL_GET_XML_DESC R "virStoragePoolGetXMLDesc" STORAGE H,
    89 STORAGE_POOL_GET_AUTOSTART R "virStoragePoolGetAutostart" STORAGE H,
    90 STORAGE_POOL_SET_AUTOSTART W "virStoragePoolSetAutostart" STORAGE H,
    91 STORAGE_POOL_NUM_OF_VOLUMES R "virStoragePoolNumOfVolumes" STORAGE H,
    92 STORAGE_POOL_LIST_VOLUMES R "virStoragePoolListVolumes" STORAGE H,
    93 STORAGE_VOL_CREATE_XML W "virStorageVolCreateXML" STORAGE L,
    94 STORAGE_VOL_DELETE W "virStorageVolDelete" STORAGE L,
    95 STORAGE_VOL_LOOKUP_BY_NAME R "virStorageVolLookupByName" STORAGE H,
    96 STORAGE_VOL_LOOKUP_BY_KEY R "virStorageVolLookupByKey" STORAGE H,
    97 STORAGE_VOL_LOOKUP_BY_PATH R "virStorageVolLookupByPath" STORAGE H,
    98 STORAGE_VOL_GET_INFO R "virStorageVolGetInfo" STORAGE H,
    99 STORAGE_VOL_GET_XML_DESC R "virStorageVolGetXMLDesc" STORAGE H,
    100 STORAGE_VOL_GET_PATH R "virStorageVolGetPath" STORAGE H,
    101 NODE_GET_CELLS_FREE_MEMORY R "virNodeGetCellsFreeMemory" DOMAIN H,
    102 NODE_GET_FREE_MEMORY R "virNodeGetFreeMemory" DOMAIN H,
    103 DOMAIN_BLOCK_PEEK W "virDomainBlockPeek" DOMAIN L,
    104 DOMAIN_MEMORY_PEEK W "virDomainMemoryPeek" DOMAIN L,
    105 CONNECT_DOMAIN_EVENT_REGISTER R "virConnectDomainEventRegister" DOMAIN H,
    106 CONNECT_DOMAIN_EVENT_DEREGISTER R "virConnectDomainEventDeregister" DOMAIN H,
    107 DOMAIN_EVENT_LIFECYCLE E "" NONE L,
    108 DOMAIN_MIGRATE_PREPARE2 W "virDomainMigratePrepare2" DOMAIN L,
    109 DOMAIN_MIGRATE_FINISH2 W "virDomainMigrateFinish2" DOMAIN L,
    110 CONNECT_GET_URI R "virConnectGetURI" DOMAIN H,
    111 NODE_NUM_OF_DEVICES R "virNodeNumOfDevices" NODEDEV H,
    112 NODE_LIST_DEVICES R "virNodeListDevices" NODEDEV H,
    113 NODE_DEVICE_LOOKUP_BY_NAME R "virNodeDeviceLookupByName" NODEDEV H,
    114 NODE_DEVICE_GET_XML_DESC R "virNodeDeviceGetXMLDesc" NODEDEV L,
    115 NODE_DEVICE_GET_PARENT R "virNodeDeviceGetParent" NODEDEV H,
    116 NODE_DEVICE_NUM_OF_CAPS R "virNodeDeviceNumOfCaps" NODEDEV H,
    117 NODE_DEVICE_LIST_CAPS R "virNodeDeviceListCaps" NODEDEV H,
    118 NODE_DEVICE_DETTACH W "virNodeDeviceDettach" NODEDEV L,
    119 NODE_DEVICE_RE_ATTACH W "virNodeDeviceReAttach" NODEDEV L,
    120 NODE_DEVICE_RESET W "virNodeDeviceReset" NODEDEV L,
    121 DOMAIN_GET_SECURITY_LABEL R "virDomainGetSecurityLabel" DOMAIN H,
    122 NODE_GET_SECURITY_MODEL R "virNodeGetSecurityModel" DOMAIN H,
    123 NODE_DEVICE_CREATE_XML W "virNodeDeviceCreateXML" NODEDEV L,
    124 NODE_DEVICE_DESTROY W "virNodeDeviceDestroy" NODEDEV H,
    125 STORAGE_VOL_CREATE_XML_FROM W "virStorageVolCreateXMLFrom" STORAGE L,
    126 CONNECT_NUM_OF_INTERFACES R "virConnectNumOfInterfaces" INTERFACE H,
    127 CONNECT_LIST_INTERFACES R "virConnectListInterfaces" INTERFACE H,
    128 INTERFACE_LOOKUP_BY_NAME R "virInterfaceLookupByName" INTERFACE H,
    129 INTERFACE_LOOKUP_BY_MAC_STRING R "virInterfaceLookupByMACString" INTERFACE H,
    130 INTERFACE_GET_XML_DESC R "virInterfaceGetXMLDesc" INTERFACE L,
    131 INTERFACE_DEFINE_XML W "virInterfaceDefineXML" INTERFACE H,
    132 INTERFACE_UNDEFINE W "virInterfaceUndefine" INTERFACE H,
    133 INTERFACE_CREATE W "virInterfaceCreate" INTERFACE L,
    134 INTERFACE_DESTROY W "virInterfaceDestroy" INTERFACE H,
    135 CONNECT_DOMAIN_XML_FROM_NATIVE W "virConnectDomainXMLFromNative" DOMAIN L,
    136 CONNECT_DOMAIN_XML_TO_NATIVE W "virConnectDomainXMLToNative" DOMAIN L,
    137 CONNECT_NUM_OF_DEFINED_INTERFACES R "virConnectNumOfDefinedInterfaces" INTERFACE H,
    138 CONNECT_LIST_DEFINED_INTERFACES R "virConnectListDefinedInterfaces" INTERFACE H,
    139 CONNECT_NUM_OF_SECRETS R "virConnectNumOfSecrets" SECRET H,
    140 CONNECT_LIST_SECRETS R "virConnectListSecrets" SECRET H,
    141 SECRET_LOOKUP_BY_UUID R "virSecretLookupByUUID" SECRET H,
    142 SECRET_DEFINE_XML W "virSecretDefineXML" SECRET H,
    143 SECRET_GET_XML_DESC R "virSecretGetXMLDesc" SECRET H,
    144 SECRET_SET_VALUE W "virSecretSetValue" SECRET H,
    145 SECRET_GET_VALUE W "virSecretGetValue" SECRET H,
    146 SECRET_UNDEFINE W "virSecretUndefine" SECRET H,
    147 SECRET_LOOKUP_BY_USAGE R "virSecretLookupByUsage" SECRET H,
    148 DOMAIN_MIGRATE_PREPARE_TUNNEL W "virDomainMigratePrepareTunnel" DOMAIN L,
    149 CONNECT_IS_SECURE R "virConnectIsSecure" DOMAIN H,
    150 DOMAIN_IS_ACTIVE R "virDomainIsActive" DOMAIN H,
    151 DOMAIN_IS_PERSISTENT R "virDomainIsPersistent" DOMAIN H,
    152 NETWORK_IS_ACTIVE R "virNetworkIsActive" NETWORK H,
    153 NETWORK_IS_PERSISTENT R "virNetworkIsPersistent" NETWORK H,
    154 STORAGE_POOL_IS_ACTIVE R "virStoragePoolIsActive" STORAGE H,
    155 STORAGE_POOL_IS_PERSISTENT R "virStoragePoolIsPersistent" STORAGE H,
    156 INTERFACE_IS_ACTIVE R "virInterfaceIsActive" INTERFACE H,
    157 CONNECT_GET_LIB_VERSION R "virConnectGetLibVersion" DOMAIN H,
    158 CONNECT_COMPARE_CPU R "virConnectCompareCPU" DOMAIN H,
    159 DOMAIN_MEMORY_STATS R "virDomainMemoryStats" DOMAIN L,
    160 DOMAIN_ATTACH_DEVICE_FLAGS W "virDomainAttachDeviceFlags" DOMAIN L,
    161 DOMAIN_DETACH_DEVICE_FLAGS W "virDomainDetachDeviceFlags" DOMAIN L,
    162 CONNECT_BASELINE_CPU R "virConnectBaselineCPU" DOMAIN L,
    163 DOMAIN_GET_JOB_INFO R "virDomainGetJobInfo" DOMAIN L,
    164 DOMAIN_ABORT_JOB W "virDomainAbortJob" DOMAIN L,
    165 STORAGE_VOL_WIPE W "virStorageVolWipe" STORAGE L,
    166 DOMAIN_MIGRATE_SET_MAX_DOWNTIME W "virDomainMigrateSetMaxDowntime" DOMAIN L,
    167 CONNECT_DOMAIN_EVENT_REGISTER_ANY R "virConnectDomainEventRegisterAny" DOMAIN H,
    168 CONNECT_DOMAIN_EVENT_DEREGISTER_ANY R "virConnectDomainEventDeregisterAny" DOMAIN H,
    169 DOMAIN_EVENT_REBOOT E "" NONE L,
    170 DOMAIN_EVENT_RTC_CHANGE E "" NONE L,
    171 DOMAIN_EVENT_WATCHDOG E "" NONE L,
    172 DOMAIN_EVENT_IO_ERROR E "" NONE L,
    173 DOMAIN_EVENT_GRAPHICS E "" NONE L,
    174 DOMAIN_UPDATE_DEVICE_FLAGS W "virDomainUpdateDeviceFlags" DOMAIN L,
    175 NWFILTER_LOOKUP_BY_NAME R "virNWFilterLookupByName" NWFILTER H,
    176 NWFILTER_LOOKUP_BY_UUID R "virNWFilterLookupByUUID" NWFILTER H,
    177 NWFILTER_GET_XML_DESC R "virNWFilterGetXMLDesc" NWFILTER H,
    178 CONNECT_NUM_OF_NWFILTERS R "virConnectNumOfNWFilters" NWFILTER H,
    179 CONNECT_LIST_NWFILTERS R "virConnectListNWFilters" NWFILTER H,
    180 NWFILTER_DEFINE_XML W "virNWFilterDefineXML" NWFILTER H,
    181 NWFILTER_UNDEFINE W "virNWFilterUndefine" NWFILTER H,
    182 DOMAIN_MANAGED_SAVE W "virDomainManagedSave" DOMAIN L,
    183 DOMAIN_HAS_MANAGED_SAVE_IMAGE R "virDomainHasManagedSaveImage" DOMAIN L,
    184 DOMAIN_MANAGED_SAVE_REMOVE W "virDomainManagedSaveRemove" DOMAIN L,
    185 DOMAIN_SNAPSHOT_CREATE_XML W "virDomainSnapshotCreateXML" DOMAIN_SNAPSHOT L,
    186 DOMAIN_SNAPSHOT_GET_XML_DESC C(1) "virDomainSnapshotGetXMLDesc" DOMAIN_SNAPSHOT H,
    187 DOMAIN_SNAPSHOT_NUM R "virDomainSnapshotNum" DOMAIN_SNAPSHOT H,
    188 DOMAIN_SNAPSHOT_LIST_NAMES R "virDomainSnapshotListNames" DOMAIN_SNAPSHOT H,
    189 DOMAIN_SNAPSHOT_LOOKUP_BY_NAME R "virDomainSnapshotLookupByName" DOMAIN_SNAPSHOT H,
    190 DOMAIN_HAS_CURRENT_SNAPSHOT R "virDomainHasCurrentSnapshot" DOMAIN_SNAPSHOT L,
    191 DOMAIN_SNAPSHOT_CURRENT R "virDomainSnapshotCurrent" DOMAIN_SNAPSHOT L,
    192 DOMAIN_REVERT_TO_SNAPSHOT W "virDomainRevertToSnapshot" DOMAIN_SNAPSHOT L,
    193 DOMAIN_SNAPSHOT_DELETE W "virDomainSnapshotDelete" DOMAIN_SNAPSHOT L,
    194 DOMAIN_GET_BLOCK_INFO R "virDomainGetBlockInfo" DOMAIN L,
    195 DOMAIN_EVENT_IO_ERROR_REASON E "" NONE L,
    196 DOMAIN_CREATE_WITH_FLAGS W "virDomainCreateWithFlags" DOMAIN L,
    197 DOMAIN_SET_MEMORY_PARAMETERS W "virDomainSetMemoryParameters" DOMAIN L,
    198 DOMAIN_GET_MEMORY_PARAMETERS R "virDomainGetMemoryParameters" DOMAIN L,
    199 DOMAIN_SET_VCPUS_FLAGS W "virDomainSetVcpusFlags" DOMAIN L,
    200 DOMAIN_GET_VCPUS_FLAGS W "virDomainGetVcpusFlags" DOMAIN L,
    201 DOMAIN_OPEN_CONSOLE W "virDomainOpenConsole" DOMAIN L,
    202 DOMAIN_IS_UPDATED R "virDomainIsUpdated" DOMAIN H,
    203 CONNECT_GET_SYSINFO R "virConnectGetSysinfo" DOMAIN H,
    204 DOMAIN_SET_MEMORY_FLAGS W "virDomainSetMemoryFlags" DOMAIN L,
    205 DOMAIN_SET_BLKIO_PARAMETERS W "virDomainSetBlkioParameters" DOMAIN L,
    206 DOMAIN_GET_BLKIO_PARAMETERS R "virDomainGetBlkioParameters" DOMAIN L,
    207 DOMAIN_MIGRATE_SET_MAX_SPEED W "virDomainMigrateSetMaxSpeed" DOMAIN L,
    208 STORAGE_VOL_UPLOAD W "virStorageVolUpload" STORAGE L,
    209 STORAGE_VOL_DOWNLOAD W "virStorageVolDownload" STORAGE L,
    210 DOMAIN_INJECT_NMI W "virDomainInjectNMI" DOMAIN L,
    211 DOMAIN_SCREENSHOT W "virDomainScreenshot" DOMAIN L,
    212 DOMAIN_GET_STATE R "virDomainGetState" DOMAIN H,
    213 DOMAIN_MIGRATE_BEGIN3 W "virDomainMigrateBegin3" DOMAIN L,
    214 DOMAIN_MIGRATE_PREPARE3 W "virDomainMigratePrepare3" DOMAIN L,
    215 DOMAIN_MIGRATE_PREPARE_TUNNEL3 W "virDomainMigratePrepareTunnel3" DOMAIN L,
    216 DOMAIN_MIGRATE_PERFORM3 W "virDomainMigratePerform3" DOMAIN L,
    217 DOMAIN_MIGRATE_FINISH3 W "virDomainMigrateFinish3" DOMAIN L,
    218 DOMAIN_MIGRATE_CONFIRM3 W "virDomainMigrateConfirm3" DOMAIN L,
    219 DOMAIN_SET_SCHEDULER_PARAMETERS_FLAGS W "virDomainSetSchedulerParametersFlags" DOMAIN L,
    220 INTERFACE_CHANGE_BEGIN W "virInterfaceChangeBegin" INTERFACE L,
    221 INTERFACE_CHANGE_COMMIT W "virInterfaceChangeCommit" INTERFACE L,
    222 INTERFACE_CHANGE_ROLLBACK W "virInterfaceChangeRollback" INTERFACE L,
    223 DOMAIN_GET_SCHEDULER_PARAMETERS_FLAGS R "virDomainGetSchedulerParametersFlags" DOMAIN L,
    224 DOMAIN_EVENT_CONTROL_ERROR E "" NONE L,
    225 DOMAIN_PIN_VCPU_FLAGS W "virDomainPinVcpuFlags" DOMAIN L,
    226 DOMAIN_SEND_KEY W "virDomainSendKey" DOMAIN L,
    227 NODE_GET_CPU_STATS R "virNodeGetCPUStats" DOMAIN H,
    228 NODE_GET_MEMORY_STATS R "virNodeGetMemoryStats" DOMAIN H,
    229 DOMAIN_GET_CONTROL_INFO R "virDomainGetControlInfo" DOMAIN H,
    230 DOMAIN_GET_VCPU_PIN_INFO R "virDomainGetVcpuPinInfo" DOMAIN L,
    231 DOMAIN_UNDEFINE_FLAGS W "virDomainUndefineFlags" DOMAIN H,
    232 DOMAIN_SAVE_FLAGS W "virDomainSaveFlags" DOMAIN L,
    233 DOMAIN_RESTORE_FLAGS W "virDomainRestoreFlags" DOMAIN L,
    234 DOMAIN_DESTROY_FLAGS W "virDomainDestroyFlags" DOMAIN H,
    235 DOMAIN_SAVE_IMAGE_GET_XML_DESC W "virDomainSaveImageGetXMLDesc" DOMAIN H,
    236 DOMAIN_SAVE_IMAGE_DEFINE_XML W "virDomainSaveImageDefineXML" DOMAIN H,
    237 DOMAIN_BLOCK_JOB_ABORT W "virDomainBlockJobAbort" DOMAIN L,
    238 DOMAIN_GET_BLOCK_JOB_INFO R "virDomainGetBlockJobInfo" DOMAIN L,
    239 DOMAIN_BLOCK_JOB_SET_SPEED W "virDomainBlockJobSetSpeed" DOMAIN L,
    240 DOMAIN_BLOCK_PULL W "virDomainBlockPull" DOMAIN L,
    241 DOMAIN_EVENT_BLOCK_JOB E "" NONE L,
    242 DOMAIN_MIGRATE_GET_MAX_SPEED W "virDomainMigrateGetMaxSpeed" DOMAIN L,
    243 DOMAIN_BLOCK_STATS_FLAGS R "virDomainBlockStatsFlags" DOMAIN L,
    244 DOMAIN_SNAPSHOT_GET_PARENT R "virDomainSnapshotGetParent" DOMAIN_SNAPSHOT H,
    245 DOMAIN_RESET W "virDomainReset" DOMAIN L,
    246 DOMAIN_SNAPSHOT_NUM_CHILDREN R "virDomainSnapshotNumChildren" DOMAIN_SNAPSHOT H,
    247 DOMAIN_SNAPSHOT_LIST_CHILDREN_NAMES R "virDomainSnapshotListChildrenNames" DOMAIN_SNAPSHOT H,
    248 DOMAIN_EVENT_DISK_CHANGE E "" NONE L,
    249 DOMAIN_OPEN_GRAPHICS W "virDomainOpenGraphics" DOMAIN L,
    250 NODE_SUSPEND_FOR_DURATION W "virNodeSuspendForDuration" DOMAIN L,
    251 DOMAIN_BLOCK_RESIZE W "virDomainBlockResize" DOMAIN L,
    252 DOMAIN_SET_BLOCK_IO_TUNE W "virDomainSetBlockIoTune" DOMAIN L,
    253 DOMAIN_GET_BLOCK_IO_TUNE R "virDomainGetBlockIoTune" DOMAIN L,
    254 DOMAIN_SET_NUMA_PARAMETERS W "virDomainSetNumaParameters" DOMAIN L,
    255 DOMAIN_GET_NUMA_PARAMETERS R "virDomainGetNumaParameters" DOMAIN L,
    256 DOMAIN_SET_INTERFACE_PARAMETERS W "virDomainSetInterfaceParameters" DOMAIN L,
    257 DOMAIN_GET_INTERFACE_PARAMETERS R "virDomainGetInterfaceParameters" DOMAIN L,
    258 DOMAIN_SHUTDOWN_FLAGS W "virDomainShutdownFlags" DOMAIN L,
    259 STORAGE_VOL_WIPE_PATTERN W "virStorageVolWipePattern" STORAGE L,
    260 STORAGE_VOL_RESIZE W "virStorageVolResize" STORAGE L,
    261 DOMAIN_PM_SUSPEND_FOR_DURATION W "virDomainPMSuspendForDuration" DOMAIN L,
    262 DOMAIN_GET_CPU_STATS R "virDomainGetCPUStats" DOMAIN L,
    263 DOMAIN_GET_DISK_ERRORS R "virDomainGetDiskErrors" DOMAIN L,
    264 DOMAIN_SET_METADATA W "virDomainSetMetadata" DOMAIN L,
    265 DOMAIN_GET_METADATA R "virDomainGetMetadata" DOMAIN L,
    266 DOMAIN_BLOCK_REBASE W "virDomainBlockRebase" DOMAIN L,
    267 DOMAIN_PM_WAKEUP W "virDomainPMWakeup" DOMAIN L,
    268 DOMAIN_EVENT_TRAY_CHANGE E "" NONE L,
    269 DOMAIN_EVENT_PMWAKEUP E "" NONE L,
    270 DOMAIN_EVENT_PMSUSPEND E "" NONE L,
    271 DOMAIN_SNAPSHOT_IS_CURRENT R "virDomainSnapshotIsCurrent" DOMAIN_SNAPSHOT L,
    272 DOMAIN_SNAPSHOT_HAS_METADATA R "virDomainSnapshotHasMetadata" DOMAIN_SNAPSHOT L,
    273 CONNECT_LIST_ALL_DOMAINS R "virConnectListAllDomains" DOMAIN H,
    274 DOMAIN_LIST_ALL_SNAPSHOTS R "virDomainListAllSnapshots" DOMAIN_SNAPSHOT H,
    275 DOMAIN_SNAPSHOT_LIST_ALL_CHILDREN R "virDomainSnapshotListAllChildren" DOMAIN_SNAPSHOT H,
    276 DOMAIN_EVENT_BALLOON_CHANGE E "" NONE L,
    277 DOMAIN_GET_HOSTNAME W "virDomainGetHostname" DOMAIN L,
    278 DOMAIN_GET_SECURITY_LABEL_LIST R "virDomainGetSecurityLabelList" DOMAIN H,
    279 DOMAIN_PIN_EMULATOR W "virDomainPinEmulator" DOMAIN L,
    280 DOMAIN_GET_EMULATOR_PIN_INFO R "virDomainGetEmulatorPinInfo" DOMAIN L,
    281 CONNECT_LIST_ALL_STORAGE_POOLS R "virConnectListAllStoragePools" STORAGE H,
    282 STORAGE_POOL_LIST_ALL_VOLUMES R "virStoragePoolListAllVolumes" STORAGE H,
    283 CONNECT_LIST_ALL_NETWORKS R "virConnectListAllNetworks" NETWORK H,
    284 CONNECT_LIST_ALL_INTERFACES R "virConnectListAllInterfaces" INTERFACE H,
    285 CONNECT_LIST_ALL_NODE_DEVICES R "virConnectListAllNodeDevices" NODEDEV H,
    286 CONNECT_LIST_ALL_NWFILTERS R "virConnectListAllNWFilters" NWFILTER H,
    287 CONNECT_LIST_ALL_SECRETS R "virConnectListAllSecrets" SECRET H,
    288 NODE_SET_MEMORY_PARAMETERS W "virNodeSetMemoryParameters" DOMAIN L,
    289 NODE_GET_MEMORY_PARAMETERS R "virNodeGetMemoryParameters" DOMAIN L,
    290 DOMAIN_BLOCK_COMMIT W "virDomainBlockCommit" DOMAIN L,
    291 NETWORK_UPDATE W "virNetworkUpdate" NETWORK H,
    292 DOMAIN_EVENT_PMSUSPEND_DISK E "" NONE L,
    293 NODE_GET_CPU_MAP R "virNodeGetCPUMap" DOMAIN L,
    294 DOMAIN_FSTRIM W "virDomainFSTrim" DOMAIN L,
    295 DOMAIN_SEND_PROCESS_SIGNAL W "virDomainSendProcessSignal" DOMAIN L,
    296 DOMAIN_OPEN_CHANNEL W "virDomainOpenChannel" DOMAIN L,
    297 NODE_DEVICE_LOOKUP_SCSI_HOST_BY_WWN R "virNodeDeviceLookupSCSIHostByWWN" NODEDEV H,
    298 DOMAIN_GET_JOB_STATS R "virDomainGetJobStats" DOMAIN L,
    299 DOMAIN_MIGRATE_GET_COMPRESSION_CACHE R "virDomainMigrateGetCompressionCache" DOMAIN L,
    300 DOMAIN_MIGRATE_SET_COMPRESSION_CACHE W "virDomainMigrateSetCompressionCache" DOMAIN L,
    301 NODE_DEVICE_DETACH_FLAGS W "virNodeDeviceDetachFlags" NODEDEV L,
    302 DOMAIN_MIGRATE_BEGIN3_PARAMS W "virDomainMigrateBegin3Params" DOMAIN L,
    303 DOMAIN_MIGRATE_PREPARE3_PARAMS W "virDomainMigratePrepare3Params" DOMAIN L,
    304 DOMAIN_MIGRATE_PREPARE_TUNNEL3_PARAMS W "virDomainMigratePrepareTunnel3Params" DOMAIN L,
    305 DOMAIN_MIGRATE_PERFORM3_PARAMS W "virDomainMigratePerform3Params" DOMAIN L,
    306 DOMAIN_MIGRATE_FINISH3_PARAMS W "virDomainMigrateFinish3Params" DOMAIN L,
    307 DOMAIN_MIGRATE_CONFIRM3_PARAMS W "virDomainMigrateConfirm3Params" DOMAIN L,
    308 DOMAIN_SET_MEMORY_STATS_PERIOD W "virDomainSetMemoryStatsPeriod" DOMAIN L,
    309 DOMAIN_CREATE_XML_WITH_FILES W "virDomainCreateXMLWithFiles" DOMAIN L,
    310 DOMAIN_CREATE_WITH_FILES W "virDomainCreateWithFiles" DOMAIN L,
    311 DOMAIN_EVENT_DEVICE_REMOVED E "" NONE L,
    312 CONNECT_GET_CPU_MODEL_NAMES R "virConnectGetCPUModelNames" DOMAIN L,
    313 CONNECT_NETWORK_EVENT_REGISTER_ANY R "virConnectNetworkEventRegisterAny" NETWORK H,
    314 CONNECT_NETWORK_EVENT_DEREGISTER_ANY R "virConnectNetworkEventDeregisterAny" NETWORK H,
    315 NETWORK_EVENT_LIFECYCLE E "" NONE L,
    316 CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY R "virConnectDomainEventRegisterAny" DOMAIN H,
    317 CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY R "virConnectDomainEventDeregisterAny" DOMAIN H,
    318 DOMAIN_EVENT_CALLBACK_LIFECYCLE E "" NONE L,
    319 DOMAIN_EVENT_CALLBACK_REBOOT E "" NONE L,
    320 DOMAIN_EVENT_CALLBACK_RTC_CHANGE E "" NONE L,
    321 DOMAIN_EVENT_CALLBACK_WATCHDOG E "" NONE L,
    322 DOMAIN_EVENT_CALLBACK_IO_ERROR E "" NONE L,
    323 DOMAIN_EVENT_CALLBACK_GRAPHICS E "" NONE L,
    324 DOMAIN_EVENT_CALLBACK_IO_ERROR_REASON E "" NONE L,
    325 DOMAIN_EVENT_CALLBACK_CONTROL_ERROR E "" NONE L,
    326 DOMAIN_EVENT_CALLBACK_BLOCK_JOB E "" NONE L,
    327 DOMAIN_EVENT_CALLBACK_DISK_CHANGE E "" NONE L,
    328 DOMAIN_EVENT_CALLBACK_TRAY_CHANGE E "" NONE L,
    329 DOMAIN_EVENT_CALLBACK_PMWAKEUP E "" NONE L,
    330 DOMAIN_EVENT_CALLBACK_PMSUSPEND E "" NONE L,
    331 DOMAIN_EVENT_CALLBACK_BALLOON_CHANGE E "" NONE L,
    332 DOMAIN_EVENT_CALLBACK_PMSUSPEND_DISK E "" NONE L,
    333 DOMAIN_EVENT_CALLBACK_DEVICE_REMOVED E "" NONE L,
    334 DOMAIN_CORE_DUMP_WITH_FORMAT W "virDomainCoreDumpWithFormat" DOMAIN L,
    335 DOMAIN_FSFREEZE W "virDomainFSFreeze" DOMAIN L,
    336 DOMAIN_FSTHAW W "virDomainFSThaw" DOMAIN L,
    337 DOMAIN_GET_TIME W "virDomainGetTime" DOMAIN L,
    338 DOMAIN_SET_TIME W "virDomainSetTime" DOMAIN L,
    339 DOMAIN_EVENT_BLOCK_JOB_2 E "" NONE L,
    340 NODE_GET_FREE_PAGES R "virNodeGetFreePages" DOMAIN H,
    341 NETWORK_GET_DHCP_LEASES R "virNetworkGetDHCPLeases" NETWORK L,
    342 CONNECT_GET_DOMAIN_CAPABILITIES W "virConnectGetDomainCapabilities" DOMAIN L,
    343 DOMAIN_OPEN_GRAPHICS_FD W "virDomainOpenGraphicsFD" DOMAIN L,
    344 CONNECT_GET_ALL_DOMAIN_STATS R "virConnectGetAllDomainStats" DOMAIN L,
    345 DOMAIN_BLOCK_COPY W "virDomainBlockCopy" DOMAIN L,
    346 DOMAIN_EVENT_CALLBACK_TUNABLE E "" NONE L,
    347 NODE_ALLOC_PAGES W "virNodeAllocPages" DOMAIN L,
    348 DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE E "" NONE L,
    349 DOMAIN_GET_FSINFO W "virDomainGetFSInfo" DOMAIN L,
    350 DOMAIN_DEFINE_XML_FLAGS W "virDomainDefineXMLFlags" DOMAIN H,
    351 DOMAIN_GET_IOTHREAD_INFO R "virDomainGetIOThreadInfo" DOMAIN L,
    352 DOMAIN_PIN_IOTHREAD W "virDomainPinIOThread" DOMAIN L,
    353 DOMAIN_INTERFACE_ADDRESSES W "virDomainInterfaceAddresses" DOMAIN L,
    354 DOMAIN_EVENT_CALLBACK_DEVICE_ADDED E "" NONE L,
    355 DOMAIN_ADD_IOTHREAD W "virDomainAddIOThread" DOMAIN L,
    356 DOMAIN_DEL_IOTHREAD W "virDomainDelIOThread" DOMAIN L,
    357 DOMAIN_SET_USER_PASSWORD W "virDomainSetUserPassword" DOMAIN L,
    358 DOMAIN_RENAME W "virDomainRename" DOMAIN L,
    359 DOMAIN_EVENT_CALLBACK_MIGRATION_ITERATION E "" NONE L,
    360 CONNECT_REGISTER_CLOSE_CALLBACK R "virConnectRegisterCloseCallback" DOMAIN H,
    361 CONNECT_UNREGISTER_CLOSE_CALLBACK R "virConnectUnregisterCloseCallback" DOMAIN H,
    362 CONNECT_EVENT_CONNECTION_CLOSED E "" NONE L,
    363 DOMAIN_EVENT_CALLBACK_JOB_COMPLETED E "" NONE L,
    364 DOMAIN_MIGRATE_START_POST_COPY W "virDomainMigrateStartPostCopy" DOMAIN L,
    365 DOMAIN_GET_PERF_EVENTS R "virDomainGetPerfEvents" DOMAIN L,
    366 DOMAIN_SET_PERF_EVENTS W "virDomainSetPerfEvents" DOMAIN L,
    367 DOMAIN_EVENT_CALLBACK_DEVICE_REMOVAL_FAILED E "" NONE L,
    368 CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY R "virConnectStoragePoolEventRegisterAny" STORAGE H,
    369 CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY R "virConnectStoragePoolEventDeregisterAny" STORAGE H,
    370 STORAGE_POOL_EVENT_LIFECYCLE E "" NONE L,
    371 DOMAIN_GET_GUEST_VCPUS W "virDomainGetGuestVcpus" DOMAIN L,
    372 DOMAIN_SET_GUEST_VCPUS W "virDomainSetGuestVcpus" DOMAIN L,
    373 STORAGE_POOL_EVENT_REFRESH E "" NONE L,
    374 CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY R "virConnectNodeDeviceEventRegisterAny" NODEDEV H,
    375 CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY R "virConnectNodeDeviceEventDeregisterAny" NODEDEV H,
    376 NODE_DEVICE_EVENT_LIFECYCLE E "" NONE L,
    377 NODE_DEVICE_EVENT_UPDATE E "" NONE L,
    378 STORAGE_VOL_GET_INFO_FLAGS R "virStorageVolGetInfoFlags" STORAGE H,
    379 DOMAIN_EVENT_CALLBACK_METADATA_CHANGE E "" NONE L,
    380 CONNECT_SECRET_EVENT_REGISTER_ANY R "virConnectSecretEventRegisterAny" SECRET H,
    381 CONNECT_SECRET_EVENT_DEREGISTER_ANY R "virConnectSecretEventDeregisterAny" SECRET H,
    382 SECRET_EVENT_LIFECYCLE E "" NONE L,
    383 SECRET_EVENT_VALUE_CHANGED E "" NONE L,
    384 DOMAIN_SET_VCPU W "virDomainSetVcpu" DOMAIN L,
    385 DOMAIN_EVENT_BLOCK_THRESHOLD E "" NONE L,
    386 DOMAIN_SET_BLOCK_THRESHOLD W "virDomainSetBlockThreshold" DOMAIN L,
    387 DOMAIN_MIGRATE_GET_MAX_DOWNTIME R "virDomainMigrateGetMaxDowntime" DOMAIN L,
    388 DOMAIN_MANAGED_SAVE_GET_XML_DESC C(1) "virDomainManagedSaveGetXMLDesc" DOMAIN L,
    389 DOMAIN_MANAGED_SAVE_DEFINE_XML W "virDomainManagedSaveDefineXML" DOMAIN L,
    390 DOMAIN_SET_LIFECYCLE_ACTION W "virDomainSetLifecycleAction" DOMAIN L,
    391 STORAGE_POOL_LOOKUP_BY_TARGET_PATH R "virStoragePoolLookupByTargetPath" STORAGE H,
    392 DOMAIN_DETACH_DEVICE_ALIAS W "virDomainDetachDeviceAlias" DOMAIN L,
    393 CONNECT_COMPARE_HYPERVISOR_CPU W "virConnectCompareHypervisorCPU" DOMAIN L,
    394 CONNECT_BASELINE_HYPERVISOR_CPU W "virConnectBaselineHypervisorCPU" DOMAIN L,
    395 NODE_GET_SEV_INFO W "virNodeGetSEVInfo" DOMAIN L,
    396 DOMAIN_GET_LAUNCH_SECURITY_INFO W "virDomainGetLaunchSecurityInfo" DOMAIN L,
    397 NWFILTER_BINDING_LOOKUP_BY_PORT_DEV R "virNWFilterBindingLookupByPortDev" NWFILTER H,
    398 NWFILTER_BINDING_GET_XML_DESC R "virNWFilterBindingGetXMLDesc" NWFILTER H,
    399 NWFILTER_BINDING_CREATE_XML W "virNWFilterBindingCreateXML" NWFILTER H,
    400 NWFILTER_BINDING_DELETE W "virNWFilterBindingDelete" NWFILTER H,
    401 CONNECT_LIST_ALL_NWFILTER_BINDINGS R "virConnectListAllNWFilterBindings" NWFILTER H,
    402 DOMAIN_SET_IOTHREAD_PARAMS W "virDomainSetIOThreadParams" DOMAIN L,
    403 CONNECT_GET_STORAGE_POOL_CAPABILITIES R "virConnectGetStoragePoolCapabilities" STORAGE L,
    404 NETWORK_LIST_ALL_PORTS R "virNetworkListAllPorts" NETWORK H,
    405 NETWORK_PORT_LOOKUP_BY_UUID R "virNetworkPortLookupByUUID" NETWORK H,
    406 NETWORK_PORT_CREATE_XML W "virNetworkPortCreateXML" NETWORK L,
    407 NETWORK_PORT_GET_PARAMETERS R "virNetworkPortGetParameters" NETWORK L,
    408 NETWORK_PORT_SET_PARAMETERS W "virNetworkPortSetParameters" NETWORK L,
    409 NETWORK_PORT_GET_XML_DESC R "virNetworkPortGetXMLDesc" NETWORK L,
    410 NETWORK_PORT_DELETE W "virNetworkPortDelete" NETWORK L,
    411 DOMAIN_CHECKPOINT_CREATE_XML W "virDomainCheckpointCreateXML" DOMAIN_CHECKPOINT L,
    412 DOMAIN_CHECKPOINT_GET_XML_DESC C(1) "virDomainCheckpointGetXMLDesc" DOMAIN_CHECKPOINT L,
    413 DOMAIN_LIST_ALL_CHECKPOINTS R "virDomainListAllCheckpoints" DOMAIN_CHECKPOINT H,
    414 DOMAIN_CHECKPOINT_LIST_ALL_CHILDREN R "virDomainCheckpointListAllChildren" DOMAIN_CHECKPOINT H,
    415 DOMAIN_CHECKPOINT_LOOKUP_BY_NAME R "virDomainCheckpointLookupByName" DOMAIN_CHECKPOINT H,
    416 DOMAIN_CHECKPOINT_GET_PARENT R "virDomainCheckpointGetParent" DOMAIN_CHECKPOINT H,
    417 DOMAIN_CHECKPOINT_DELETE W "virDomainCheckpointDelete" DOMAIN_CHECKPOINT L,
    418 DOMAIN_GET_GUEST_INFO W "virDomainGetGuestInfo" DOMAIN L,
    419 CONNECT_SET_IDENTITY R "virConnectSetIdentity" DOMAIN L,
    420 DOMAIN_AGENT_SET_RESPONSE_TIMEOUT W "virDomainAgentSetResponseTimeout" DOMAIN L,
    421 DOMAIN_BACKUP_BEGIN W "virDomainBackupBegin" DOMAIN L,
    422 DOMAIN_BACKUP_GET_XML_DESC R "virDomainBackupGetXMLDesc" DOMAIN H,
    423 DOMAIN_EVENT_MEMORY_FAILURE E "" NONE L,
    424 DOMAIN_AUTHORIZED_SSH_KEYS_GET W "virDomainAuthorizedSSHKeysGet" DOMAIN L,
    425 DOMAIN_AUTHORIZED_SSH_KEYS_SET W "virDomainAuthorizedSSHKeysSet" DOMAIN L,
    426 DOMAIN_GET_MESSAGES R "virDomainGetMessages" DOMAIN L,
    427 DOMAIN_START_DIRTY_RATE_CALC W "virDomainStartDirtyRateCalc" DOMAIN L,
    428 NODE_DEVICE_DEFINE_XML W "virNodeDeviceDefineXML" NODEDEV L,
    429 NODE_DEVICE_UNDEFINE W "virNodeDeviceUndefine" NODEDEV H,
    430 NODE_DEVICE_CREATE W "virNodeDeviceCreate" NODEDEV H,
    431 NWFILTER_DEFINE_XML_FLAGS W "virNWFilterDefineXMLFlags" NWFILTER H,
    432 NETWORK_DEFINE_XML_FLAGS W "virNetworkDefineXMLFlags" NETWORK H,
    433 NODE_DEVICE_GET_AUTOSTART W "virNodeDeviceGetAutostart" NODEDEV H,
    434 NODE_DEVICE_SET_AUTOSTART W "virNodeDeviceSetAutostart" NODEDEV H,
    435 NODE_DEVICE_IS_PERSISTENT R "virNodeDeviceIsPersistent" NODEDEV H,
    436 NODE_DEVICE_IS_ACTIVE R "virNodeDeviceIsActive" NODEDEV H,
    437 NETWORK_CREATE_XML_FLAGS W "virNetworkCreateXMLFlags" NETWORK H,
    438 DOMAIN_EVENT_MEMORY_DEVICE_SIZE_CHANGE E "" NONE L,
    439 DOMAIN_SET_LAUNCH_SECURITY_STATE W "virDomainSetLaunchSecurityState" DOMAIN L,
    440 DOMAIN_SAVE_PARAMS W "virDomainSaveParams" DOMAIN L,
    441 DOMAIN_RESTORE_PARAMS W "virDomainRestoreParams" DOMAIN L,
    442 DOMAIN_ABORT_JOB_FLAGS W "virDomainAbortJobFlags" DOMAIN L,
    443 DOMAIN_FD_ASSOCIATE W "virDomainFDAssociate" DOMAIN L,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn numbers_are_unique_and_complete() {
        let mut seen = HashSet::new();
        for (i, p) in PROCEDURES.iter().enumerate() {
            assert!(seen.insert(p.number), "duplicate {}", p.number);
            assert_eq!(p.number as usize, i + 1, "{} out of order", p.name);
        }
        assert_eq!(PROCEDURES.len(), REMOTE_PROC_MAX as usize);
        let names: HashSet<_> = PROCEDURES.iter().map(|p| p.name).collect();
        assert_eq!(names.len(), PROCEDURES.len());
    }

    #[test]
    fn lookups() {
        assert_eq!(lookup(1).map(|p| p.name), Some("CONNECT_OPEN"));
        assert_eq!(lookup(273).map(|p| p.api), Some("virConnectListAllDomains"));
        assert_eq!(lookup(0), None);
        assert_eq!(lookup(-5), None);
        assert_eq!(lookup(444), None);
        assert_eq!(
            lookup_name("DOMAIN_DESTROY_FLAGS").map(|p| p.number),
            Some(234)
        );
        assert_eq!(num::DOMAIN_GET_STATE, 212);
        assert_eq!(num::CONNECT_REGISTER_CLOSE_CALLBACK, 360);
        assert_eq!(
            lookup_api("virDomainLookupByUUID").map(|p| p.number),
            Some(24)
        );
        assert_eq!(
            lookup(num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY).map(|p| p.api),
            Some("virConnectDomainEventRegisterAny")
        );
        assert_eq!(
            lookup(num::DOMAIN_EVENT_CALLBACK_LIFECYCLE).map(|p| p.kind),
            Some(Kind::Event)
        );
        assert_eq!(lookup(num::AUTH_LIST).map(|p| p.kind), Some(Kind::Auth));
    }

    #[test]
    fn every_call_names_an_api() {
        for p in PROCEDURES {
            match p.kind {
                Kind::Call => assert!(p.api.starts_with("vir"), "{}", p.name),
                _ => assert!(p.api.is_empty() && p.access == Access::Read, "{}", p.name),
            }
        }
    }

    #[test]
    fn readonly_refusals_match_libvirt() {
        let destroy = lookup(num::DOMAIN_DESTROY).expect("known");
        let e = destroy.check_readonly(0).expect_err("refused");
        // Measured on the reference daemon's read-only socket.
        assert_eq!(e.code, ErrorNumber::OPERATION_DENIED);
        assert_eq!(e.domain, ErrorDomain::DOMAIN);
        assert_eq!(
            e.message,
            "operation forbidden: read only access prevents virDomainDestroy"
        );
        assert_eq!(e.str1.as_deref(), Some("operation forbidden: %s"));
        assert_eq!(
            e.str2.as_deref(),
            Some("read only access prevents virDomainDestroy")
        );

        let xml = lookup(num::DOMAIN_GET_XML_DESC).expect("known");
        assert!(xml.check_readonly(0).is_ok());
        assert!(xml.check_readonly(2).is_ok());
        let e = xml.check_readonly(1).expect_err("secure refused");
        assert_eq!(
            e.message,
            "operation forbidden: virDomainGetXMLDesc with secure flag"
        );
        assert!(xml.check_readonly(8).is_err());

        for (n, write) in [
            (num::CONNECT_OPEN, false),
            (num::CONNECT_LIST_ALL_DOMAINS, false),
            (num::DOMAIN_GET_STATE, false),
            (num::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, false),
            (num::DOMAIN_DEFINE_XML_FLAGS, true),
            (num::DOMAIN_CREATE_WITH_FLAGS, true),
            (num::DOMAIN_SET_AUTOSTART, true),
            (num::DOMAIN_UNDEFINE_FLAGS, true),
            (num::NETWORK_DESTROY, true),
            (num::CONNECT_GET_DOMAIN_CAPABILITIES, true),
        ] {
            let p = lookup(n).expect("known");
            assert_eq!(p.changes_state(), write, "{}", p.name);
        }
    }

    #[test]
    fn unsupported_and_unknown_errors() {
        let e = lookup(num::DOMAIN_BLOCK_COPY).expect("known").no_support();
        assert_eq!(e.code, ErrorNumber::NO_SUPPORT);
        assert_eq!(
            e.message,
            "this function is not supported by the connection driver: virDomainBlockCopy"
        );
        // Measured: the reference daemon's answer to procedure 9999.
        let e = unknown_procedure(9999);
        assert_eq!((e.code.0, e.domain.0), (39, 7));
        assert_eq!(e.message, "unknown procedure: 9999");
        assert_eq!(e.str1.as_deref(), Some("%s"));
    }
}
