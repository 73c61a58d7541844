//! Command handlers: each prints what virsh prints and returns whether the
//! command succeeded; a failing library call is remembered in
//! [`Ctl::last_error`] and reported after the handler's own error line.

use crate::defs::{self, CmdDef, OptType};
use crate::parse::Cmd;
use crate::table::Table;
use crate::Ctl;
use ironvirt::{
    define_flags, list_flags, undefine_flags, xml_flags, Domain, DomainState, Error, ErrorNumber,
};

/// Ways a domain argument may be resolved.
const BYID: u8 = 1;
const BYUUID: u8 = 2;
const BYNAME: u8 = 4;

/// `strtol`-style integer as `virStrToLong_i` accepts it: optional leading
/// blanks and sign, decimal digits, nothing after.
fn parse_c_int(s: &str) -> Option<i32> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = digits.parse().ok()?;
    let v = if neg { -v } else { v };
    i32::try_from(v).ok()
}

/// The value of a string option; an empty value is refused like virsh's
/// `vshCommandOptStringReq`.
fn opt_string<'a>(ctl: &Ctl, cmd: &'a Cmd, name: &str) -> Result<Option<&'a str>, ()> {
    match cmd.value(name) {
        Some("") => {
            ctl.error(&format!(
                "Failed to get option '{name}': Option argument is empty"
            ));
            Err(())
        }
        v => Ok(v),
    }
}

/// Looks a domain up from the `domain` option, by id, UUID and name as
/// `how` allows; prints virsh's "failed to get domain" when none matches.
fn lookup(ctl: &mut Ctl, cmd: &Cmd, how: u8) -> Option<(Domain, String)> {
    let name = opt_string(ctl, cmd, "domain").ok()??.to_string();
    let conn = ctl.conn().clone();
    let mut dom = None;
    if how & BYID != 0 {
        if let Some(id) = parse_c_int(&name) {
            if id >= 0 {
                dom = conn.domain_lookup_by_id(id).ok();
            }
        }
    }
    if dom.is_none() && how & BYUUID != 0 && name.len() == 36 {
        dom = conn.domain_lookup_by_uuid_string(&name).ok();
    }
    if dom.is_none() && how & BYNAME != 0 {
        dom = conn.domain_lookup_by_name(&name).ok();
    }
    ctl.last_error = None;
    match dom {
        Some(d) => Some((d, name)),
        None => {
            ctl.error(&format!("failed to get domain '{name}'"));
            None
        }
    }
}

fn lookup_default(ctl: &mut Ctl, cmd: &Cmd) -> Option<(Domain, String)> {
    lookup(ctl, cmd, BYID | BYUUID | BYNAME)
}

/// virsh's words for a domain state.
pub fn state_str(state: i32) -> &'static str {
    match DomainState::from_i32(state) {
        Some(DomainState::Running) => "running",
        Some(DomainState::Blocked) => "idle",
        Some(DomainState::Paused) => "paused",
        Some(DomainState::Shutdown) => "in shutdown",
        Some(DomainState::Shutoff) => "shut off",
        Some(DomainState::Crashed) => "crashed",
        Some(DomainState::PmSuspended) => "pmsuspended",
        _ => "no state",
    }
}

/// virsh's words for a state's reason.
pub fn reason_str(state: i32, r: i32) -> &'static str {
    let table: &[&str] = match DomainState::from_i32(state) {
        Some(DomainState::Running) => &[
            "unknown",
            "booted",
            "migrated",
            "restored",
            "from snapshot",
            "unpaused",
            "migration canceled",
            "save canceled",
            "event wakeup",
            "crashed",
            "post-copy",
        ],
        Some(DomainState::Paused) => &[
            "unknown",
            "user",
            "migrating",
            "saving",
            "dumping",
            "I/O error",
            "watchdog",
            "from snapshot",
            "shutting down",
            "creating snapshot",
            "crashed",
            "starting up",
            "post-copy",
            "post-copy failed",
        ],
        Some(DomainState::Shutdown) => &["unknown", "user"],
        Some(DomainState::Shutoff) => &[
            "unknown",
            "shutdown",
            "destroyed",
            "crashed",
            "migrated",
            "saved",
            "failed",
            "from snapshot",
            "daemon",
        ],
        Some(DomainState::Crashed) => &["unknown", "panicked"],
        _ => &["unknown"],
    };
    usize::try_from(r)
        .ok()
        .and_then(|i| table.get(i))
        .copied()
        .unwrap_or("unknown")
}

