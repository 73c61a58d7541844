//! ironvirsh: a virsh-compatible command line over the ironvirt library.
//!
//! Global options, command grammar, output layout, error lines and exit
//! codes follow virsh 9.0: commands come from the arguments (one argument
//! is split like a shell command string with `;` between commands, several
//! arguments form one command), or from standard input / an interactive
//! prompt when none are given.

mod commands;
mod defs;
mod parse;
mod table;

use ironvirt::{Connect, Error};
use std::io::{BufRead, IsTerminal, Write};

/// The libvirt release whose virsh ironvirsh mirrors.
pub const VERSION_STR: &str = "9.0.0";

/// Shell state: the connection, global flags and the last library error.
pub struct Ctl {
    /// The open connection.
    pub conn: Option<Connect>,
    /// The URI to (re)connect to; empty for the default.
    pub uri: String,
    /// Open connections read-only.
    pub readonly: bool,
    /// `-q`: suppress informational output.
    pub quiet: bool,
    /// `-t`: print how long each command took.
    pub timing: bool,
    /// The library error of the failing call, reported after the command.
    pub last_error: Option<Error>,
    /// Whether the command loop goes on (cleared by `quit`).
    pub imode: bool,
    /// Program name for messages.
    pub progname: String,
}

impl Ctl {
    /// Prints to standard output (virsh's `vshPrint`).
    pub fn print(&self, s: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(s.as_bytes());
        let _ = out.flush();
    }

    /// Prints unless quiet (virsh's `vshPrintExtra`).
    pub fn print_extra(&self, s: &str) {
        if !self.quiet {
            self.print(s);
        }
    }

