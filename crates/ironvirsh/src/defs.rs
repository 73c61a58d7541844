//! The commands ironvirsh knows, with virsh's names, options, help texts
//! and groups.

use crate::commands as c;
use crate::parse::Cmd;
use crate::Ctl;

/// Kinds of option values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptType {
    /// A flag.
    Bool,
    /// A string given as `--name value`.
    String,
    /// A required positional string (`<name>` in the synopsis).
    Data,
    /// A number.
    Int,
    /// Remaining arguments.
    Argv,
}

/// An option of a command.
#[derive(Debug)]
pub struct OptDef {
    /// Name without the dashes.
    pub name: &'static str,
    /// Value kind.
    pub ty: OptType,
    /// Whether the command fails to parse without it.
    pub required: bool,
    /// Whether a bare argument may fill it.
    pub positional: bool,
    /// Help line.
    pub help: &'static str,
}

/// A command.
pub struct CmdDef {
    /// Its name.
    pub name: &'static str,
    /// One-line help.
    pub help: &'static str,
    /// Longer description ("" for none).
    pub desc: &'static str,
    /// Options in declared order.
    pub opts: &'static [OptDef],
    /// Runs it; false when it failed.
    pub handler: fn(&mut Ctl, &Cmd) -> bool,
    /// Whether it runs without a connection.
    pub no_connect: bool,
}

impl std::fmt::Debug for CmdDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The implicit `--help` option every command has.
pub static HELP_OPT: OptDef = b("help", "print help for this function");

const fn b(name: &'static str, help: &'static str) -> OptDef {
    OptDef {
        name,
        ty: OptType::Bool,
        required: false,
        positional: false,
        help,
    }
}

const fn data(name: &'static str, help: &'static str) -> OptDef {
    OptDef {
        name,
        ty: OptType::Data,
        required: true,
        positional: true,
        help,
    }
}

/// A string option that a bare argument may also fill.
const fn spos(name: &'static str, help: &'static str) -> OptDef {
    OptDef {
        name,
        ty: OptType::String,
        required: false,
        positional: true,
        help,
    }
}

/// A string option only given by name.
const fn sopt(name: &'static str, help: &'static str) -> OptDef {
    OptDef {
        name,
        ty: OptType::String,
        required: false,
        positional: false,
        help,
    }
}

const DOM: OptDef = data("domain", "domain name, id or uuid");
const FILE: OptDef = data("file", "file containing an XML domain description");
const MODE: OptDef = spos("mode", "shutdown mode: acpi|agent|initctl|signal|paravirt");

/// Command groups in the order `help` lists them: (name, keyword, commands).
pub static GROUPS: &[(&str, &str, &[&CmdDef])] = &[
    (
        "Domain Management",
        "domain",
        &[
            &AUTOSTART,
            &CREATE,
            &DEFINE,
            &DESTROY,
            &DOMID,
            &DOMNAME,
            &DOMUUID,
            &DOMXML_TO_NATIVE,
            &DUMPXML,
            &REBOOT,
            &RESUME,
            &SHUTDOWN,
            &START,
            &SUSPEND,
            &UNDEFINE,
        ],
    ),
    (
        "Domain Monitoring",
        "monitor",
        &[&DOMINFO, &DOMSTATE, &LIST],
    ),
    (
        "Host and Hypervisor",
        "host",
        &[
            &CAPABILITIES,
            &DOMCAPABILITIES,
            &HOSTNAME,
            &NODEINFO,
            &URI,
            &VERSION,
        ],
    ),
    ("Virsh itself", "virsh", &[&EXIT, &HELP, &QUIT, &CONNECT]),
];

/// Finds a command by its exact name.
pub fn find_command(name: &str) -> Option<&'static CmdDef> {
    GROUPS
        .iter()
        .flat_map(|(_, _, cmds)| cmds.iter())
        .find(|c| c.name == name)
        .copied()
}

pub static LIST: CmdDef = CmdDef {
    name: "list",
    help: "list domains",
    desc: "Returns list of domains.",
    opts: &[
        b("inactive", "list inactive domains"),
        b("all", "list inactive & active domains"),
        b("transient", "list transient domains"),
        b("persistent", "list persistent domains"),
        b("with-snapshot", "list domains with existing snapshot"),
        b("without-snapshot", "list domains without a snapshot"),
        b("with-checkpoint", "list domains with existing checkpoint"),
        b("without-checkpoint", "list domains without a checkpoint"),
        b("state-running", "list domains in running state"),
        b("state-paused", "list domains in paused state"),
        b("state-shutoff", "list domains in shutoff state"),
        b("state-other", "list domains in other states"),
        b("autostart", "list domains with autostart enabled"),
        b("no-autostart", "list domains with autostart disabled"),
        b("with-managed-save", "list domains with managed save state"),
        b("without-managed-save", "list domains without managed save"),
        b("uuid", "list uuid's only"),
        b("name", "list domain names only"),
        b("id", "list domain IDs only"),
        b("table", "list table (default)"),
        b(
            "managed-save",
            "mark inactive domains with managed save state",
        ),
        b("title", "show domain title"),
    ],
    handler: c::cmd_list,
    no_connect: false,
};

