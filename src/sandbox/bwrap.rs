//! The `bwrap` sandbox: a command runs in fresh namespaces made by
//! bubblewrap, on a file system built from an allow-list.
//!
//! The sandbox's root is an empty tmpfs, read-only once built, holding only:
//! the system folders read-only (`/usr` and the `/bin`, `/sbin`, `/lib*`
//! that Debian-style systems keep as links into it, recreated as the same
//! links), `/etc` read-only without its secrets, a minimal `/dev` (plus the
//! GPU nodes when asked), a fresh `/proc`, the CPU topology from `/sys`
//! (all of `/sys` with a GPU), a private `/tmp`, and what the policy binds:
//! the workspace read-write, the task's read-only files and the Python's
//! installation read-only. Nothing else of the host exists inside: no home,
//! no mlab working directory, no other runs, no `/mnt`, `/srv`, `/root`,
//! `/var`, `/run`. Hidden paths are masked only where they lie inside
//! something visible (a secret in `/etc`, a file inside a bound folder).
//!
//! `/etc` is bound whole, not entry by entry: programs read many scattered
//! files there (the loader cache, certificates, passwd and group, hosts,
//! time zone, alternatives, Debian's per-Python sitecustomize, fonts), and
//! a missing one breaks them in ways that are hard to trace. What is secret
//! in `/etc` is a short, well-known list ([`ETC_SECRETS`], SSH host keys),
//! and those are masked.
//!
//! Paths given through host symlinks (a venv under a linked `$TMPDIR`, the
//! benchmarks link that install.sh makes) are bound at their real location,
//! and each symlink on the way that would otherwise lie on the empty root is
//! recreated, so the path as the caller named it works inside too.
//!
//! This file only turns a `Policy` into bwrap's arguments (plus empty
//! placeholders in the workspace where read-only files are mounted). How
//! bwrap is found and checked is in `select.rs`; limits and supervision are
//! shared with the other sandboxes in `mod.rs` and `limits.rs`.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

use super::{Policy, Sandbox};

/// Top-level system folders shown read-only (or as the links they are).
pub const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
];

/// Files and folders in `/etc` that are masked: password hashes, sudo
/// rules, TLS private keys. SSH host keys are found by name.
pub const ETC_SECRETS: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssl/private",
    "/etc/security/opasswd",
];

/// Where the CPU topology lives; thread pools (BLAS, OpenMP, glibc's
/// processor count) read it.
const SYS_CPU: &str = "/sys/devices/system/cpu";

/// A system folder: bound read-only, or a symlink recreated as such.
#[derive(Debug, Clone)]
enum SystemEntry {
    Dir(PathBuf),
    Link { path: PathBuf, target: PathBuf },
}

/// The system folders present on this machine, looked up once.
fn system_entries() -> &'static [SystemEntry] {
    static ENTRIES: OnceLock<Vec<SystemEntry>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        SYSTEM_DIRS
            .iter()
            .filter_map(|d| {
                let path = PathBuf::from(d);
                let meta = path.symlink_metadata().ok()?;
                if meta.file_type().is_symlink() {
                    let target = fs::read_link(&path).ok()?;
                    Some(SystemEntry::Link { path, target })
                } else if meta.is_dir() {
                    Some(SystemEntry::Dir(path))
                } else {
                    None
                }
            })
            .collect()
    })
}

/// The secrets in `/etc` present on this machine, looked up once.
fn etc_secrets() -> &'static [PathBuf] {
    static SECRETS: OnceLock<Vec<PathBuf>> = OnceLock::new();
    SECRETS.get_or_init(|| {
        let mut found: Vec<PathBuf> = ETC_SECRETS
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.symlink_metadata().is_ok())
            .collect();
        if let Ok(rd) = fs::read_dir("/etc/ssh") {
            for e in rd.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with("ssh_host_") && name.ends_with("_key") {
                    found.push(e.path());
                }
            }
        }
        found.sort();
        found
    })
}

/// Folders that exist inside exactly as on the host, at the same path, for
/// every command: what the system entries and the fresh /dev and /proc
/// give. Binds add to these per command. Looked up once.
fn fixed_trees() -> &'static [PathBuf] {
    static TREES: OnceLock<Vec<PathBuf>> = OnceLock::new();
    TREES.get_or_init(|| {
        let mut trees: Vec<PathBuf> = system_entries()
            .iter()
            .map(|e| match e {
                SystemEntry::Dir(p) => p.clone(),
                SystemEntry::Link { path, .. } => path.clone(),
            })
            .collect();
        trees.push("/dev".into());
        trees.push("/proc".into());
        trees
    })
}

