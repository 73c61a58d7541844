//! Differential tests: the same command sessions through the real `virsh`
//! (libvirt 9.0, whose test driver runs in-process) and through ironvirsh,
//! comparing standard output, standard error and the exit code.
//!
//! `test:///default` state lives for one process, so every session is one
//! invocation (`;`-separated commands, or commands on standard input).
//!
//! Differences allowed, each normalised before comparing:
//! * `CPU time:` in `dominfo`: the test driver reports the wall clock, which
//!   moves between the two runs.
//! * The wording of XML well-formedness errors: libvirt quotes libxml2's
//!   messages and context lines; ironvirt's parser words them itself. Only
//!   the lines after `error: (domain_definition):` differ; the error lines
//!   before them must match.
//! * The interactive banner names the program (`Welcome to virsh` /
//!   `Welcome to ironvirsh`), as virsh itself does: stdin sessions use `-q`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const VIRSH: &str = "/usr/bin/virsh";
const IRONVIRSH: &str = env!("CARGO_BIN_EXE_ironvirsh");
const TEST_UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    stdout: String,
    stderr: String,
    code: i32,
}

fn virsh_path() -> &'static str {
    assert!(
        Path::new(VIRSH).exists(),
        "{VIRSH} is missing: these tests compare against the real virsh (Debian's libvirt-clients); \
         install it (apt-get install libvirt-clients) and run again"
    );
    VIRSH
}