pub static DOMINFO: CmdDef = CmdDef {
    name: "dominfo",
    help: "domain information",
    desc: "Returns basic information about the domain.",
    opts: &[DOM],
    handler: c::cmd_dominfo,
    no_connect: false,
};

pub static DOMSTATE: CmdDef = CmdDef {
    name: "domstate",
    help: "domain state",
    desc: "Returns state about a domain.",
    opts: &[DOM, b("reason", "also print reason for the state")],
    handler: c::cmd_domstate,
    no_connect: false,
};

pub static DOMID: CmdDef = CmdDef {
    name: "domid",
    help: "convert a domain name or UUID to domain id",
    desc: "",
    opts: &[data("domain", "domain name or uuid")],
    handler: c::cmd_domid,
    no_connect: false,
};

pub static DOMNAME: CmdDef = CmdDef {
    name: "domname",
    help: "convert a domain id or UUID to domain name",
    desc: "",
    opts: &[data("domain", "domain id or uuid")],
    handler: c::cmd_domname,
    no_connect: false,
};

pub static DOMUUID: CmdDef = CmdDef {
    name: "domuuid",
    help: "convert a domain name or id to domain UUID",
    desc: "",
    opts: &[data("domain", "domain id or name")],
    handler: c::cmd_domuuid,
    no_connect: false,
};

pub static DUMPXML: CmdDef = CmdDef {
    name: "dumpxml",
    help: "domain information in XML",
    desc: "Output the domain information as an XML dump to stdout.",
    opts: &[
        DOM,
        b("inactive", "show inactive defined XML"),
        b(
            "security-info",
            "include security sensitive information in XML dump",
        ),
        b("update-cpu", "update guest CPU according to host CPU"),
        b("migratable", "provide XML suitable for migrations"),
        sopt("xpath", "xpath expression to filter the XML document"),
        b("wrap", "wrap xpath results in an common root element"),
    ],
    handler: c::cmd_dumpxml,
    no_connect: false,
};

pub static DEFINE: CmdDef = CmdDef {
    name: "define",
    help: "define (but don't start) a domain from an XML file",
    desc: "Define a domain.",
    opts: &[FILE, b("validate", "validate the XML against the schema")],
    handler: c::cmd_define,
    no_connect: false,
};

pub static UNDEFINE: CmdDef = CmdDef {
    name: "undefine",
    help: "undefine a domain",
    desc: "Undefine an inactive domain, or convert persistent to transient.",
    opts: &[
        DOM,
        b("managed-save", "remove domain managed state file"),
        spos(
            "storage",
            "remove associated storage volumes (comma separated list of targets or source paths) (see domblklist)",
        ),
        b("remove-all-storage", "remove all associated storage volumes (use with caution)"),
        b(
            "delete-storage-volume-snapshots",
            "delete snapshots associated with volume(s), requires --remove-all-storage (must be supported by storage driver)",
        ),
        b("wipe-storage", "wipe data on the removed volumes"),
        b("snapshots-metadata", "remove all domain snapshot metadata (vm must be inactive)"),
        b("checkpoints-metadata", "remove all domain checkpoint metadata (vm must be inactive)"),
        b("nvram", "remove nvram file"),
        b("keep-nvram", "keep nvram file"),
        b("tpm", "remove TPM state"),
        b("keep-tpm", "keep TPM state"),
    ],
    handler: c::cmd_undefine,
    no_connect: false,
};

pub static CREATE: CmdDef = CmdDef {
    name: "create",
    help: "create a domain from an XML file",
    desc: "Create a domain.",
    opts: &[
        FILE,
        b("console", "attach to console after creation"),
        b("paused", "leave the guest paused after creation"),
        b(
            "autodestroy",
            "automatically destroy the guest when virsh disconnects",
        ),
        spos("pass-fds", "pass file descriptors N,M,... to the guest"),
        b("validate", "validate the XML against the schema"),
        b(
            "reset-nvram",
            "re-initialize NVRAM from its pristine template",
        ),
    ],
    handler: c::cmd_create,
    no_connect: false,
};

pub static START: CmdDef = CmdDef {
    name: "start",
    help: "start a (previously defined) inactive domain",
    desc: "Start a domain, either from the last managedsave\n    state, or via a fresh boot if no managedsave state\n    is present.",
    opts: &[
        data("domain", "name of the inactive domain"),
        b("console", "attach to console after creation"),
        b("paused", "leave the guest paused after creation"),
        b("autodestroy", "automatically destroy the guest when virsh disconnects"),
        b("bypass-cache", "avoid file system cache when loading"),
        b("force-boot", "force fresh boot by discarding any managed save"),
        spos("pass-fds", "pass file descriptors N,M,... to the guest"),
        b("reset-nvram", "re-initialize NVRAM from its pristine template"),
    ],
    handler: c::cmd_start,
    no_connect: false,
};