/// bubblewrap at a known path, known to work on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bwrap {
    pub path: PathBuf,
    /// Whether bwrap may make a user namespace for the sandbox (and so
    /// forbid further ones inside). False only with a setuid bwrap on a
    /// kernel without unprivileged user namespaces.
    pub userns: bool,
}

impl Sandbox for Bwrap {
    fn name(&self) -> &'static str {
        "bwrap"
    }

    fn command(&self, argv: &[OsString], policy: &Policy) -> Result<Command> {
        if argv.is_empty() {
            bail!("empty command");
        }
        let plan = Plan::new(policy)?;
        plan.make_placeholders()?;
        let args = self.args_for(&plan, argv, policy);
        tracing::debug!("bwrap {:?}", args);
        let mut cmd = Command::new(&self.path);
        // bwrap gets the whitelist through --setenv; it needs nothing itself.
        cmd.env_clear().args(args);
        Ok(cmd)
    }
}

impl Bwrap {
    /// bwrap's arguments (after the program name) for `argv` under `policy`.
    #[cfg(test)]
    pub fn args(&self, argv: &[OsString], policy: &Policy) -> Result<Vec<OsString>> {
        let plan = Plan::new(policy)?;
        Ok(self.args_for(&plan, argv, policy))
    }

    fn args_for(&self, plan: &Plan, argv: &[OsString], policy: &Policy) -> Vec<OsString> {
        let mut a = Args::default();
        // The root is bwrap's own empty tmpfs: only what is added below
        // exists. System folders first, read-only.
        for e in system_entries() {
            match e {
                SystemEntry::Dir(p) => {
                    a.push(["--ro-bind"]);
                    a.path(p);
                    a.path(p);
                }
                SystemEntry::Link { path, target } => {
                    a.push(["--symlink"]);
                    a.path(target);
                    a.path(path);
                }
            }
        }
        // A fresh /dev and /proc that show only what is inside.
        a.push(["--dev", "/dev", "--proc", "/proc"]);
        // --dev leaves /dev/shm as a plain directory; multiprocessing needs
        // a writable one.
        a.push(["--tmpfs", "/dev/shm"]);
        if policy.gpu {
            // CUDA and NVML read PCI and NUMA details from sysfs.
            if Path::new("/sys").is_dir() {
                a.push(["--ro-bind", "/sys", "/sys"]);
            }
            for node in gpu_nodes() {
                a.push(["--dev-bind"]);
                a.path(&node);
                a.path(&node);
            }
        } else if Path::new(SYS_CPU).is_dir() {
            a.push(["--ro-bind", SYS_CPU, SYS_CPU]);
        }
        if policy.network {
            // Name resolution, where /etc/resolv.conf leads into /run.
            for p in ["/run/systemd/resolve", "/run/resolvconf"] {
                if Path::new(p).is_dir() {
                    a.push(["--ro-bind", p, p]);
                }
            }
        }
        for op in &plan.ops {
            match op {
                Op::Bind { src, dest, write } => {
                    a.push([if *write { "--bind" } else { "--ro-bind" }]);
                    a.path(src);
                    a.path(dest);
                }
                Op::Mask { path, dir, sealed } => {
                    if *dir {
                        a.push(["--tmpfs"]);
                        a.path(path);
                        if *sealed {
                            a.push(["--remount-ro"]);
                            a.path(path);
                        }
                    } else {
                        a.push(["--ro-bind", "/dev/null"]);
                        a.path(path);
                    }
                }
            }
        }
        for (path, target) in &plan.links {
            a.push(["--symlink"]);
            a.path(target);
            a.path(path);
        }
        // Nothing can be added at the top level from inside.
        a.push(["--remount-ro", "/"]);
        a.push(["--chdir"]);
        a.path(&plan.workdir);
        a.push(["--unshare-all"]);
        if policy.network {
            a.push(["--share-net"]);
        }
        if self.userns {
            // A nested user namespace would give back capabilities inside it.
            a.push(["--unshare-user", "--disable-userns"]);
        }
        a.push([
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--clearenv",
        ]);
        for (k, v) in &policy.env {
            a.push(["--setenv", k, v]);
        }
        a.push(["--"]);
        a.0.extend(argv.iter().cloned());
        a.0
    }
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn push<const N: usize>(&mut self, items: [&str; N]) {
        self.0.extend(items.iter().map(OsString::from));
    }
    fn path(&mut self, p: &Path) {
        self.0.push(p.as_os_str().to_owned());
    }
}

