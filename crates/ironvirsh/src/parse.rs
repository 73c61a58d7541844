//! virsh's command-line grammar: commands separated by `;` (or newlines),
//! `--opt value`, `--opt=value`, boolean flags, positional data in the order
//! the command declares it, `--` ending option parsing, quoting and
//! backslash escapes like a shell, `#` comments.

use crate::defs::{find_command, CmdDef, OptDef, OptType};

/// A parsed command: its definition and the options given.
#[derive(Debug)]
pub struct Cmd {
    /// The command's definition.
    pub def: &'static CmdDef,
    /// (option, value) in the order given; booleans have no value.
    pub opts: Vec<(&'static OptDef, Option<String>)>,
}

impl Cmd {
    /// Whether a boolean (or any) option was given.
    pub fn has(&self, name: &str) -> bool {
        self.opts.iter().any(|(o, _)| o.name == name)
    }

    /// The value of an option, when given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.opts
            .iter()
            .find(|(o, _)| o.name == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// A token of the input.
enum Tok {
    Arg(String),
    /// End of one command (`;` or newline).
    SubEnd,
    End,
}

/// A source of tokens: a command string or an argv list.
pub enum Source<'a> {
    /// One string holding commands, split like a shell would.
    Text { s: &'a [u8], pos: usize },
    /// Already split arguments (one command).
    Argv { args: &'a [String], pos: usize },
}

impl<'a> Source<'a> {
    /// Tokens of a command string.
    pub fn text(s: &'a str) -> Source<'a> {
        Source::Text {
            s: s.as_bytes(),
            pos: 0,
        }
    }

    /// Tokens of an argument vector.
    pub fn argv(args: &'a [String]) -> Source<'a> {
        Source::Argv { args, pos: 0 }
    }

    fn next(&mut self) -> Result<Tok, String> {
        match self {
            Source::Argv { args, pos } => {
                if *pos >= args.len() {
                    return Ok(Tok::End);
                }
                *pos += 1;
                Ok(Tok::Arg(args[*pos - 1].clone()))
            }
            Source::Text { s, pos } => {
                let s: &[u8] = s;
                let mut p = *pos;
                loop {
                    while p < s.len()
                        && (s[p] == b' '
                            || s[p] == b'\t'
                            || (s[p] == b'\\' && s.get(p + 1) == Some(&b'\n')))
                    {
                        p += if s[p] == b'\\' { 2 } else { 1 };
                    }
                    if p < s.len() && s[p] == b'#' {
                        while p < s.len() && s[p] != b'\n' {
                            p += 1;
                        }
                        continue;
                    }
                    break;
                }
                if p >= s.len() {
                    *pos = p;
                    return Ok(Tok::End);
                }
                if s[p] == b';' || s[p] == b'\n' {
                    *pos = p + 1;
                    return Ok(Tok::SubEnd);
                }
                let mut out: Vec<u8> = Vec::new();
                let mut sq = false;
                let mut dq = false;
                while p < s.len() {
                    let c = s[p];
                    if !sq && !dq && (c == b' ' || c == b'\t' || c == b';' || c == b'\n') {
                        break;
                    }
                    if !dq && c == b'\'' {
                        sq = !sq;
                        p += 1;
                        continue;
                    } else if !sq && c == b'\\' {
                        p += 1;
                        if p >= s.len() {
                            return Err("dangling \\".into());
                        }
                    } else if !sq && c == b'"' {
                        dq = !dq;
                        p += 1;
                        continue;
                    }
                    out.push(s[p]);
                    p += 1;
                }
                if dq {
                    return Err("missing \"".into());
                }
                *pos = p;
                Ok(Tok::Arg(String::from_utf8_lossy(&out).into_owned()))
            }
        }
    }
}

fn starts_option(tk: &str) -> bool {
    let b = tk.as_bytes();
    b.len() > 2 && b[0] == b'-' && b[1] == b'-' && b[2].is_ascii_alphanumeric()
}

/// Parses every command of `src`; the first error (already worded as virsh
/// words it) stops parsing and nothing runs.
pub fn parse(mut src: Source<'_>) -> Result<Vec<Cmd>, String> {
    let mut cmds = Vec::new();
    loop {
        let mut def: Option<&'static CmdDef> = None;
        let mut opts: Vec<(&'static OptDef, Option<String>)> = Vec::new();
        let mut seen: Vec<&'static str> = Vec::new();
        // Positional options still waiting for data, in declared order.
        let mut need: Vec<&'static OptDef> = Vec::new();
        let mut data_only = false;
        let tk = loop {
            let tk = src.next()?;
            let arg = match tk {
                Tok::Arg(a) => a,
                other => break other,
            };
            let Some(cd) = def else {
                let Some(found) = find_command(&arg) else {
                    return Err(format!("unknown command: '{arg}'"));
                };
                def = Some(found);
                need = found.opts.iter().filter(|o| o.positional).collect();
                continue;
            };
            let is_help = cd.name == "help";
            if !data_only && starts_option(&arg) {
                let (name, inline) = match arg[2..].split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (arg[2..].to_string(), None),
                };
                let opt: &'static OptDef = if name == "help" {
                    &crate::defs::HELP_OPT
                } else {
                    match cd.opts.iter().find(|o| o.name == name) {
                        Some(o) => o,
                        None => {
                            if is_help {
                                continue;
                            }
                            return Err(format!(
                                "command '{}' doesn't support option --{}",
                                cd.name, name
                            ));
                        }
                    }
                };
                if seen.contains(&opt.name) && opt.ty != OptType::Argv {
                    return Err(format!("option --{name} already seen"));
                }
                seen.push(opt.name);
                if opt.ty == OptType::Bool {
                    if inline.is_some() {
                        return Err(format!("invalid '=' after option --{}", opt.name));
                    }
                    opts.push((opt, None));
                } else {
                    let value = match inline {
                        Some(v) => v,
                        None => match src.next()? {
                            Tok::Arg(v) => v,
                            _ => {
                                let kind = if opt.ty == OptType::Int {
                                    "number"
                                } else {
                                    "string"
                                };
                                return Err(format!("expected syntax: --{} <{}>", opt.name, kind));
                            }
                        },
                    };
                    need.retain(|o| o.name != opt.name);
                    opts.push((opt, Some(value)));
                }
                continue;
            }
            if !data_only && arg == "--" {
                data_only = true;
                continue;
            }
            if need.is_empty() {
                if is_help {
                    continue;
                }
                return Err(format!("unexpected data '{arg}'"));
            }
            let opt = need.remove(0);
            seen.push(opt.name);
            opts.push((opt, Some(arg)));
        };
        if let Some(cd) = def {
            let cmd = if opts.iter().any(|(o, _)| o.name == "help") {
                let help = find_command("help").ok_or("internal error: no help command")?;
                Cmd {
                    def: help,
                    opts: vec![(&help.opts[0], Some(cd.name.to_string()))],
                }
            } else {
                for o in cd.opts.iter().filter(|o| o.required) {
                    if !opts.iter().any(|(g, _)| g.name == o.name) {
                        return Err(if o.ty == OptType::Data {
                            format!("command '{}' requires <{}> option", cd.name, o.name)
                        } else {
                            format!("command '{}' requires --{} option", cd.name, o.name)
                        });
                    }
                }
                Cmd { def: cd, opts }
            };
            cmds.push(cmd);
        }
        if matches!(tk, Tok::End) {
            break;
        }
    }
    Ok(cmds)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = Vec<(String, Vec<(String, Option<String>)>)>;

    fn p(s: &str) -> Result<Parsed, String> {
        Ok(parse(Source::text(s))?
            .into_iter()
            .map(|c| {
                (
                    c.def.name.to_string(),
                    c.opts
                        .into_iter()
                        .map(|(o, v)| (o.name.to_string(), v))
                        .collect(),
                )
            })
            .collect())
    }

    #[test]
    fn options_and_positionals() {
        let r = p("dominfo --domain=test").unwrap();
        assert_eq!(r[0].1, [("domain".to_string(), Some("test".to_string()))]);
        let r = p("domstate --reason test").unwrap();
        assert_eq!(r[0].1.len(), 2);
        let r = p("list;list # comment\nuri").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(
            p("dominfo \"te\"st").unwrap()[0].1[0].1.as_deref(),
            Some("test")
        );
        assert_eq!(
            p("dominfo 'te st'").unwrap()[0].1[0].1.as_deref(),
            Some("te st")
        );
        assert_eq!(
            p("dominfo te\\st").unwrap()[0].1[0].1.as_deref(),
            Some("test")
        );
        assert_eq!(
            p("dominfo -- --all").unwrap()[0].1[0].1.as_deref(),
            Some("--all")
        );
        assert_eq!(p("   ").unwrap().len(), 0);
        assert_eq!(p("list --help").unwrap()[0].0, "help");
    }

    #[test]
    fn errors_are_worded_like_virsh() {
        assert_eq!(p("foo").unwrap_err(), "unknown command: 'foo'");
        assert_eq!(p("list ; foo").unwrap_err(), "unknown command: 'foo'");
        assert_eq!(
            p("start").unwrap_err(),
            "command 'start' requires <domain> option"
        );
        assert_eq!(
            p("list --foo").unwrap_err(),
            "command 'list' doesn't support option --foo"
        );
        assert_eq!(
            p("list --al").unwrap_err(),
            "command 'list' doesn't support option --al"
        );
        assert_eq!(
            p("list --all=1").unwrap_err(),
            "invalid '=' after option --all"
        );
        assert_eq!(
            p("dominfo test extra").unwrap_err(),
            "unexpected data 'extra'"
        );
        assert_eq!(
            p("dominfo --domain").unwrap_err(),
            "expected syntax: --domain <string>"
        );
        assert_eq!(
            p("domstate test --reason --reason").unwrap_err(),
            "option --reason already seen"
        );
        assert_eq!(p("dominfo \"test").unwrap_err(), "missing \"");
        assert_eq!(p("dominfo test\\").unwrap_err(), "dangling \\");
        assert_eq!(p("list -- --all").unwrap_err(), "unexpected data '--all'");
        assert!(p("help list extra --foo").is_ok());
    }

    #[test]
    fn argv_mode_keeps_semicolons_as_data() {
        let args: Vec<String> = ["list", ";", "list"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            parse(Source::argv(&args)).unwrap_err(),
            "unexpected data ';'"
        );
    }
}