pub static DESTROY: CmdDef = CmdDef {
    name: "destroy",
    help: "destroy (stop) a domain",
    desc: "Forcefully stop a given domain, but leave its resources intact.",
    opts: &[
        DOM,
        b("graceful", "terminate gracefully"),
        b("remove-logs", "remove domain logs"),
    ],
    handler: c::cmd_destroy,
    no_connect: false,
};

pub static SHUTDOWN: CmdDef = CmdDef {
    name: "shutdown",
    help: "gracefully shutdown a domain",
    desc: "Run shutdown in the target domain.",
    opts: &[DOM, MODE],
    handler: c::cmd_shutdown,
    no_connect: false,
};

pub static REBOOT: CmdDef = CmdDef {
    name: "reboot",
    help: "reboot a domain",
    desc: "Run a reboot command in the target domain.",
    opts: &[DOM, MODE],
    handler: c::cmd_reboot,
    no_connect: false,
};

pub static SUSPEND: CmdDef = CmdDef {
    name: "suspend",
    help: "suspend a domain",
    desc: "Suspend a running domain.",
    opts: &[DOM],
    handler: c::cmd_suspend,
    no_connect: false,
};

pub static RESUME: CmdDef = CmdDef {
    name: "resume",
    help: "resume a domain",
    desc: "Resume a previously suspended domain.",
    opts: &[DOM],
    handler: c::cmd_resume,
    no_connect: false,
};

pub static AUTOSTART: CmdDef = CmdDef {
    name: "autostart",
    help: "autostart a domain",
    desc: "Configure a domain to be automatically started at boot.",
    opts: &[DOM, b("disable", "disable autostarting")],
    handler: c::cmd_autostart,
    no_connect: false,
};

pub static CAPABILITIES: CmdDef = CmdDef {
    name: "capabilities",
    help: "capabilities",
    desc: "Returns capabilities of hypervisor/driver.",
    opts: &[],
    handler: c::cmd_capabilities,
    no_connect: false,
};

pub static DOMCAPABILITIES: CmdDef = CmdDef {
    name: "domcapabilities",
    help: "domain capabilities",
    desc: "Returns capabilities of emulator with respect to host and libvirt.",
    opts: &[
        spos("virttype", "virtualization type (/domain/@type)"),
        spos(
            "emulatorbin",
            "path to emulator binary (/domain/devices/emulator)",
        ),
        spos("arch", "domain architecture (/domain/os/type/@arch)"),
        spos("machine", "machine type (/domain/os/type/@machine)"),
    ],
    handler: c::cmd_domcapabilities,
    no_connect: false,
};

pub static DOMXML_TO_NATIVE: CmdDef = CmdDef {
    name: "domxml-to-native",
    help: "Convert domain XML to native config",
    desc: "Convert domain XML config to a native guest configuration format.",
    opts: &[
        data("format", "target config data type format"),
        sopt("domain", "domain name, id or uuid"),
        spos("xml", "xml data file to export from"),
    ],
    handler: c::cmd_domxml_to_native,
    no_connect: false,
};

pub static NODEINFO: CmdDef = CmdDef {
    name: "nodeinfo",
    help: "node information",
    desc: "Returns basic information about the node.",
    opts: &[],
    handler: c::cmd_nodeinfo,
    no_connect: false,
};

pub static VERSION: CmdDef = CmdDef {
    name: "version",
    help: "show version",
    desc: "Display the system version information.",
    opts: &[b("daemon", "report daemon version too")],
    handler: c::cmd_version,
    no_connect: false,
};

pub static URI: CmdDef = CmdDef {
    name: "uri",
    help: "print the hypervisor canonical URI",
    desc: "",
    opts: &[],
    handler: c::cmd_uri,
    no_connect: false,
};

pub static HOSTNAME: CmdDef = CmdDef {
    name: "hostname",
    help: "print the hypervisor hostname",
    desc: "",
    opts: &[],
    handler: c::cmd_hostname,
    no_connect: false,
};

pub static HELP: CmdDef = CmdDef {
    name: "help",
    help: "print help",
    desc: "Prints global help, command specific help, or help for a\n    group of related commands",
    opts: &[spos(
        "command",
        "Prints global help, command specific help, or help for a group of related commands",
    )],
    handler: c::cmd_help,
    no_connect: true,
};

pub static QUIT: CmdDef = CmdDef {
    name: "quit",
    help: "quit this interactive terminal",
    desc: "",
    opts: &[],
    handler: c::cmd_quit,
    no_connect: true,
};

pub static EXIT: CmdDef = CmdDef {
    name: "exit",
    help: "quit this interactive terminal",
    desc: "",
    opts: &[],
    handler: c::cmd_quit,
    no_connect: true,
};

pub static CONNECT: CmdDef = CmdDef {
    name: "connect",
    help: "(re)connect to hypervisor",
    desc: "Connect to local hypervisor. This is built-in command after shell start up.",
    opts: &[
        spos("name", "hypervisor connection URI"),
        b("readonly", "read-only connection"),
    ],
    handler: c::cmd_connect,
    no_connect: true,
};