/// One step of building the sandbox's file tree, applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Bind {
        src: PathBuf,
        dest: PathBuf,
        write: bool,
    },
    /// An empty tmpfs over a directory or /dev/null over a file. A sealed
    /// one is also made read-only: a hidden folder with nothing bound below
    /// it. The private /tmp is never sealed.
    Mask {
        path: PathBuf,
        dir: bool,
        sealed: bool,
    },
}

impl Op {
    fn dest(&self) -> &Path {
        match self {
            Op::Bind { dest, .. } => dest,
            Op::Mask { path, .. } => path,
        }
    }
}

/// The policy's paths resolved on the host and put in mount order.
struct Plan {
    workdir: PathBuf,
    ops: Vec<Op>,
    /// Symlinks (path, target) recreated on the sandbox's root so that
    /// paths given through host symlinks lead to their binds.
    links: Vec<(PathBuf, PathBuf)>,
}

impl Plan {
    fn new(policy: &Policy) -> Result<Plan> {
        let workdir = fs::canonicalize(&policy.workdir).with_context(|| {
            format!(
                "the sandbox's working directory {} does not exist",
                policy.workdir.display()
            )
        })?;
        let fixed = fixed_trees().to_vec();
        let mut binds: Vec<Op> = Vec::new();
        for b in &policy.read_only {
            let op = bind(&b.src, &b.dest, false)?;
            // The same folder at the same place inside a system folder (a
            // Python under /usr) is there already.
            if let Op::Bind { src, dest, .. } = &op {
                if src == dest && fixed.iter().any(|t| dest.starts_with(t)) {
                    continue;
                }
            }
            binds.push(op);
        }
        // A workdir that is also bound read-only (graders) stays read-only.
        if !binds.iter().any(|b| b.dest() == workdir) {
            binds.insert(
                0,
                Op::Bind {
                    src: workdir.clone(),
                    dest: workdir.clone(),
                    write: true,
                },
            );
        }
        for b in &policy.read_write {
            binds.push(bind(&b.src, &b.dest, true)?);
        }
        // A read-only folder inside another bound from the same place
        // (site-packages inside its prefix) adds nothing.
        let same_place: Vec<PathBuf> = binds
            .iter()
            .filter_map(|op| match op {
                Op::Bind {
                    src,
                    dest,
                    write: false,
                } if src == dest => Some(dest.clone()),
                _ => None,
            })
            .collect();
        binds.retain(|op| match op {
            Op::Bind {
                src,
                dest,
                write: false,
            } if src == dest => !same_place.iter().any(|o| o != dest && dest.starts_with(o)),
            _ => true,
        });

        // Folders that exist inside as on the host: a mask matters only in
        // one of them, since everything else is the empty root already.
        let mut visible: Vec<PathBuf> = fixed.clone();
        visible.extend(binds.iter().map(|b| b.dest().to_path_buf()));

        let mut masks: Vec<(PathBuf, bool)> = vec![(PathBuf::from("/tmp"), true)];
        for s in etc_secrets() {
            masks.push((s.clone(), s.is_dir()));
        }
        for h in &policy.hidden {
            let Ok(path) = fs::canonicalize(h) else {
                continue; // nothing there to hide
            };
            if path == Path::new("/") {
                bail!("cannot hide / itself: name the folders to hide instead");
            }
            if !visible.iter().any(|v| path.starts_with(v)) {
                continue; // not visible in the first place
            }
            masks.push((path.clone(), path.is_dir()));
        }

        // A mask inside another is redundant unless a bind in between shows
        // that part again; kept, bwrap could not even make its mount point
        // on the outer (read-only) tmpfs.
        let covered = |m: &Path| {
            masks.iter().any(|(outer, _)| {
                outer != m
                    && m.starts_with(outer)
                    && !binds
                        .iter()
                        .any(|b| m.starts_with(b.dest()) && b.dest().starts_with(outer))
            })
        };
        let masks: Vec<(PathBuf, bool)> =
            masks.iter().filter(|(m, _)| !covered(m)).cloned().collect();
        let mut ops: Vec<Op> = masks
            .into_iter()
            .map(|(path, dir)| {
                let sealed =
                    path != Path::new("/tmp") && !binds.iter().any(|b| b.dest().starts_with(&path));
                Op::Mask { path, dir, sealed }
            })
            .collect();
        ops.extend(binds);
        // Parents before children, so that a bind inside a masked folder
        // (the workspace in /tmp) is laid on top of its mask, and a mask
        // inside a bound folder hides part of it. At equal depth, masks go
        // first so that an explicit bind wins. The sort is stable, so the
        // policy's own order settles the rest.
        ops.sort_by_key(|op| (depth(op.dest()), matches!(op, Op::Bind { .. })));
        ops.dedup();

        // Symlinks on the way to each path as the policy gave it.
        let mut trees: Vec<PathBuf> = fixed;
        trees.extend(ops.iter().filter_map(|op| match op {
            Op::Bind { dest, .. } => Some(dest.clone()),
            Op::Mask { .. } => None,
        }));
        let mut links = Vec::new();
        let given = std::iter::once(&policy.workdir)
            .chain(policy.read_only.iter().map(|b| &b.dest))
            .chain(policy.read_write.iter().map(|b| &b.dest));
        for p in given {
            for l in links_on_the_way(&lexical(p), &trees) {
                if !links.contains(&l) {
                    links.push(l);
                }
            }
        }
        Ok(Plan {
            workdir,
            ops,
            links,
        })
    }