/// Reads a file the way virsh reads XML files.
fn read_file(ctl: &mut Ctl, path: &str) -> Option<String> {
    const MAX: u64 = 10 * 1024 * 1024;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            ctl.set_error(Error::system(
                ironvirt::ErrorDomain::NONE,
                format!("Failed to open file '{path}'"),
                &e,
            ));
            return None;
        }
    };
    let mut buf = Vec::new();
    use std::io::Read;
    if let Err(e) = (&mut f).take(MAX + 1).read_to_end(&mut buf) {
        ctl.set_error(Error::system(
            ironvirt::ErrorDomain::NONE,
            format!("Failed to read file '{path}'"),
            &e,
        ));
        return None;
    }
    if buf.len() as u64 > MAX {
        ctl.set_error(Error::new(
            ironvirt::ErrorDomain::NONE,
            ErrorNumber::INTERNAL_ERROR,
            format!("File '{path}' is too large"),
        ));
        return None;
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// Parses `--pass-fds N,M,...` (the descriptors themselves are not passed
/// on: no ironvirt driver takes them).
fn pass_fds(ctl: &Ctl, cmd: &Cmd) -> bool {
    match opt_string(ctl, cmd, "pass-fds") {
        Err(()) => false,
        Ok(None) => true,
        Ok(Some(list)) => {
            for part in list.split(',') {
                if part.parse::<u32>().is_err() {
                    ctl.error(&format!("Unable to parse FD number '{part}'"));
                    return false;
                }
            }
            true
        }
    }
}

fn unsupported_opt(ctl: &Ctl, cmd: &Cmd, names: &[&str]) -> bool {
    for n in names {
        if cmd.has(n) {
            ctl.error(&format!(
                "option --{n} is not supported by {}",
                ctl.progname
            ));
            return true;
        }
    }
    false
}

/// The title of a domain (from its XML), empty when it has none.
fn domain_title(dom: &Domain) -> Result<String, Error> {
    let xml = dom.get_xml_desc(0)?;
    let doc = match roxmltree::Document::parse(&xml) {
        Ok(d) => d,
        Err(_) => return Ok(String::new()),
    };
    let title = doc
        .root_element()
        .children()
        .find(|c| c.is_element() && c.tag_name().name() == "title")
        .and_then(|t| t.text())
        .unwrap_or("");
    Ok(title.to_string())
}

pub fn cmd_list(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let managed = cmd.has("managed-save");
    let opt_title = cmd.has("title");
    let mut opt_table = cmd.has("table");
    let opt_uuid = cmd.has("uuid");
    let opt_name = cmd.has("name");
    let opt_id = cmd.has("id");
    let mut flags = list_flags::ACTIVE;
    if cmd.has("inactive") || cmd.has("state-shutoff") {
        flags = list_flags::INACTIVE;
    }
    if cmd.has("all") {
        flags = list_flags::INACTIVE | list_flags::ACTIVE;
    }
    for (opt, f) in [
        ("persistent", list_flags::PERSISTENT),
        ("transient", list_flags::TRANSIENT),
        ("with-managed-save", list_flags::MANAGEDSAVE),
        ("without-managed-save", list_flags::NO_MANAGEDSAVE),
        ("autostart", list_flags::AUTOSTART),
        ("no-autostart", list_flags::NO_AUTOSTART),
        ("with-snapshot", list_flags::HAS_SNAPSHOT),
        ("without-snapshot", list_flags::NO_SNAPSHOT),
        ("with-checkpoint", list_flags::HAS_CHECKPOINT),
        ("without-checkpoint", list_flags::NO_CHECKPOINT),
        ("state-running", list_flags::RUNNING),
        ("state-paused", list_flags::PAUSED),
        ("state-shutoff", list_flags::SHUTOFF),
        ("state-other", list_flags::OTHER),
    ] {
        if cmd.has(opt) {
            flags |= f;
        }
    }
    for other in ["name", "uuid", "id"] {
        if opt_table && cmd.has(other) {
            ctl.error(&format!(
                "Options --table and --{other} are mutually exclusive"
            ));
            return false;
        }
    }
    if !opt_uuid && !opt_name && !opt_id {
        opt_table = true;
    }
    let conn = ctl.conn().clone();
    let mut doms = match conn.list_all_domains(flags) {
        Ok(d) => d,
        Err(e) => {
            ctl.error("Failed to list domains");
            ctl.set_error(e);
            return false;
        }
    };
    // virsh's order: running domains by id, then inactive ones by name.
    doms.sort_by(|a, b| {
        let (ia, ib) = (a.get_id(), b.get_id());
        match (ia == -1, ib == -1) {
            (true, true) => a.get_name().cmp(b.get_name()),
            (false, false) => ia.cmp(&ib),
            (false, true) => std::cmp::Ordering::Less,
            (true, false) => std::cmp::Ordering::Greater,
        }
    });
    let mut table = if opt_title {
        Table::new(&["Id", "Name", "State", "Title"])
    } else {
        Table::new(&["Id", "Name", "State"])
    };
    let mut out = String::new();
    for dom in &doms {
        let id = dom.get_id();
        let id_buf = if id == -1 {
            "-".to_string()
        } else {
            id.to_string()
        };
        if opt_table {
            let Ok((state, _)) = dom.get_state() else {
                continue;
            };
            let state_s = if managed
                && state == DomainState::Shutoff as i32
                && dom.has_managed_save_image(0) == Ok(true)
            {
                "saved"
            } else {
                state_str(state)
            };
            let mut row = vec![id_buf, dom.get_name().to_string(), state_s.to_string()];
            if opt_title {
                match domain_title(dom) {
                    Ok(t) => row.push(t),
                    Err(e) => {
                        ctl.set_error(e);
                        return false;
                    }
                }
            }
            table.add_row(row);
        } else {
            let mut sep = "";
            let mut line = String::new();
            if opt_uuid {
                line.push_str(&dom.get_uuid_string());
                sep = " ";
            }
            if opt_id {
                if id == -1 && !opt_uuid && !opt_name {
                    continue;
                }
                line.push_str(sep);
                line.push_str(&id_buf);
                sep = " ";
            }
            if opt_name {
                line.push_str(sep);
                line.push_str(dom.get_name());
            }
            line.push('\n');
            out.push_str(&line);
        }
    }
    if opt_table {
        out = table.render(!ctl.quiet);
    }
    ctl.print(&out);
    true
}

pub fn cmd_dominfo(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let Some((dom, _)) = lookup_default(ctl, cmd) else {
        return false;
    };
    let mut ret = true;
    let mut s = String::new();
    let id = dom.get_id();
    if id == -1 {
        s.push_str(&format!("{:<15} {}\n", "Id:", "-"));
    } else {
        s.push_str(&format!("{:<15} {}\n", "Id:", id));
    }
    s.push_str(&format!("{:<15} {}\n", "Name:", dom.get_name()));
    s.push_str(&format!("{:<15} {}\n", "UUID:", dom.get_uuid_string()));
    if let Ok(os) = dom.get_os_type() {
        s.push_str(&format!("{:<15} {}\n", "OS Type:", os));
    }
    match dom.get_info() {
        Ok(info) => {
            s.push_str(&format!(
                "{:<15} {}\n",
                "State:",
                state_str(i32::from(info.state))
            ));
            s.push_str(&format!("{:<15} {}\n", "CPU(s):", info.nr_virt_cpu));
            if info.cpu_time != 0 {
                let secs = info.cpu_time as f64 / 1_000_000_000.0;
                s.push_str(&format!("{:<15} {:.1}s\n", "CPU time:", secs));
            }
            s.push_str(&format!("{:<15} {} KiB\n", "Max memory:", info.max_mem));
            s.push_str(&format!("{:<15} {} KiB\n", "Used memory:", info.memory));
        }
        Err(e) => {
            ctl.set_error(e);
            ret = false;
        }
    }
    match dom.is_persistent() {
        Ok(p) => s.push_str(&format!(
            "{:<15} {}\n",
            "Persistent:",
            if p { "yes" } else { "no" }
        )),
        Err(_) => s.push_str(&format!("{:<15} {}\n", "Persistent:", "unknown")),
    }
    if let Ok(a) = dom.get_autostart() {
        s.push_str(&format!(
            "{:<15} {}\n",
            "Autostart:",
            if a { "enable" } else { "disable" }
        ));
    }
    match dom.has_managed_save_image(0) {
        Ok(m) => s.push_str(&format!(
            "{:<15} {}\n",
            "Managed save:",
            if m { "yes" } else { "no" }
        )),
        Err(_) => s.push_str(&format!("{:<15} {}\n", "Managed save:", "unknown")),
    }
    let conn = ctl.conn().clone();
    match conn.node_get_security_model() {
        Err(e) => {
            if e.code != ErrorNumber::NO_SUPPORT {
                ctl.print(&s);
                ctl.set_error(e);
                return false;
            }
        }
        Ok(model) => {
            if !model.model.is_empty() {
                s.push_str(&format!("{:<15} {}\n", "Security model:", model.model));
                s.push_str(&format!("{:<15} {}\n", "Security DOI:", model.doi));
                match dom.get_security_label() {
                    Err(e) => {
                        ctl.print(&s);
                        ctl.set_error(e);
                        return false;
                    }
                    Ok(label) => {
                        if !label.label.is_empty() {
                            let mode = if label.enforcing {
                                "enforcing"
                            } else {
                                "permissive"
                            };
                            s.push_str(&format!(
                                "{:<15} {} ({})\n",
                                "Security label:", label.label, mode
                            ));
                        }
                    }
                }
            }
        }
    }
    ctl.print(&s);
    ret
}

pub fn cmd_domstate(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let Some((dom, _)) = lookup_default(ctl, cmd) else {
        return false;
    };
    let (state, why) = match dom.get_state() {
        Ok(s) => s,
        Err(e) => {
            ctl.set_error(e);
            return false;
        }
    };
    if cmd.has("reason") {
        ctl.print(&format!(
            "{} ({})\n",
            state_str(state),
            reason_str(state, why)
        ));
    } else {
        ctl.print(&format!("{}\n", state_str(state)));
    }
    true
}

pub fn cmd_domid(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let Some((dom, _)) = lookup(ctl, cmd, BYNAME | BYUUID) else {
        return false;
    };
    match dom.get_id() {
        -1 => ctl.print("-\n"),
        id => ctl.print(&format!("{id}\n")),
    }
    true
}

pub fn cmd_domname(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let Some((dom, _)) = lookup(ctl, cmd, BYID | BYUUID) else {
        return false;
    };
    ctl.print(&format!("{}\n", dom.get_name()));
    true
}

pub fn cmd_domuuid(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let Some((dom, _)) = lookup(ctl, cmd, BYNAME | BYID) else {
        return false;
    };
    ctl.print(&format!("{}\n", dom.get_uuid_string()));
    true
}

pub fn cmd_dumpxml(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    if unsupported_opt(ctl, cmd, &["xpath", "wrap"]) {
        return false;
    }
    let mut flags = 0;
    for (o, f) in [
        ("inactive", xml_flags::INACTIVE),
        ("security-info", xml_flags::SECURE),
        ("update-cpu", xml_flags::UPDATE_CPU),
        ("migratable", xml_flags::MIGRATABLE),
    ] {
        if cmd.has(o) {
            flags |= f;
        }
    }
    let Some((dom, _)) = lookup_default(ctl, cmd) else {
        return false;
    };
    match dom.get_xml_desc(flags) {
        Ok(xml) => {
            ctl.print(&xml);
            true
        }
        Err(e) => {
            ctl.set_error(e);
            false
        }
    }
}

pub fn cmd_define(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let Ok(Some(from)) = opt_string(ctl, cmd, "file") else {
        return false;
    };
    let flags = if cmd.has("validate") {
        define_flags::VALIDATE
    } else {
        0
    };
    let Some(xml) = read_file(ctl, from) else {
        return false;
    };
    let conn = ctl.conn().clone();
    let r = if flags != 0 {
        conn.domain_define_xml_flags(&xml, flags)
    } else {
        conn.domain_define_xml(&xml)
    };
    match r {
        Ok(dom) => {
            ctl.print_extra(&format!(
                "Domain '{}' defined from {}\n",
                dom.get_name(),
                from
            ));
            true
        }
        Err(e) => {
            ctl.set_error(e);
            ctl.error(&format!("Failed to define domain from {from}"));
            false
        }
    }
}

pub fn cmd_create(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    if unsupported_opt(ctl, cmd, &["console"]) {
        return false;
    }
    let Ok(Some(from)) = opt_string(ctl, cmd, "file") else {
        return false;
    };
    let Some(xml) = read_file(ctl, from) else {
        return false;
    };
    if !pass_fds(ctl, cmd) {
        return false;
    }
    let mut flags = 0;
    for (o, f) in [
        ("paused", define_flags::START_PAUSED),
        ("autodestroy", define_flags::START_AUTODESTROY),
        ("validate", define_flags::START_VALIDATE),
        ("reset-nvram", 1 << 5),
    ] {
        if cmd.has(o) {
            flags |= f;
        }
    }
    let conn = ctl.conn().clone();
    match conn.domain_create_xml(&xml, flags) {
        Ok(dom) => {
            ctl.print_extra(&format!(
                "Domain '{}' created from {}\n",
                dom.get_name(),
                from
            ));
            true
        }
        Err(e) => {
            ctl.set_error(e);
            ctl.error(&format!("Failed to create domain from {from}"));
            false
        }
    }
}

pub fn cmd_start(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    if unsupported_opt(ctl, cmd, &["console"]) {
        return false;
    }
    let Some((dom, _)) = lookup(ctl, cmd, BYNAME | BYUUID) else {
        return false;
    };
    if dom.get_id() != -1 {
        ctl.error("Domain is already active");
        return false;
    }
    if !pass_fds(ctl, cmd) {
        return false;
    }
    let mut flags = 0;
    for (o, f) in [
        ("paused", define_flags::START_PAUSED),
        ("autodestroy", define_flags::START_AUTODESTROY),
        ("bypass-cache", define_flags::START_BYPASS_CACHE),
        ("force-boot", define_flags::START_FORCE_BOOT),
        ("reset-nvram", 1 << 5),
    ] {
        if cmd.has(o) {
            flags |= f;
        }
    }
    if flags & define_flags::START_FORCE_BOOT != 0 {
        match dom.create_with_flags(flags) {
            Ok(()) => {
                ctl.print_extra(&format!("Domain '{}' started\n", dom.get_name()));
                return true;
            }
            Err(e) if e.code != ErrorNumber::NO_SUPPORT && e.code != ErrorNumber::INVALID_ARG => {
                ctl.error(&e.message);
                ctl.error(&format!("Failed to start domain '{}'", dom.get_name()));
                return false;
            }
            Err(_) => {}
        }
        flags &= !define_flags::START_FORCE_BOOT;
    }
    let r = if flags != 0 {
        dom.create_with_flags(flags)
    } else {
        dom.create()
    };
    match r {
        Ok(()) => {
            ctl.print_extra(&format!("Domain '{}' started\n", dom.get_name()));
            true
        }
        Err(e) => {
            ctl.set_error(e);
            ctl.error(&format!("Failed to start domain '{}'", dom.get_name()));
            false
        }
    }
}

pub fn cmd_destroy(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let Some((dom, name)) = lookup_default(ctl, cmd) else {
        return false;
    };
    let mut flags = 0;
    if cmd.has("graceful") {
        flags |= 1;
    }
    if cmd.has("remove-logs") {
        flags |= 2;
    }
    let r = if flags != 0 {
        dom.destroy_flags(flags)
    } else {
        dom.destroy()
    };
    finish(
        ctl,
        r,
        format!("Domain '{name}' destroyed\n"),
        format!("Failed to destroy domain '{name}'"),
    )
}

/// Parses `--mode a,b,...` of shutdown and reboot into flags.
fn mode_flags(ctl: &Ctl, cmd: &Cmd) -> Option<u32> {
    let mode = opt_string(ctl, cmd, "mode").ok()?;
    let mut flags = 0;
    if let Some(m) = mode {
        for part in m.split(',') {
            flags |= match part {
                "acpi" => 1,
                "agent" => 2,
                "initctl" => 4,
                "signal" => 8,
                "paravirt" => 16,
                _ => {
                    ctl.error(&format!(
                        "Unknown mode {part} value, expecting 'acpi', 'agent', 'initctl', 'signal', or 'paravirt'"
                    ));
                    return None;
                }
            };
        }
    }
    Some(flags)
}

pub fn cmd_shutdown(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let Some(flags) = mode_flags(ctl, cmd) else {
        return false;
    };
    let Some((dom, name)) = lookup_default(ctl, cmd) else {
        return false;
    };
    let r = if flags != 0 {
        dom.shutdown_flags(flags)
    } else {
        dom.shutdown()
    };
    finish(
        ctl,
        r,
        format!("Domain '{name}' is being shutdown\n"),
        format!("Failed to shutdown domain '{name}'"),
    )
}

pub fn cmd_reboot(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let Some(flags) = mode_flags(ctl, cmd) else {
        return false;
    };
    let Some((dom, name)) = lookup_default(ctl, cmd) else {
        return false;
    };
    finish(
        ctl,
        dom.reboot(flags),
        format!("Domain '{name}' is being rebooted\n"),
        format!("Failed to reboot domain '{name}'"),
    )
}

pub fn cmd_suspend(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let Some((dom, name)) = lookup_default(ctl, cmd) else {
        return false;
    };
    finish(
        ctl,
        dom.suspend(),
        format!("Domain '{name}' suspended\n"),
        format!("Failed to suspend domain '{name}'"),
    )
}

pub fn cmd_resume(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let Some((dom, name)) = lookup_default(ctl, cmd) else {
        return false;
    };
    finish(
        ctl,
        dom.resume(),
        format!("Domain '{name}' resumed\n"),
        format!("Failed to resume domain '{name}'"),
    )
}

pub fn cmd_undefine(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let Some((dom, name)) = lookup_default(ctl, cmd) else {
        return false;
    };
    let storage = [
        "storage",
        "remove-all-storage",
        "delete-storage-volume-snapshots",
        "wipe-storage",
    ];
    if storage.iter().any(|o| cmd.has(o)) {
        if dom.is_active() == Ok(true) {
            ctl.error("Storage volume deletion is supported only on stopped domains");
        } else {
            ctl.error(&format!(
                "storage volume removal is not supported by {}",
                ctl.progname
            ));
        }
        return false;
    }
    let mut flags = 0;
    for (o, f) in [
        ("managed-save", undefine_flags::MANAGED_SAVE),
        ("snapshots-metadata", undefine_flags::SNAPSHOTS_METADATA),
        ("checkpoints-metadata", undefine_flags::CHECKPOINTS_METADATA),
        ("nvram", undefine_flags::NVRAM),
        ("keep-nvram", undefine_flags::KEEP_NVRAM),
        ("tpm", undefine_flags::TPM),
        ("keep-tpm", undefine_flags::KEEP_TPM),
    ] {
        if cmd.has(o) {
            flags |= f;
        }
    }
    // Flags for state that does not exist are dropped, as virsh does.
    match dom.has_managed_save_image(0) {
        Ok(false) => flags &= !undefine_flags::MANAGED_SAVE,
        Ok(true) => {}
        Err(e) if e.code == ErrorNumber::NO_SUPPORT => {}
        Err(e) => {
            ctl.set_error(e);
            ctl.error(&format!("Failed to undefine domain '{name}'"));
            return false;
        }
    }
    if dom.is_active() == Ok(false) {
        flags &= !undefine_flags::CHECKPOINTS_METADATA;
    }
    finish(
        ctl,
        dom.undefine_flags(flags),
        format!("Domain '{name}' has been undefined\n"),
        format!("Failed to undefine domain '{name}'"),
    )
}

pub fn cmd_autostart(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let Some((dom, name)) = lookup_default(ctl, cmd) else {
        return false;
    };
    let autostart = !cmd.has("disable");
    match dom.set_autostart(autostart) {
        Ok(()) => {
            if autostart {
                ctl.print_extra(&format!("Domain '{name}' marked as autostarted\n"));
            } else {
                ctl.print_extra(&format!("Domain '{name}' unmarked as autostarted\n"));
            }
            true
        }
        Err(e) => {
            ctl.set_error(e);
            if autostart {
                ctl.error(&format!("Failed to mark domain '{name}' as autostarted"));
            } else {
                ctl.error(&format!("Failed to unmark domain '{name}' as autostarted"));
            }
            false
        }
    }
}

pub fn cmd_capabilities(ctl: &mut Ctl, _cmd: &Cmd) -> bool {
    match ctl.conn().get_capabilities() {
        Ok(caps) => {
            ctl.print(&format!("{caps}\n"));
            true
        }
        Err(e) => {
            ctl.error("failed to get capabilities");
            ctl.set_error(e);
            false
        }
    }
}

pub fn cmd_domcapabilities(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let mut vals = Vec::new();
    for o in ["virttype", "emulatorbin", "arch", "machine"] {
        match opt_string(ctl, cmd, o) {
            Ok(v) => vals.push(v),
            Err(()) => return false,
        }
    }
    let r = ctl
        .conn()
        .get_domain_capabilities(vals[1], vals[2], vals[3], vals[0], 0);
    match r {
        Ok(caps) => {
            ctl.print(&format!("{caps}\n"));
            true
        }
        Err(e) => {
            ctl.error("failed to get emulator capabilities");
            ctl.set_error(e);
            false
        }
    }
}

pub fn cmd_nodeinfo(ctl: &mut Ctl, _cmd: &Cmd) -> bool {
    match ctl.conn().node_get_info() {
        Ok(i) => {
            let s = format!(
                "{:<20} {}\n{:<20} {}\n{:<20} {} MHz\n{:<20} {}\n{:<20} {}\n{:<20} {}\n{:<20} {}\n{:<20} {} KiB\n",
                "CPU model:",
                i.model,
                "CPU(s):",
                i.cpus,
                "CPU frequency:",
                i.mhz,
                "CPU socket(s):",
                i.sockets,
                "Core(s) per socket:",
                i.cores,
                "Thread(s) per core:",
                i.threads,
                "NUMA cell(s):",
                i.nodes,
                "Memory size:",
                i.memory
            );
            ctl.print(&s);
            true
        }
        Err(e) => {
            ctl.error("failed to get node information");
            ctl.set_error(e);
            false
        }
    }
}

fn ver(v: u64) -> String {
    format!("{}.{}.{}", v / 1_000_000, (v / 1000) % 1000, v % 1000)
}

pub fn cmd_version(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let lib = ironvirt_driver_lib_version();
    ctl.print(&format!("Compiled against library: libvirt {}\n", ver(lib)));
    ctl.print(&format!("Using library: libvirt {}\n", ver(lib)));
    let conn = ctl.conn().clone();
    let hv_type = match conn.get_type() {
        Ok(t) => t,
        Err(e) => {
            ctl.error("failed to get hypervisor type");
            ctl.set_error(e);
            return false;
        }
    };
    ctl.print(&format!("Using API: {hv_type} {}\n", ver(lib)));
    match conn.get_version() {
        Ok(0) => ctl.print(&format!(
            "Cannot extract running {hv_type} hypervisor version\n"
        )),
        Ok(v) => ctl.print(&format!("Running hypervisor: {hv_type} {}\n", ver(v))),
        Err(e) => {
            ctl.error("failed to get the hypervisor version");
            ctl.set_error(e);
            return false;
        }
    }
    if cmd.has("daemon") {
        match conn.get_lib_version() {
            Ok(v) => ctl.print(&format!("Running against daemon: {}\n", ver(v))),
            Err(e) => {
                ctl.error("failed to get the daemon version");
                ctl.set_error(e);
            }
        }
    }
    true
}

/// The libvirt API version this build implements.
fn ironvirt_driver_lib_version() -> u64 {
    crate::VERSION_STR
        .split('.')
        .map(|p| p.parse::<u64>().unwrap_or(0))
        .fold(0, |acc, p| acc * 1000 + p)
}

pub fn cmd_uri(ctl: &mut Ctl, _cmd: &Cmd) -> bool {
    match ctl.conn().get_uri() {
        Ok(u) => {
            ctl.print(&format!("{u}\n"));
            true
        }
        Err(e) => {
            ctl.error("failed to get URI");
            ctl.set_error(e);
            false
        }
    }
}

pub fn cmd_hostname(ctl: &mut Ctl, _cmd: &Cmd) -> bool {
    match ctl.conn().get_hostname() {
        Ok(h) => {
            ctl.print(&format!("{h}\n"));
            true
        }
        Err(e) => {
            ctl.error("failed to get hostname");
            ctl.set_error(e);
            false
        }
    }
}

pub fn cmd_connect(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let Ok(name) = opt_string(ctl, cmd, "name") else {
        return false;
    };
    let name = name.map(str::to_string);
    let ro = cmd.has("readonly");
    ctl.reconnect(name.as_deref(), ro)
}

pub fn cmd_quit(ctl: &mut Ctl, _cmd: &Cmd) -> bool {
    ctl.imode = false;
    true
}

fn group_help(name: &str, kw: &str, cmds: &[&CmdDef]) -> String {
    let mut s = format!(" {name} (help keyword '{kw}'):\n");
    for c in cmds {
        s.push_str(&format!("    {:<30} {}\n", c.name, c.help));
    }
    s
}

fn command_help(def: &CmdDef) -> String {
    let mut s = format!(
        "  NAME\n    {} - {}\n\n  SYNOPSIS\n    {}",
        def.name, def.help, def.name
    );
    let shortopt = def
        .opts
        .iter()
        .any(|o| o.positional && o.ty != OptType::Bool);
    for o in def.opts {
        let part = match o.ty {
            OptType::Bool => format!("[--{}]", o.name),
            OptType::Int => {
                if o.required {
                    format!("<{}>", o.name)
                } else {
                    format!("[--{} <number>]", o.name)
                }
            }
            OptType::String => format!("[--{} <string>]", o.name),
            OptType::Data => {
                if o.required {
                    format!("<{}>", o.name)
                } else {
                    format!("[<{}>]", o.name)
                }
            }
            OptType::Argv => {
                if shortopt {
                    format!("[[--{}] <string>]...", o.name)
                } else {
                    format!("[<{}>]...", o.name)
                }
            }
        };
        s.push(' ');
        s.push_str(&part);
    }
    s.push('\n');
    if !def.desc.is_empty() {
        s.push_str(&format!("\n  DESCRIPTION\n    {}\n", def.desc));
    }
    if !def.opts.is_empty() {
        s.push_str("\n  OPTIONS\n");
        for o in def.opts {
            let buf = match o.ty {
                OptType::Bool => format!("--{}", o.name),
                OptType::Int => {
                    if o.required {
                        format!("[--{}] <number>", o.name)
                    } else {
                        format!("--{} <number>", o.name)
                    }
                }
                OptType::String => format!("--{} <string>", o.name),
                OptType::Data | OptType::Argv => format!("[--{}] <string>", o.name),
            };
            s.push_str(&format!("    {buf:<15}  {}\n", o.help));
        }
    }
    s.push('\n');
    s
}

pub fn cmd_help(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let name = match cmd.value("command") {
        None | Some("") => {
            let mut s = String::from("Grouped commands:\n\n");
            for (g, kw, cmds) in defs::GROUPS {
                s.push_str(&group_help(g, kw, cmds));
                s.push('\n');
            }
            ctl.print(&s);
            return true;
        }
        Some(n) => n,
    };
    if let Some(def) = defs::find_command(name) {
        ctl.print(&command_help(def));
        return true;
    }
    if let Some((g, kw, cmds)) = defs::GROUPS
        .iter()
        .find(|(g, kw, _)| *g == name || *kw == name)
    {
        ctl.print(&group_help(g, kw, cmds));
        return true;
    }
    ctl.error(&format!("command or command group '{name}' doesn't exist"));
    false
}

/// Ends a command that performs one action: prints `done` when it
/// succeeded, else keeps the library's error and prints `failed` before it,
/// as virsh does.
fn finish(ctl: &mut Ctl, result: ironvirt::Result<()>, done: String, failed: String) -> bool {
    match result {
        Ok(()) => {
            ctl.print_extra(&done);
            true
        }
        Err(e) => {
            ctl.set_error(e);
            ctl.error(&failed);
            false
        }
    }
}

pub fn cmd_domxml_to_native(ctl: &mut Ctl, cmd: &Cmd) -> bool {
    let Ok(Some(format)) = opt_string(ctl, cmd, "format") else {
        return false;
    };
    let (Ok(domain), Ok(file)) = (opt_string(ctl, cmd, "domain"), opt_string(ctl, cmd, "xml"))
    else {
        return false;
    };
    let xml = match (domain, file) {
        (Some(_), Some(_)) => {
            ctl.error("Options --domain and --xml are mutually exclusive");
            return false;
        }
        (None, None) => {
            ctl.error("need either domain or domain XML");
            return false;
        }
        (None, Some(file)) => match read_file(ctl, file) {
            Some(x) => x,
            None => return false,
        },
        (Some(_), None) => {
            let Some((dom, _)) = lookup_default(ctl, cmd) else {
                return false;
            };
            match dom.get_xml_desc(0) {
                Ok(x) => x,
                Err(e) => {
                    ctl.set_error(e);
                    return false;
                }
            }
        }
    };
    let conn = ctl.conn().clone();
    match conn.domain_xml_to_native(format, &xml, 0) {
        Ok(native) => {
            // virsh prints it as it is; the newline after it is the one
            // that ends every command's output.
            ctl.print(&native);
            true
        }
        Err(e) => {
            ctl.set_error(e);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironvirt::reason;

    #[test]
    fn c_integers() {
        assert_eq!(parse_c_int("1"), Some(1));
        assert_eq!(parse_c_int(" +7"), Some(7));
        assert_eq!(parse_c_int("-1"), Some(-1));
        assert_eq!(parse_c_int("1a"), None);
        assert_eq!(parse_c_int(""), None);
        assert_eq!(parse_c_int("99999999999"), None);
    }

    #[test]
    fn states_and_reasons() {
        assert_eq!(state_str(5), "shut off");
        assert_eq!(reason_str(5, reason::shutoff::DESTROYED), "destroyed");
        assert_eq!(reason_str(1, 0), "unknown");
        assert_eq!(reason_str(3, 1), "user");
        assert_eq!(reason_str(1, 99), "unknown");
    }

    #[test]
    fn help_layout() {
        let h = command_help(&defs::DOMSTATE);
        assert_eq!(
            h,
            "  NAME\n    domstate - domain state\n\n  SYNOPSIS\n    domstate <domain> [--reason]\n\n  \
             DESCRIPTION\n    Returns state about a domain.\n\n  OPTIONS\n    [--domain] <string>  domain name, id or uuid\n    \
             --reason         also print reason for the state\n\n"
        );
    }
}