fn run(bin: &str, args: &[&str], stdin: Option<&str>, cwd: &Path) -> Outcome {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .current_dir(cwd)
        .env("LC_ALL", "C")
        .env_remove("LIBVIRT_DEFAULT_URI")
        .env_remove("VIRSH_DEFAULT_CONNECT_URI")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    if let Some(input) = stdin {
        let mut si = child.stdin.take().expect("stdin");
        si.write_all(input.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    Outcome {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Applies the allowed differences listed at the top of this file.
fn normalise(o: &Outcome) -> Outcome {
    let stdout = o
        .stdout
        .lines()
        .map(|l| {
            if l.starts_with("CPU time:") {
                "CPU time:       <now>".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut stderr = Vec::new();
    let mut in_xml_error = false;
    for l in o.stderr.lines() {
        // libxml2's "I/O warning" lines have no counterpart.
        if l.starts_with("I/O warning :") {
            continue;
        }
        if l.starts_with("error: (domain_definition):") {
            stderr.push("error: <XML parse error>".to_string());
            in_xml_error = true;
            continue;
        }
        if in_xml_error && !l.starts_with("error: ") {
            continue;
        }
        in_xml_error = false;
        stderr.push(l.to_string());
    }
    Outcome {
        stdout,
        stderr: stderr.join("\n"),
        code: o.code,
    }
}

fn show_diff(what: &str, a: &str, b: &str) -> String {
    let mut s = format!("--- {what}: virsh\n+++ {what}: ironvirsh\n");
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    for i in 0..la.len().max(lb.len()) {
        match (la.get(i), lb.get(i)) {
            (Some(x), Some(y)) if x == y => s.push_str(&format!("  {x}\n")),
            (x, y) => {
                if let Some(x) = x {
                    s.push_str(&format!("- {x}\n"));
                }
                if let Some(y) = y {
                    s.push_str(&format!("+ {y}\n"));
                }
            }
        }
    }
    s
}

/// Runs `args` (and `stdin`) through both programs and compares; returns
/// what ironvirsh printed.
fn compare(args: &[&str], stdin: Option<&str>, cwd: &Path) -> Outcome {
    let v = run(virsh_path(), args, stdin, cwd);
    let i = run(IRONVIRSH, args, stdin, cwd);
    let (nv, ni) = (normalise(&v), normalise(&i));
    if nv != ni {
        let mut msg = format!("ironvirsh differs from virsh for {args:?}");
        if let Some(s) = stdin {
            msg.push_str(&format!(" with stdin {s:?}"));
        }
        msg.push('\n');
        if nv.code != ni.code {
            msg.push_str(&format!(
                "exit code: virsh {} ironvirsh {}\n",
                nv.code, ni.code
            ));
        }
        if nv.stdout != ni.stdout {
            msg.push_str(&show_diff("stdout", &nv.stdout, &ni.stdout));
        }
        if nv.stderr != ni.stderr {
            msg.push_str(&show_diff("stderr", &nv.stderr, &ni.stderr));
        }
        panic!("{msg}");
    }
    i
}

/// A session on `test:///default`: one string of `;`-separated commands.
fn session(cwd: &Path, cmds: &[&str]) {
    let joined = cmds.join("; ");
    compare(&["-c", "test:///default", &joined], None, cwd);
}

const DOM_A: &str = "<domain type='test'>
  <name>a</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <memory unit='MiB'>1</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
  <devices>
    <interface type='network'><mac address='52:54:00:11:22:33'/><source network='default'/></interface>
    <interface type='user'><mac address='52:54:00:11:22:34'/></interface>
  </devices>
</domain>
";

const DOM_T: &str = "<domain type='test'>
  <title>A transient one</title>
  <name>t</name>
  <uuid>22222222-2222-3333-4444-555555555555</uuid>
  <memory>2048</memory>
  <currentMemory>1024</currentMemory>
  <vcpu current='1'>2</vcpu>
  <os><type>hvm</type></os>
  <on_poweroff>restart</on_poweroff>
  <on_reboot>destroy</on_reboot>
</domain>
";

/// A directory with the XML files the sessions use.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    w("a.xml", DOM_A);
    w(
        "a2.xml",
        &DOM_A.replace(
            "<memory unit='MiB'>1</memory>",
            "<memory unit='MiB'>2</memory>",
        ),
    );
    w("t.xml", DOM_T);
    w("bad.xml", "<domain\n");
    w("foo.xml", "<foo/>\n");
    w("noname.xml", "<domain type='test'></domain>\n");
    w("noos.xml", "<domain type='test'><name>x</name></domain>\n");
    w("slash.xml", "<domain type='test'><name>x/y</name><memory>1024</memory><os><type>hvm</type></os></domain>\n");
    w(
        "other-uuid.xml",
        &DOM_A.replace(
            "11111111-2222-3333-4444-555555555555",
            "99999999-2222-3333-4444-555555555555",
        ),
    );
    w(
        "other-name.xml",
        &DOM_A.replace("<name>a</name>", "<name>b</name>"),
    );
    dir
}

#[test]
fn listing_variants() {
    let d = workdir();
    session(
        d.path(),
        &[
            "list",
            "list --all",
            "list --inactive",
            "list --name",
            "list --uuid",
            "list --id",
            "list --all --name --uuid --id",
            "list --title",
            "list --table --title",
            "define a.xml",
            "create t.xml",
            "list --all",
            "list --all --title",
            "list --inactive",
            "list --all --name",
            "list --all --id",
            "list --all --uuid --name",
            "list --transient",
            "list --all --persistent",
            "list --state-running",
            "list --state-paused",
            "list --state-shutoff",
            "list --all --state-other",
            "list --all --autostart",
            "list --all --no-autostart",
            "list --all --with-managed-save",
            "list --all --without-managed-save",
            "list --all --with-snapshot",
            "list --all --without-snapshot",
            "list --all --with-checkpoint",
            "list --all --without-checkpoint",
            "list --managed-save --all",
            "suspend t",
            "list --state-paused",
            "list --all --state-running --state-paused",
            "list --table --name",
            "list --table --uuid",
            "list --table --id",
        ],
    );
}

#[test]
fn default_domain_queries() {
    let d = workdir();
    session(
        d.path(),
        &[
            "dominfo test",
            "dominfo 1",
            &format!("dominfo {TEST_UUID}"),
            "domstate test",
            "domstate test --reason",
            "domstate --reason 1",
            "domid test",
            &format!("domid {TEST_UUID}"),
            "domid 1",
            "domname 1",
            &format!("domname {TEST_UUID}"),
            "domname test",
            "domuuid test",
            "domuuid 1",
            &format!("domuuid {TEST_UUID}"),
            "dumpxml test",
            "dumpxml --inactive test",
            "dumpxml --security-info test",
            "dumpxml --domain=test --inactive",
        ],
    );
}

#[test]
fn define_start_and_state_machine() {
    let d = workdir();
    session(
        d.path(),
        &[
            "define a.xml",
            "dumpxml a",
            "dumpxml --inactive a",
            "dominfo a",
            "domstate a --reason",
            "domid a",
            "start a",
            "start a",
            "dumpxml a",
            "define a2.xml",
            "dumpxml a",
            "dumpxml --inactive a",
            "dominfo a",
            "suspend a",
            "domstate a --reason",
            "suspend a",
            "resume a",
            "domstate a --reason",
            "resume a",
            "shutdown a",
            "domstate a --reason",
            "dumpxml a",
            "shutdown a",
            "destroy a",
            "reboot a",
            "suspend a",
            "resume a",
            "start a",
            "reboot a",
            "domstate a --reason",
            "destroy a",
            "domstate a --reason",
            "start 3",
            "undefine a",
            "list --all",
            "dominfo a",
        ],
    );
}

#[test]
fn transient_domains_and_lifecycle_actions() {
    let d = workdir();
    session(
        d.path(),
        &[
            "create t.xml",
            "create t.xml",
            "list --all --transient",
            "dominfo t",
            "dumpxml t",
            "shutdown t",
            "domstate t --reason",
            "reboot t",
            "list --all",
            "create t.xml",
            "undefine t",
            "dominfo t",
            "destroy t",
            "list --all",
            "create t.xml --paused",
            "create t.xml --autodestroy",
            "define a.xml",
            "create a.xml",
            "domstate a --reason",
            "dumpxml --inactive a",
            "destroy a",
            "dominfo a",
        ],
    );
}

#[test]
fn undefine_running_persistent_domain_makes_it_transient() {
    let d = workdir();
    session(
        d.path(),
        &[
            "undefine test",
            "dominfo test",
            "list --all --persistent",
            "list --all --transient",
            "undefine test",
            "destroy test",
            "list --all",
            "dominfo test",
        ],
    );
    session(
        d.path(),
        &[
            "undefine test --nvram",
            "undefine test --managed-save",
            "list --all",
        ],
    );
}

#[test]
fn autostart() {
    let d = workdir();
    session(
        d.path(),
        &[
            "autostart test",
            "dominfo test",
            "list --autostart",
            "list --no-autostart",
            "autostart --disable test",
            "list --no-autostart",
            "autostart 1",
            &format!("autostart --disable {TEST_UUID}"),
            "autostart nosuch",
            "create t.xml",
            "autostart t",
            "dominfo t",
        ],
    );
}

#[test]
fn host_commands() {
    let d = workdir();
    session(
        d.path(),
        &[
            "capabilities",
            "nodeinfo",
            "version",
            "version --daemon",
            "uri",
            "hostname",
            "domcapabilities",
        ],
    );
    session(d.path(), &["domcapabilities --virttype kvm --arch i686"]);
}

#[test]
fn runtime_errors() {
    let d = workdir();
    session(
        d.path(),
        &[
            "dominfo nosuch",
            "domstate nosuch",
            "start nosuch",
            "start 1",
            "start test",
            "define /nonexistent/file.xml",
            "define bad.xml",
            "create bad.xml",
            "define foo.xml",
            "define noname.xml",
            "define noos.xml",
            "define slash.xml",
            "define a.xml",
            "define other-uuid.xml",
            "define other-name.xml",
            "domname test",
            "domid 1",
            "domuuid nosuch",
            "suspend nosuch",
            "shutdown test --mode bogus",
            "shutdown test --mode acpi",
            "reboot test --mode acpi,agent",
            "destroy test --remove-logs",
            "destroy test --graceful",
            "start test --force-boot",
            "start test --paused",
            "undefine test --storage vda",
            "list --table --name",
            "dominfo ''",
            "dominfo --domain=",
            "help nosuch",
            "uri",
        ],
    );
}

#[test]
fn parse_errors_stop_before_anything_runs() {
    let d = workdir();
    for s in [
        "foo",
        "start",
        "dominfo",
        "list --foo",
        "list --al",
        "dominfo test extra",
        "dumpxml test extra",
        "list --all --all",
        "list --all=1",
        "dominfo --domain",
        "list ; foo",
        "foo; list",
        "dominfo \"test",
        "dominfo test\\",
        "list -- --all",
        "",
        "   ",
        "list # a comment",
        "dominfo \"te\"st; dominfo 'test'; dominfo te\\st; dominfo -- test",
        "list;list",
        "connect test:///default; uri",
        "connect test:///default extra",
        "list; quit; list",
        "help list extra --foo",
        "domstate --reason test",
    ] {
        compare(&["-c", "test:///default", s], None, d.path());
    }
}

#[test]
fn help_texts() {
    let d = workdir();
    let names = [
        "list",
        "dominfo",
        "domstate",
        "domid",
        "domname",
        "domuuid",
        "dumpxml",
        "define",
        "undefine",
        "create",
        "start",
        "destroy",
        "shutdown",
        "reboot",
        "suspend",
        "resume",
        "autostart",
        "capabilities",
        "domcapabilities",
        "nodeinfo",
        "version",
        "uri",
        "hostname",
        "help",
        "quit",
        "exit",
        "connect",
    ];
    let cmds: Vec<String> = names.iter().map(|n| format!("help {n}")).collect();
    let refs: Vec<&str> = cmds.iter().map(String::as_str).collect();
    session(d.path(), &refs);
    session(d.path(), &["list --help", "dominfo --help"]);
}

#[test]
fn argv_mode_and_global_options() {
    let d = workdir();
    let p = d.path();
    compare(&["-c", "test:///default", "dominfo", "test"], None, p);
    compare(
        &["-c", "test:///default", "list", "--all", "--name"],
        None,
        p,
    );
    compare(&["-c", "test:///default", "list", ";", "list"], None, p);
    compare(
        &[
            "--connect",
            "test:///default",
            "domstate",
            "--reason",
            "test",
        ],
        None,
        p,
    );
    compare(&["--connect=test:///default", "uri"], None, p);
    compare(&["-ctest:///default", "uri"], None, p);
    compare(&["-v"], None, p);
    compare(&["--version"], None, p);
    compare(&["--version=short"], None, p);
    compare(&["-x"], None, p);
    compare(&["--foo"], None, p);
    compare(&["-c"], None, p);
    compare(&["-c", "test:///nonexistent/node.xml", "uri"], None, p);
    compare(&["-c", "test:///", "uri"], None, p);
    compare(&["-c", "test:///default", "foo", "bar"], None, p);
    for bad in [["-k", "x"], ["-K", "-1"], ["-d", "9"], ["-d", "x"]] {
        compare(&[bad[0], bad[1], "-c", "test:///default", "uri"], None, p);
    }
}

#[test]
fn quiet_and_read_only() {
    let d = workdir();
    let all = "list --all; list --name; dominfo test; domstate test; define a.xml; autostart a; \
               autostart --disable a; start a; suspend a; resume a; reboot a; shutdown a; start a; \
               destroy a; undefine a; create t.xml; destroy t; domid test; version; nodeinfo; uri; \
               domuuid test; domname 1; capabilities";
    compare(&["-q", "-c", "test:///default", all], None, d.path());
    let ro = "undefine test; destroy test; start test; shutdown test; reboot test; suspend test; resume test; \
              define a.xml; create t.xml; autostart test; dumpxml --security-info test; dumpxml test; list; \
              dominfo test";
    compare(&["-r", "-c", "test:///default", ro], None, d.path());
    compare(&["-q", "-r", "-c", "test:///default", ro], None, d.path());
}

#[test]
fn commands_from_standard_input() {
    let d = workdir();
    let p = d.path();
    compare(
        &["-q", "-c", "test:///default"],
        Some("list\nfoo\ndominfo nosuch\ndefine a.xml\nlist --all\n"),
        p,
    );
    compare(
        &["-q", "-c", "test:///default"],
        Some("list\n\n  \nsuspend test; domstate test --reason\nquit\nlist\n"),
        p,
    );
    compare(
        &["-q", "-r", "-c", "test:///default"],
        Some("list\ndestroy test"),
        p,
    );
    compare(&["-q", "-c", "test:///default"], Some(""), p);
}

#[test]
fn node_file_connections() {
    let d = workdir();
    let node = d.path().join("node.xml");
    std::fs::write(
        d.path().join("d1.xml"),
        "<domain type='test'><name>fromfile</name><uuid>44444444-2222-3333-4444-555555555555</uuid>\
         <memory>4096</memory><os><type>hvm</type></os></domain>",
    )
    .expect("write");
    std::fs::write(
        &node,
        "<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n\
         <domain file='d1.xml'/>\n\
         <domain type='test'><name>inline</name><uuid>22222222-2222-3333-4444-555555555555</uuid>\
         <memory>2048</memory><vcpu>3</vcpu><os><type>hvm</type></os><test:runstate>5</test:runstate></domain>\n\
         <domain type='test'><name>paused</name><uuid>33333333-2222-3333-4444-555555555555</uuid>\
         <memory>2048</memory><os><type>hvm</type></os><test:runstate>3</test:runstate><test:transient/></domain>\n\
         <cpu><mhz>6000</mhz><model>i986</model><active>50</active><nodes>4</nodes><sockets>4</sockets>\
         <cores>4</cores><threads>2</threads></cpu>\n<memory>8192000</memory>\n</node>\n",
    )
    .expect("write");
    let uri = format!("test://{}", node.display());
    compare(
        &[
            "-c",
            &uri,
            "nodeinfo; capabilities; uri; list --all; domstate paused --reason; domstate inline --reason; \
             domstate fromfile --reason; dominfo paused; dumpxml paused; dumpxml --inactive fromfile; \
             start inline; list --all; destroy paused; list --all",
        ],
        None,
        d.path(),
    );
    let bad = d.path().join("bad-node.xml");
    std::fs::write(&bad, "<node><cpu><mhz>fast</mhz></cpu></node>").expect("write");
    compare(
        &["-c", &format!("test://{}", bad.display()), "uri"],
        None,
        d.path(),
    );
    compare(
        &[
            "-c",
            &format!("test://{}", d.path().join("foo.xml").display()),
            "uri",
        ],
        None,
        d.path(),
    );
}

/// The domain fixtures of ironvirt-conf: `define` + `dumpxml --inactive`
/// through ironvirsh prints what the real virsh prints for the same file
/// on libvirt's test driver, computed live.
#[test]
fn conf_fixtures_define_and_dump_like_libvirt() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ironvirt-conf/tests/fixtures/domain");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "xml")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(".expected.xml"))
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no fixtures in {}", dir.display());
    for input in inputs {
        let text = std::fs::read_to_string(&input).expect("read fixture");
        let doc = roxmltree::Document::parse(&text).expect("fixture is well-formed");
        let name = doc
            .root_element()
            .children()
            .find(|c| c.tag_name().name() == "name")
            .and_then(|n| n.text())
            .unwrap_or("")
            .to_string();
        let file = input.to_string_lossy().into_owned();
        let cmds = format!("define {file}; dumpxml --inactive {name}; dumpxml {name}");
        compare(&["-c", "test:///default", &cmds], None, &dir);
    }
}

/// The reference libvirtd's socket (started by the project's test command).
fn reference_socket() -> Option<String> {
    let sock = std::env::var("IRONVIRT_REFERENCE_SOCK")
        .unwrap_or_else(|_| "/run/libvirt-ref/libvirt-sock".to_string());
    if Path::new(&sock).exists() {
        return Some(sock);
    }
    if std::env::var("IRONVIRT_NO_REFERENCE").as_deref() == Ok("1") {
        eprintln!("no reference libvirtd; skipped (IRONVIRT_NO_REFERENCE=1)");
        return None;
    }
    panic!(
        "the reference libvirtd is not running on {sock}: start it with scripts/reference-libvirtd.sh \
         (or set IRONVIRT_NO_REFERENCE=1 to skip comparisons with it)"
    );
}

/// Runs one session through virsh, then the same through ironvirsh, both
/// talking to the same daemon. Each session leaves the daemon as it found
/// it, so both start from the same state; domain ids grow with every start
/// on a daemon, so the sessions never print the id of a domain they start.
fn remote_session(uri: &str, cwd: &Path, cmds: &[&str]) -> String {
    let joined = cmds.join("; ");
    let o = compare(&["-c", uri, &joined], None, cwd);
    format!("{}{}", o.stdout, o.stderr)
}

const REMOTE_TEST_DOM: &str = "<domain type='test'>
  <name>ironvirsh-remote-a</name>
  <uuid>31111111-2222-3333-4444-555555555555</uuid>
  <memory unit='MiB'>1</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
</domain>
";

const REMOTE_QEMU_DOM: &str = "<domain type='qemu'>
  <name>ironvirsh-remote-q</name>
  <uuid>41111111-2222-3333-4444-555555555555</uuid>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><source file='/var/lib/ironvirt-test/q.img'/><target dev='vda' bus='virtio'/></disk>
    <interface type='user'><mac address='52:54:00:41:22:33'/></interface>
  </devices>
</domain>
";

/// ironvirsh drives the reference libvirtd through the pure-Rust remote
/// driver and prints what virsh prints against the same daemon.
#[test]
fn remote_reference_test_driver() {
    let Some(sock) = reference_socket() else {
        return;
    };
    let uri = format!("test+unix:///default?socket={sock}");
    let dir = workdir();
    std::fs::write(dir.path().join("r.xml"), REMOTE_TEST_DOM).expect("write");
    let cwd = dir.path();
    let o = remote_session(
        &uri,
        cwd,
        &["uri", "hostname", "version", "nodeinfo", "capabilities"],
    );
    assert!(
        o.contains("Running hypervisor: TEST") && o.contains("<capabilities>"),
        "{o}"
    );
    let o = remote_session(
        &uri,
        cwd,
        &[
            "define r.xml",
            "dominfo ironvirsh-remote-a",
            "domstate ironvirsh-remote-a --reason",
            "dumpxml ironvirsh-remote-a",
            "domuuid ironvirsh-remote-a",
            "start ironvirsh-remote-a",
            "start ironvirsh-remote-a",
            "domstate ironvirsh-remote-a --reason",
            "suspend ironvirsh-remote-a",
            "domstate ironvirsh-remote-a --reason",
            "resume ironvirsh-remote-a",
            "autostart ironvirsh-remote-a",
            "autostart --disable ironvirsh-remote-a",
            "destroy ironvirsh-remote-a",
            "domstate ironvirsh-remote-a --reason",
            "undefine ironvirsh-remote-a",
        ],
    );
    for expect in [
        "defined from r.xml",
        "running (booted)",
        "paused (user)",
        "shut off (destroyed)",
        "has been undefined",
        "Domain is already active",
    ] {
        assert!(o.contains(expect), "missing {expect:?} in:\n{o}");
    }
    let o = remote_session(
        &uri,
        cwd,
        &[
            "dominfo nosuch",
            "start nosuch",
            "define bad.xml",
            "define noname.xml",
            "domid 123456",
        ],
    );
    assert!(o.contains("error: failed to get domain 'nosuch'"), "{o}");
    let o = remote_session(
        &uri,
        cwd,
        &["dominfo test", "domstate test", "list --all --name"],
    );
    assert!(
        o.contains("UUID:           6695eb01-f6a4-8304-79aa-97f2502e193f"),
        "{o}"
    );
}

/// The same against the reference's QEMU driver (definitions only: no
/// guest is started).
#[test]
fn remote_reference_qemu_driver() {
    let Some(sock) = reference_socket() else {
        return;
    };
    let uri = format!("qemu+unix:///system?socket={sock}");
    let dir = workdir();
    std::fs::write(dir.path().join("q.xml"), REMOTE_QEMU_DOM).expect("write");
    let cwd = dir.path();
    let o = remote_session(
        &uri,
        cwd,
        &[
            "uri",
            "version",
            "nodeinfo",
            "capabilities",
            "domcapabilities",
            "domcapabilities --machine q35 --virttype qemu",
        ],
    );
    assert!(
        o.contains("qemu+unix:///system")
            && o.contains("<domainCapabilities>")
            && o.contains("pc-q35-"),
        "{o}"
    );
    let o = remote_session(
        &uri,
        cwd,
        &[
            "define q.xml",
            "dominfo ironvirsh-remote-q",
            "domstate ironvirsh-remote-q --reason",
            "dumpxml --inactive ironvirsh-remote-q",
            "list --all --name",
            "undefine ironvirsh-remote-q",
            "dominfo ironvirsh-remote-q",
        ],
    );
    for expect in [
        "defined from q.xml",
        "shut off",
        "<emulator>/usr/bin/qemu-system-x86_64</emulator>",
        "has been undefined",
        "error: failed to get domain 'ironvirsh-remote-q'",
    ] {
        assert!(o.contains(expect), "missing {expect:?} in:\n{o}");
    }
}