    /// Creates empty files or folders where binds land inside a writable
    /// host folder (the workspace), since bwrap cannot create them on a
    /// read-only bind. Destinations inside a read-only bind must exist;
    /// elsewhere bwrap makes them on the empty root or a mask.
    fn make_placeholders(&self) -> Result<()> {
        let mut mounted: Vec<(&Path, Mount)> = fixed_trees()
            .iter()
            .map(|p| (p.as_path(), Mount::ReadOnly))
            .collect();
        for op in &self.ops {
            match op {
                Op::Bind { dest, write, .. } => mounted.push((
                    dest.as_path(),
                    if *write {
                        Mount::Writable
                    } else {
                        Mount::ReadOnly
                    },
                )),
                Op::Mask {
                    path, dir: true, ..
                } => mounted.push((path.as_path(), Mount::Tmpfs)),
                Op::Mask { .. } => {}
            }
        }
        for op in &self.ops {
            let Op::Bind { src, dest, .. } = op else {
                continue;
            };
            if dest.symlink_metadata().is_ok() {
                continue;
            }
            // The innermost mount over dest decides where it must be made.
            let host = mounted
                .iter()
                .filter(|(m, _)| dest.starts_with(m) && *m != dest)
                .max_by_key(|(m, _)| depth(m))
                .map(|(_, kind)| *kind);
            match host {
                Some(Mount::Writable) => {
                    if let Some(parent) = dest.parent() {
                        fs::create_dir_all(parent).with_context(|| {
                            format!("could not make {} for a bind", parent.display())
                        })?;
                    }
                    let made = if src.is_dir() {
                        fs::create_dir(dest)
                    } else {
                        fs::File::create_new(dest).map(drop)
                    };
                    made.with_context(|| {
                        format!("could not make a placeholder at {}", dest.display())
                    })?;
                }
                // bwrap makes it on the tmpfs or the empty root.
                Some(Mount::Tmpfs) | None => {}
                Some(Mount::ReadOnly) => bail!(
                    "cannot show {} at {} in the sandbox: {} does not exist and lies on \
                     the read-only system; bind it inside the workspace instead",
                    src.display(),
                    dest.display(),
                    dest.display()
                ),
            }
        }
        Ok(())
    }
}

/// What is mounted at a path inside the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mount {
    Writable,
    ReadOnly,
    Tmpfs,
}

/// The symlinks (path, target) met while following `p` on the host that
/// lie outside every folder in `trees` (those show the host's own links):
/// recreated inside, they make `p` lead where it leads outside.
fn links_on_the_way(p: &Path, trees: &[PathBuf]) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let mut cur = PathBuf::from("/");
    for c in p.components() {
        let Component::Normal(name) = c else {
            continue;
        };
        let next = cur.join(name);
        match next.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => {
                if !trees.iter().any(|t| next.starts_with(t)) {
                    if let Ok(target) = fs::read_link(&next) {
                        out.push((next.clone(), target));
                    }
                }
                match fs::canonicalize(&next) {
                    Ok(real) => cur = real,
                    Err(_) => break,
                }
            }
            Ok(_) => cur = next,
            Err(_) => break,
        }
    }
    out
}