    /// Prints `error: msg` on standard error (virsh's `vshError`).
    pub fn error(&self, msg: &str) {
        let _ = std::io::stdout().flush();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "error: {msg}");
    }

    /// Remembers a library error to report when the command ends.
    pub fn set_error(&mut self, e: Error) {
        self.last_error = Some(e);
    }

    /// Reports the remembered library error (virsh's `vshReportError`).
    pub fn report_error(&mut self) {
        if let Some(e) = self.last_error.take() {
            self.error(&e.message);
        }
    }

    /// (Re)opens the connection to `uri` (the current one when `None`).
    pub fn reconnect(&mut self, uri: Option<&str>, readonly: bool) -> bool {
        self.conn = None;
        if let Some(u) = uri {
            self.uri = u.to_string();
        }
        self.readonly = readonly;
        let r = if readonly {
            Connect::open_read_only(&self.uri)
        } else {
            Connect::open(&self.uri)
        };
        match r {
            Ok(c) => {
                self.conn = Some(c);
                true
            }
            Err(e) => {
                self.error("failed to connect to the hypervisor");
                self.set_error(e);
                false
            }
        }
    }

    /// The connection; every command that needs one runs only after this
    /// succeeded.
    pub fn conn(&self) -> &Connect {
        match &self.conn {
            Some(c) => c,
            None => unreachable_conn(),
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_conn() -> ! {
    // Commands needing a connection run only when one is open.
    panic!("command ran without a connection")
}

/// Runs parsed commands; the result of the last one decides.
fn run(ctl: &mut Ctl, cmds: &[parse::Cmd]) -> bool {
    let mut ret = true;
    for cmd in cmds {
        let start = std::time::Instant::now();
        ret = if cmd.def.no_connect || ensure_conn(ctl) {
            (cmd.def.handler)(ctl, cmd)
        } else {
            false
        };
        if !ret {
            ctl.report_error();
        }
        ctl.last_error = None;
        if cmd.def.name == "quit" || cmd.def.name == "exit" {
            return ret;
        }
        if ctl.timing {
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            ctl.print(&format!("\n(Time: {ms:.3} ms)\n\n"));
        } else {
            ctl.print_extra("\n");
        }
    }
    ret
}

fn ensure_conn(ctl: &mut Ctl) -> bool {
    if ctl.conn.is_none() {
        let ro = ctl.readonly;
        ctl.reconnect(None, ro);
        ctl.last_error = None;
    }
    if ctl.conn.is_none() {
        ctl.error("no valid connection");
        return false;
    }
    true
}

fn usage(progname: &str) -> String {
    let mut s = format!(
        "\n{p} [options]... [<command_string>]\n{p} [options]... <command> [args...]\n\n  options:\n",
        p = progname
    );
    s.push_str(
        "    -c | --connect=URI      hypervisor connection URI\n\
         \x20   -d | --debug=NUM        debug level [0-4]\n\
         \x20   -e | --escape <char>    set escape sequence for console\n\
         \x20   -h | --help             this help\n\
         \x20   -k | --keepalive-interval=NUM\n\
         \x20                           keepalive interval in seconds, 0 for disable\n\
         \x20   -K | --keepalive-count=NUM\n\
         \x20                           number of possible missed keepalive messages\n\
         \x20   -l | --log=FILE         output logging to file\n\
         \x20   -q | --quiet            quiet mode\n\
         \x20   -r | --readonly         connect readonly\n\
         \x20   -t | --timing           print timing information\n\
         \x20   -v                      short version\n\
         \x20   -V                      long version\n\
         \x20        --version[=TYPE]   version, TYPE is short or long (default short)\n\
         \x20 commands (non interactive mode):\n\n",
    );
    for (name, kw, cmds) in defs::GROUPS {
        s.push_str(&format!(" {name} (help keyword '{kw}')\n"));
        for c in cmds.iter() {
            s.push_str(&format!("    {:<30} {}\n", c.name, c.help));
        }
        s.push('\n');
    }
    s.push_str(
        "\n  (specify help <group> for details about the commands in the group)\n\n  \
         (specify help <command> for details about the command)\n\n",
    );
    s
}

fn long_version(progname: &str) -> String {
    format!(
        "{progname} command line tool of ironvirt (libvirt {VERSION_STR} API)\n\n\
         Compiled with support for:\n Hypervisors: Test Remote\n"
    )
}

/// What the global options asked for.
enum Start {
    Run(Vec<String>),
    Exit(i32),
}

/// Parses global options like virsh's getopt string `+:c:d:e:hk:K:l:qrtvV`:
/// option parsing stops at the first non-option.
fn parse_global(ctl: &mut Ctl, args: &[String]) -> Start {
    let with_arg = |c: char| "cdekKl".contains(c);
    let long_name = |c: char| match c {
        'c' => "connect",
        'd' => "debug",
        'e' => "escape",
        'k' => "keepalive-interval",
        'K' => "keepalive-count",
        'l' => "log",
        _ => "",
    };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let short = match name {
                "connect" => 'c',
                "debug" => 'd',
                "escape" => 'e',
                "help" => 'h',
                "keepalive-interval" => 'k',
                "keepalive-count" => 'K',
                "log" => 'l',
                "quiet" => 'q',
                "readonly" => 'r',
                "timing" => 't',
                "version" => {
                    match inline.as_deref() {
                        None | Some("short") => ctl.print(&format!("{VERSION_STR}\n")),
                        Some("long") => ctl.print(&long_version(&ctl.progname)),
                        Some(other) => {
                            ctl.error(&format!("unknown version type '{other}'"));
                            return Start::Exit(1);
                        }
                    }
                    return Start::Exit(0);
                }
                _ => {
                    ctl.error(&format!("unsupported option '{a}'. See --help."));
                    return Start::Exit(1);
                }
            };
            let value = if with_arg(short) {
                match inline {
                    Some(v) => Some(v),
                    None => {
                        i += 1;
                        match args.get(i) {
                            Some(v) => Some(v.clone()),
                            None => {
                                ctl.error(&format!(
                                    "option '-{short}'/'--{}' requires an argument",
                                    long_name(short)
                                ));
                                return Start::Exit(1);
                            }
                        }
                    }
                }
            } else {
                if inline.is_some() {
                    ctl.error(&format!("unsupported option '{a}'. See --help."));
                    return Start::Exit(1);
                }
                None
            };
            if let Some(code) = apply_opt(ctl, short, value) {
                return Start::Exit(code);
            }
            i += 1;
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                if !"cdehkKlqrtvV".contains(c) {
                    ctl.error(&format!("unsupported option '-{c}'. See --help."));
                    return Start::Exit(1);
                }
                let value = if with_arg(c) {
                    let rest: String = chars[j + 1..].iter().collect();
                    j = chars.len();
                    if !rest.is_empty() {
                        Some(rest)
                    } else {
                        i += 1;
                        match args.get(i) {
                            Some(v) => Some(v.clone()),
                            None => {
                                ctl.error(&format!(
                                    "option '-{c}'/'--{}' requires an argument",
                                    long_name(c)
                                ));
                                return Start::Exit(1);
                            }
                        }
                    }
                } else {
                    j += 1;
                    None
                };
                if let Some(code) = apply_opt(ctl, c, value) {
                    return Start::Exit(code);
                }
            }
            i += 1;
            continue;
        }
        break;
    }
    Start::Run(args[i..].to_vec())
}