/// `p` made absolute and cleaned of `.` and `..`, without following links.
fn lexical(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut clean = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    clean
}

fn bind(src: &Path, dest: &Path, write: bool) -> Result<Op> {
    let src = fs::canonicalize(src).with_context(|| {
        format!(
            "cannot bind {} into the sandbox: it does not exist",
            src.display()
        )
    })?;
    Ok(Op::Bind {
        src,
        dest: resolve(dest),
        write,
    })
}

/// `p` with its longest existing ancestor canonicalized (symlinks resolved),
/// the rest kept lexically. bwrap would follow those symlinks too; resolving
/// them here keeps the mount order and placeholder checks honest.
fn resolve(p: &Path) -> PathBuf {
    let clean = lexical(p);
    let mut rest = Vec::new();
    let mut base = clean.as_path();
    loop {
        if let Ok(real) = fs::canonicalize(base) {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                base = parent;
            }
            _ => return clean,
        }
    }
}

fn depth(p: &Path) -> usize {
    p.components().count()
}

/// NVIDIA and DRI device nodes present on this machine.
fn gpu_nodes() -> Vec<PathBuf> {
    let mut nodes: Vec<PathBuf> = fs::read_dir("/dev")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(OsStr::to_str)
                        .is_some_and(|n| n.starts_with("nvidia") || n == "dri")
                })
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    nodes
}

#[cfg(test)]
mod tests {
    use super::super::Bind;
    use super::*;

    fn bw() -> Bwrap {
        Bwrap {
            path: "/usr/bin/bwrap".into(),
            userns: true,
        }
    }

    fn strs(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    /// Index of the first `flag` whose following arguments are `rest`.
    fn find(args: &[String], seq: &[&str]) -> Option<usize> {
        args.windows(seq.len())
            .position(|w| w.iter().zip(seq).all(|(a, b)| a == b))
    }

    #[test]
    fn policy_becomes_confining_bwrap_arguments() {
        let ws = tempfile::tempdir().unwrap();
        let ws_path = fs::canonicalize(ws.path()).unwrap();
        let w = ws_path.to_str().unwrap();
        let p = Policy {
            workdir: ws.path().into(),
            env: vec![("PATH".into(), "/usr/bin".into())],
            ..Policy::default()
        };
        let a = strs(&bw().args(&["python3".into(), "x.py".into()], &p).unwrap());
        // An allow-list: the system folders, never the whole host.
        assert!(find(&a, &["--ro-bind", "/", "/"]).is_none(), "{a:?}");
        assert!(find(&a, &["--remount-ro", "/"]).is_some(), "{a:?}");
        for seq in [
            &["--ro-bind", "/usr", "/usr"][..],
            &["--ro-bind", "/etc", "/etc"],
            &["--dev", "/dev", "--proc", "/proc"],
            &["--tmpfs", "/tmp"],
            &["--bind", w, w],
            &["--chdir", w],
            &["--unshare-all", "--unshare-user", "--disable-userns"],
            &["--die-with-parent", "--new-session", "--cap-drop", "ALL"],
            &[
                "--clearenv",
                "--setenv",
                "PATH",
                "/usr/bin",
                "--",
                "python3",
                "x.py",
            ],
        ] {
            assert!(find(&a, seq).is_some(), "{seq:?} missing in {a:?}");
        }
        assert!(!a.contains(&"--share-net".to_string()));
        // The workspace (in /tmp) is bound after the private /tmp is made.
        assert!(find(&a, &["--tmpfs", "/tmp"]) < find(&a, &["--bind", w, w]));
        assert_eq!(a.last().unwrap(), "x.py");
    }

    /// A scratch folder outside /tmp (which the sandbox masks as a whole):
    /// the build folder, or /var/tmp when the checkout itself is in /tmp.
    fn scratch_outside_tmp() -> tempfile::TempDir {
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        let base = if target.starts_with("/tmp") {
            PathBuf::from("/var/tmp")
        } else {
            target
        };
        fs::create_dir_all(&base).unwrap();
        tempfile::tempdir_in(&base).unwrap()
    }

    #[test]
    fn the_private_tmp_stays_writable_when_nothing_is_bound_in_it() {
        let ws = scratch_outside_tmp();
        let p = Policy {
            workdir: ws.path().into(),
            ..Policy::default()
        };
        let a = strs(&bw().args(&["true".into()], &p).unwrap());
        assert!(find(&a, &["--tmpfs", "/tmp"]).is_some(), "{a:?}");
        assert!(find(&a, &["--remount-ro", "/tmp"]).is_none(), "{a:?}");
    }

    #[test]
    fn network_is_shared_only_when_allowed() {
        let ws = tempfile::tempdir().unwrap();
        let mut p = Policy {
            workdir: ws.path().into(),
            network: true,
            ..Policy::default()
        };
        let a = strs(&bw().args(&["true".into()], &p).unwrap());
        assert!(find(&a, &["--unshare-all", "--share-net"]).is_some());
        p.network = false;
        let a = strs(&bw().args(&["true".into()], &p).unwrap());
        assert!(!a.contains(&"--share-net".to_string()));
    }

    #[test]
    fn a_hidden_folder_needs_no_mask_and_a_file_hidden_inside_a_bind_is_masked() {
        let root = scratch_outside_tmp();
        let root = fs::canonicalize(root.path()).unwrap();
        let home = root.join("home");
        let venv = home.join(".local/venv");
        let ssh = home.join(".ssh");
        let venv_secret = venv.join("token.txt");
        let ws = root.join("ws");
        for d in [&venv, &ws, &ssh] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(&venv_secret, "key").unwrap();
        let p = Policy {
            workdir: ws.clone(),
            read_only: vec![Bind {
                src: venv.clone(),
                dest: venv.clone(),
            }],
            hidden: vec![home.clone(), ssh.clone(), venv_secret.clone()],
            ..Policy::default()
        };
        let a = strs(&bw().args(&["true".into()], &p).unwrap());
        let h = home.to_str().unwrap();
        let v = venv.to_str().unwrap();
        let s = venv_secret.to_str().unwrap();
        let b = find(&a, &["--ro-bind", v, v]).expect("venv bound");
        // Home is not on the allow-list: invisible without a mask, and so is
        // ~/.ssh inside it.
        assert!(find(&a, &["--tmpfs", h]).is_none(), "{a:?}");
        assert!(!a.iter().any(|x| x == ssh.to_str().unwrap()), "{a:?}");
        // A file hidden inside the bound venv is covered after the bind.
        let file_mask = find(&a, &["--ro-bind", "/dev/null", s]).expect("file masked");
        assert!(b < file_mask, "{a:?}");
    }

    #[test]
    fn read_only_files_get_placeholders_in_the_workspace() {
        let root = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(root.path()).unwrap();
        let data = root.join("task/env/data");
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("train.csv"), "a,b\n").unwrap();
        let ws = root.join("ws");
        fs::create_dir(&ws).unwrap();
        let p = Policy {
            workdir: ws.clone(),
            read_only: vec![
                Bind {
                    src: data.join("train.csv"),
                    dest: ws.join("data/train.csv"),
                },
                Bind {
                    src: data.clone(),
                    dest: ws.join("all_data"),
                },
            ],
            ..Policy::default()
        };
        bw().command(&["true".into()], &p).unwrap();
        assert!(ws.join("data/train.csv").is_file());
        assert_eq!(fs::read(ws.join("data/train.csv")).unwrap(), b"");
        assert!(ws.join("all_data").is_dir());
        let a = strs(&bw().args(&["true".into()], &p).unwrap());
        let w = ws.to_str().unwrap();
        let src = data.join("train.csv");
        let dest = ws.join("data/train.csv");
        let file_bind = find(
            &a,
            &["--ro-bind", src.to_str().unwrap(), dest.to_str().unwrap()],
        );
        assert!(file_bind.is_some(), "{a:?}");
        // The workspace is mounted first, then the file on top of it.
        assert!(find(&a, &["--bind", w, w]) < file_bind);
    }

    #[test]
    fn a_bind_onto_a_missing_system_path_is_refused() {
        let ws = tempfile::tempdir().unwrap();
        let p = Policy {
            workdir: ws.path().into(),
            read_only: vec![Bind {
                src: ws.path().into(),
                dest: "/usr/nonexistent-mlab-test/x".into(),
            }],
            ..Policy::default()
        };
        let e = bw().command(&["true".into()], &p).unwrap_err().to_string();
        assert!(e.contains("read-only system"), "{e}");
    }