/// Applies one global option; `Some(code)` when the program should exit.
fn apply_opt(ctl: &mut Ctl, c: char, value: Option<String>) -> Option<i32> {
    let v = value.unwrap_or_default();
    match c {
        'c' => ctl.uri = v,
        'd' => match v.trim().parse::<i32>() {
            Ok(0..=4) => {}
            Ok(n) => ctl.error(&format!("ignoring debug level {n} out of range [0-4]")),
            Err(_) => {
                ctl.error("option -d takes a numeric argument");
                return Some(1);
            }
        },
        'e' | 'l' => {}
        'k' => match v.parse::<i32>() {
            Ok(n) if n >= 0 => {}
            _ => {
                ctl.error("Invalid value for option -k");
                return Some(1);
            }
        },
        'K' => match v.parse::<i32>() {
            Ok(n) if n >= 0 => {}
            _ => {
                ctl.error("option -K requires a positive integer argument");
                return Some(1);
            }
        },
        'h' => {
            ctl.print(&usage(&ctl.progname));
            return Some(0);
        }
        'q' => ctl.quiet = true,
        'r' => ctl.readonly = true,
        't' => ctl.timing = true,
        'v' => {
            ctl.print(&format!("{VERSION_STR}\n"));
            return Some(0);
        }
        'V' => {
            ctl.print(&long_version(&ctl.progname));
            return Some(0);
        }
        _ => {}
    }
    None
}

/// Reads commands line by line with a prompt, as virsh's interactive mode.
fn interactive(ctl: &mut Ctl) {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    if !ctl.quiet {
        ctl.print(&format!(
            "Welcome to {}, the virtualization interactive terminal.\n\n\
             Type:  'help' for help with commands\n       'quit' to quit\n\n",
            ctl.progname
        ));
    }
    let mut lines = stdin.lock();
    while ctl.imode {
        let prompt = if ctl.readonly { "virsh > " } else { "virsh # " };
        ctl.print(prompt);
        let mut line = String::new();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = line.trim_end_matches(['\n', '\r']).to_string();
        if !tty {
            // A line editor echoes what it read when input is not a terminal.
            ctl.print(&format!("{line}\n"));
        }
        if line.is_empty() {
            continue;
        }
        match parse::parse(parse::Source::text(&line)) {
            Ok(cmds) => {
                run(ctl, &cmds);
            }
            Err(msg) => ctl.error(&msg),
        }
    }
    // The line break after the last prompt.
    ctl.print("\n");
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let progname = argv
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_else(|| "ironvirsh".into());
    let mut ctl = Ctl {
        conn: None,
        uri: std::env::var("VIRSH_DEFAULT_CONNECT_URI").unwrap_or_default(),
        readonly: false,
        quiet: false,
        timing: false,
        last_error: None,
        imode: true,
        progname,
    };
    let rest = match parse_global(&mut ctl, &argv[1..]) {
        Start::Run(r) => r,
        Start::Exit(code) => std::process::exit(code),
    };
    // Commands are parsed before connecting, as virsh does.
    let cmds = if rest.is_empty() {
        None
    } else {
        ctl.imode = false;
        let parsed = if rest.len() == 1 {
            if rest[0].is_empty() {
                std::process::exit(1);
            }
            parse::parse(parse::Source::text(&rest[0]))
        } else {
            parse::parse(parse::Source::argv(&rest))
        };
        match parsed {
            Ok(c) => Some(c),
            Err(msg) => {
                ctl.error(&msg);
                std::process::exit(1);
            }
        }
    };
    let ro = ctl.readonly;
    if !ctl.reconnect(None, ro) {
        ctl.report_error();
        std::process::exit(1);
    }
    let ok = match cmds {
        Some(cmds) => run(&mut ctl, &cmds),
        None => {
            interactive(&mut ctl);
            true
        }
    };
    drop(ctl);
    std::process::exit(if ok { 0 } else { 1 });
}