    #[test]
    fn a_workdir_bound_read_only_is_not_also_bound_writable() {
        let ws = tempfile::tempdir().unwrap();
        let w = fs::canonicalize(ws.path()).unwrap();
        let p = Policy {
            workdir: w.clone(),
            read_only: vec![Bind {
                src: w.clone(),
                dest: w.clone(),
            }],
            ..Policy::default()
        };
        let a = strs(&bw().args(&["true".into()], &p).unwrap());
        let s = w.to_str().unwrap();
        assert!(find(&a, &["--ro-bind", s, s]).is_some());
        assert!(find(&a, &["--bind", s, s]).is_none());
    }

    #[test]
    fn gpu_nodes_are_bound_only_when_asked() {
        let ws = tempfile::tempdir().unwrap();
        let mut p = Policy {
            workdir: ws.path().into(),
            ..Policy::default()
        };
        let a = strs(&bw().args(&["true".into()], &p).unwrap());
        assert!(!a.contains(&"--dev-bind".to_string()));
        p.gpu = true;
        let a = strs(&bw().args(&["true".into()], &p).unwrap());
        let binds = a.iter().filter(|x| *x == "--dev-bind").count();
        assert_eq!(binds, gpu_nodes().len());
    }

    #[test]
    fn only_the_allow_list_and_the_policys_paths_are_mounted() {
        let root = scratch_outside_tmp();
        let root = fs::canonicalize(root.path()).unwrap();
        let ws = root.join("ws");
        let other_run = root.join("logs/other");
        let secret = root.join("secret.txt");
        for d in [&ws, &other_run] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(&secret, "x").unwrap();
        let p = Policy {
            workdir: ws.clone(),
            hidden: vec![other_run.clone(), secret.clone(), ws.join("missing")],
            ..Policy::default()
        };
        let a = strs(&bw().args(&["true".into()], &p).unwrap());
        // Hidden paths that nothing shows need no mask of their own.
        assert!(!a.iter().any(|x| x == other_run.to_str().unwrap()), "{a:?}");
        assert!(!a.iter().any(|x| x == secret.to_str().unwrap()), "{a:?}");
        // Every mount source is a system folder, /dev/null or the workspace.
        let sources: Vec<&String> = a
            .windows(3)
            .filter(|w| w[0] == "--ro-bind" || w[0] == "--bind")
            .map(|w| &w[1])
            .collect();
        for s in sources {
            let ok = SYSTEM_DIRS.iter().any(|d| Path::new(s).starts_with(d))
                || s.starts_with("/sys")
                || s == "/dev/null"
                || Path::new(s) == ws;
            assert!(ok, "{s} is mounted: {a:?}");
        }
        // /etc's secrets are masked.
        for s in etc_secrets() {
            assert!(a.contains(&s.display().to_string()), "{s:?} not masked");
        }
    }

    #[test]
    fn symlinks_on_the_way_to_a_bind_are_recreated() {
        let root = tempfile::tempdir().unwrap();
        let real = fs::canonicalize(root.path()).unwrap();
        let venv = real.join("venvs/real");
        fs::create_dir_all(&venv).unwrap();
        let link = real.join("link");
        std::os::unix::fs::symlink(&venv, &link).unwrap();
        let ws = real.join("ws");
        fs::create_dir(&ws).unwrap();
        let p = Policy {
            workdir: ws.clone(),
            read_only: vec![Bind {
                src: link.clone(),
                dest: link.clone(),
            }],
            ..Policy::default()
        };
        let a = strs(&bw().args(&["true".into()], &p).unwrap());
        let v = venv.to_str().unwrap();
        let bind = find(&a, &["--ro-bind", v, v]).expect("bound at its real path");
        let made = find(&a, &["--symlink", v, link.to_str().unwrap()]).expect("link made");
        assert!(bind < made, "{a:?}");
    }

    #[test]
    fn resolve_follows_existing_symlinks_and_keeps_the_rest() {
        let root = tempfile::tempdir().unwrap();
        let real = fs::canonicalize(root.path()).unwrap().join("real");
        fs::create_dir(&real).unwrap();
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(resolve(&link.join("a/b")), real.join("a/b"));
        assert_eq!(resolve(&link.join("a/../c")), real.join("c"));
    }
}
