//! Resource limits that follow a command into every process it starts:
//! memory and process count through cgroups, sizes like `8G` for
//! `--mem-limit`.
//!
//! Each limited command gets its own cgroup, made under mlab's own cgroup
//! (read from /proc/self/cgroup) so that it works inside containers and job
//! slots that only delegate a subtree. The child joins the cgroup between
//! fork and exec, so nothing it starts can escape the limit. Cgroup v1 (a
//! hierarchy per controller, as on the machines mlab was built on) and v2
//! (one unified hierarchy) are both handled.
//!
//! Not here: wall time and output size (enforced by the supervisor in
//! `mod.rs`), and RLIMIT_AS on purpose: an address-space limit breaks
//! programs that reserve far more than they use (jax, CUDA).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::Policy;

/// Parses a byte size: a number with an optional unit K, M, G or T (powers
/// of 1024; "KB", "KiB" and lower case are accepted too), e.g. `8G`,
/// `512M`, `1.5G`, `1073741824`.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let shift = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => bail!("invalid size '{text}': use a number with K, M, G or T, e.g. 8G or 512M"),
    };
    // "b" alone ("100b") means bytes; "ib" without a prefix letter does not.
    if unit == "ib" || unit.len() > 3 {
        bail!("invalid size '{text}': use a number with K, M, G or T, e.g. 8G or 512M");
    }
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v > 0.0)
        .with_context(|| {
            format!(
                "invalid size '{text}': use a positive number with K, M, G or T, e.g. 8G or 512M"
            )
        })?;
    let bytes = value * (1u64 << shift) as f64;
    if bytes >= u64::MAX as f64 {
        bail!("invalid size '{text}': too large");
    }
    Ok(bytes.round() as u64)
}

/// Where a controller can be used: the cgroup directory mlab itself sits in
/// for that controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Controller {
    /// mlab's own cgroup directory in the hierarchy holding the controller.
    pub dir: PathBuf,
    pub v2: bool,
}

/// Finds mlab's cgroup directory for `controller` ("memory", "pids") from
/// the text of /proc/self/cgroup and /proc/self/mountinfo. A v1 hierarchy
/// that has the controller wins over v2, since on hybrid systems the v2
/// tree often exists without it.
pub(crate) fn find_controller(
    controller: &str,
    proc_cgroup: &str,
    mountinfo: &str,
) -> Option<Controller> {
    let mounts: Vec<Mount> = mountinfo.lines().filter_map(Mount::parse).collect();
    let mut v2_path = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if ctrls.is_empty() {
            v2_path = Some(path.to_string());
            continue;
        }
        if !ctrls.split(',').any(|c| c == controller) {
            continue;
        }
        let m = mounts
            .iter()
            .find(|m| m.fstype == "cgroup" && m.options.split(',').any(|o| o == controller))?;
        return Some(Controller {
            dir: m.resolve(path)?,
            v2: false,
        });
    }
    let path = v2_path?;
    let m = mounts.iter().find(|m| m.fstype == "cgroup2")?;
    Some(Controller {
        dir: m.resolve(&path)?,
        v2: true,
    })
}

struct Mount {
    root: String,
    point: String,
    fstype: String,
    options: String,
}

impl Mount {
    /// One line of /proc/self/mountinfo: "id parent maj:min root point opts
    /// [optional fields] - fstype source superopts".
    fn parse(line: &str) -> Option<Mount> {
        let (left, right) = line.split_once(" - ")?;
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        Some(Mount {
            root: unescape(left.get(3)?),
            point: unescape(left.get(4)?),
            fstype: right.first()?.to_string(),
            options: right.get(2).unwrap_or(&"").to_string(),
        })
    }

    /// The directory of cgroup `path` under this mount, or None when the
    /// cgroup lies outside what is mounted here.
    fn resolve(&self, path: &str) -> Option<PathBuf> {
        let rel = if self.root == "/" {
            path.trim_start_matches('/')
        } else {
            path.strip_prefix(self.root.as_str())?
                .trim_start_matches('/')
        };
        Some(Path::new(&self.point).join(rel))
    }
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let code = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok());
            if let Some(v) = code {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn own_controller(name: &str) -> Option<Controller> {
    let cg = fs::read_to_string("/proc/self/cgroup").ok()?;
    let mi = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let c = find_controller(name, &cg, &mi)?;
    if c.v2 {
        // v2 lists the controllers usable below a group in cgroup.controllers.
        let list = fs::read_to_string(c.dir.join("cgroup.controllers")).ok()?;
        if !list.split_whitespace().any(|x| x == name) {
            return None;
        }
    }
    Some(c)
}

/// mlab's own cgroup directory for `name`, when that controller exists.
#[cfg(test)]
pub(crate) fn find_own_for_tests(name: &str) -> Option<PathBuf> {
    own_controller(name).map(|c| c.dir)
}

/// What `mlab doctor` says about a limit ("memory" or "pids"): the cgroup
/// that would enforce it, or why none can.
pub fn describe_support(controller: &str) -> std::result::Result<String, String> {
    let Some(c) = own_controller(controller) else {
        return Err(format!(
            "no cgroup {controller} controller is available to mlab here"
        ));
    };
    let file = match (controller, c.v2) {
        ("memory", false) => "memory.limit_in_bytes",
        ("memory", true) => "memory.max",
        _ => "pids.max",
    };
    match Cgroup::make(&c, controller) {
        Ok(g) => {
            let usable = g.has_file(file);
            g.remove_now();
            if usable {
                Ok(format!(
                    "cgroup {} {controller} controller under {}",
                    if c.v2 { "v2" } else { "v1" },
                    c.dir.display()
                ))
            } else {
                Err(format!(
                    "the cgroup v2 {controller} controller is not delegated to {}",
                    c.dir.display()
                ))
            }
        }
        Err(e) => Err(format!("{} is not writable: {e:#}", c.dir.display())),
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);
static MEMORY_WARNING: Once = Once::new();
static PIDS_WARNING: Once = Once::new();
static SWEPT: OnceLock<()> = OnceLock::new();

/// One cgroup directory made for one command.
#[derive(Debug)]
struct Cgroup {
    dir: PathBuf,
    v2: bool,
}

impl Cgroup {
    fn make(parent: &Controller, what: &str) -> Result<Cgroup> {
        SWEPT.get_or_init(|| sweep_stale(&parent.dir));
        let name = format!(
            "mlab-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = parent.dir.join(name);
        fs::create_dir(&dir)
            .with_context(|| format!("could not make a {what} cgroup at {}", dir.display()))?;
        Ok(Cgroup { dir, v2: parent.v2 })
    }

    fn has_file(&self, name: &str) -> bool {
        self.dir.join(name).exists()
    }

    fn write(&self, file: &str, value: &str) -> Result<()> {
        let path = self.dir.join(file);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(value.as_bytes()))
            .with_context(|| format!("could not write {value} to {}", path.display()))
    }

    fn read(&self, file: &str) -> String {
        fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }

    fn pids(&self) -> Vec<i32> {
        self.read("cgroup.procs")
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    fn kill_all(&self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        // Repeat: a process may fork between reading the list and the kill.
        for _ in 0..10 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for p in pids {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
        }
    }

    fn remove_now(&self) -> bool {
        fs::remove_dir(&self.dir).is_ok() || !self.dir.exists()
    }
}

/// Removes cgroups left by mlab processes that no longer exist (a crash, a
/// kill -9), so they do not pile up under a long-lived parent.
fn sweep_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("mlab-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() as i32 && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir(e.path());
        }
    }
}

/// The cgroups that enforce one command's limits. Dropping it kills what is
/// left inside and removes the cgroups.
#[derive(Debug)]
pub(crate) struct Limits {
    groups: Vec<Cgroup>,
    /// The group with the memory limit and the limit, to read OOM kills.
    memory: Option<(usize, u64)>,
    /// The group with the process limit and the limit, to read refused forks.
    pids: Option<(usize, u64)>,
    /// RLIMIT_NPROC to set when no pids controller could be used.
    pub nproc_fallback: Option<u64>,
}

impl Limits {
    /// Makes the cgroups `policy` asks for. None when it asks for no memory
    /// or process limit. A memory limit that cannot be enforced is warned
    /// about once and skipped; a process limit falls back to RLIMIT_NPROC.
    pub fn create(policy: &Policy) -> Result<Option<Limits>> {
        if policy.mem_limit.is_none() && policy.max_procs.is_none() {
            return Ok(None);
        }
        let mut limits = Limits {
            groups: Vec::new(),
            memory: None,
            pids: None,
            nproc_fallback: None,
        };
        if let Some(bytes) = policy.mem_limit {
            match limits.add_memory(bytes) {
                Ok(()) => {}
                Err(e) => MEMORY_WARNING.call_once(|| {
                    crate::ui::warn(format!(
                        "memory limits are not enforced on this machine ({e:#}); \
                         commands run without one (see `mlab doctor`)"
                    ))
                }),
            }
        }
        if let Some(n) = policy.max_procs {
            if let Err(e) = limits.add_pids(n) {
                limits.nproc_fallback = Some(n);
                // RLIMIT_NPROC never binds root: say so rather than pretend.
                if nix::unistd::geteuid().is_root() {
                    PIDS_WARNING.call_once(|| {
                        crate::ui::warn(format!(
                            "process limits are not enforced on this machine ({e:#}; \
                             RLIMIT_NPROC does not bind root); a fork bomb is bounded only \
                             by the system (see `mlab doctor`)"
                        ))
                    });
                }
            }
        }
        Ok(Some(limits))
    }

    fn group_for(&mut self, c: &Controller, what: &str) -> Result<usize> {
        // On v2 one directory carries every controller.
        if c.v2 {
            if let Some(i) = self
                .groups
                .iter()
                .position(|g| g.v2 && g.dir.parent() == Some(&c.dir))
            {
                return Ok(i);
            }
        }
        self.groups.push(Cgroup::make(c, what)?);
        Ok(self.groups.len() - 1)
    }

    fn add_memory(&mut self, bytes: u64) -> Result<()> {
        let c = own_controller("memory").context("no cgroup memory controller")?;
        let i = self.group_for(&c, "memory")?;
        let g = &self.groups[i];
        if c.v2 {
            if !g.has_file("memory.max") {
                // Try to delegate the controller to our children; this fails
                // when mlab's own group holds processes (v2's no-internal-
                // processes rule), and then memory limits are unavailable.
                let parent = Cgroup {
                    dir: c.dir.clone(),
                    v2: true,
                };
                parent.write("cgroup.subtree_control", "+memory").context(
                    "the cgroup v2 memory controller is not delegated below mlab's cgroup",
                )?;
            }
            g.write("memory.max", &bytes.to_string())?;
            let _ = g.write("memory.swap.max", "0");
        } else {
            g.write("memory.limit_in_bytes", &bytes.to_string())?;
            // Without this the command could go on in swap; may be absent
            // when swap accounting is off.
            let _ = g.write("memory.memsw.limit_in_bytes", &bytes.to_string());
        }
        self.memory = Some((i, bytes));
        Ok(())
    }

    fn add_pids(&mut self, n: u64) -> Result<()> {
        let c = own_controller("pids").context("no cgroup pids controller")?;
        let i = self.group_for(&c, "pids")?;
        let g = &self.groups[i];
        if c.v2 && !g.has_file("pids.max") {
            let parent = Cgroup {
                dir: c.dir.clone(),
                v2: true,
            };
            parent
                .write("cgroup.subtree_control", "+pids")
                .context("the cgroup v2 pids controller is not delegated below mlab's cgroup")?;
        }
        g.write("pids.max", &n.to_string())?;
        self.pids = Some((i, n));
        Ok(())
    }

    /// The process limit, when the kernel refused a fork or clone for it
    /// (`max` in pids.events counts those refusals, v1 and v2 alike).
    pub fn pids_breach(&self) -> Option<u64> {
        let (i, n) = self.pids?;
        let refused = self.groups[i]
            .read("pids.events")
            .lines()
            .find_map(|l| l.strip_prefix("max")?.trim().parse::<u64>().ok())
            .unwrap_or(0);
        (refused > 0).then_some(n)
    }

    /// The cgroup.procs files the child writes "0" into to join every group.
    pub fn join_files(&self) -> Result<Vec<File>> {
        self.groups
            .iter()
            .map(|g| {
                let p = g.dir.join("cgroup.procs");
                OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .with_context(|| format!("could not open {}", p.display()))
            })
            .collect()
    }

    /// The memory limit, when the kernel killed a process for passing it.
    pub fn memory_breach(&self) -> Option<u64> {
        let (i, bytes) = self.memory?;
        let g = &self.groups[i];
        let (file, key) = if g.v2 {
            ("memory.events", "oom_kill")
        } else {
            ("memory.oom_control", "oom_kill")
        };
        let kills = g
            .read(file)
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
            .unwrap_or(0);
        (kills > 0).then_some(bytes)
    }

    /// True when no process is left in any of the groups.
    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(|g| g.pids().is_empty())
    }

    /// Kills every process still in the groups.
    pub fn kill_all(&self) {
        for g in &self.groups {
            g.kill_all();
        }
    }

    /// Kills what is left and removes the groups, waiting briefly for the
    /// kernel to let go of exiting processes. True when all are gone.
    pub fn remove(&mut self) -> bool {
        self.kill_all();
        let until = Instant::now() + Duration::from_millis(500);
        loop {
            self.groups.retain(|g| !g.remove_now());
            if self.groups.is_empty() || Instant::now() >= until {
                return self.groups.is_empty();
            }
            self.kill_all();
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Limits {
    fn drop(&mut self) {
        if !self.remove() {
            tracing::debug!("cgroups not yet empty, retried later: {:?}", self.groups);
            // Retried before each later command; a later mlab process sweeps
            // whatever is left once this one has exited.
            leftovers()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .append(&mut self.groups);
        }
    }
}

fn leftovers() -> &'static Mutex<Vec<Cgroup>> {
    static LEFT: OnceLock<Mutex<Vec<Cgroup>>> = OnceLock::new();
    LEFT.get_or_init(Mutex::default)
}

/// Tries again to remove cgroups that could not be removed at the time.
pub(crate) fn retry_leftovers() {
    let mut left = leftovers().lock().unwrap_or_else(|e| e.into_inner());
    left.retain(|g| {
        g.kill_all();
        !g.remove_now()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_units_are_powers_of_1024() {
        assert_eq!(parse_size("8G").unwrap(), 8 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_size("2GB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1T").unwrap(), 1 << 40);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("100b").unwrap(), 100);
    }

    #[test]
    fn bad_sizes_are_refused_with_an_example() {
        for bad in ["", "G", "8X", "-1G", "0", "1.2.3M", "8 gigs", "5ib"] {
            let e = parse_size(bad).unwrap_err().to_string();
            assert!(e.contains("8G"), "{bad}: {e}");
        }
    }

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn v1_controller_is_found_under_our_own_group() {
        let cg = "8:pids:/\n4:memory:/process_api/abc\n0::/\n";
        let m = find_controller("memory", cg, MOUNTINFO).unwrap();
        assert_eq!(
            m.dir,
            PathBuf::from("/sys/fs/cgroup/memory/process_api/abc")
        );
        assert!(!m.v2);
        let p = find_controller("pids", cg, MOUNTINFO).unwrap();
        assert_eq!(p.dir, PathBuf::from("/sys/fs/cgroup/pids"));
        // No v1 cpu hierarchy: the unified tree is the candidate.
        let c = find_controller("cpu", cg, MOUNTINFO).unwrap();
        assert!(c.v2);
        assert_eq!(c.dir, PathBuf::from("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn v2_only_system_uses_the_unified_tree() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let cg = "0::/user.slice/user-1000.slice/session-3.scope\n";
        let m = find_controller("memory", cg, mi).unwrap();
        assert!(m.v2);
        assert_eq!(
            m.dir,
            PathBuf::from("/sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope")
        );
    }

    #[test]
    fn a_container_mount_root_is_stripped() {
        let mi = "35 31 0:32 /docker/xyz /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n";
        let cg = "4:memory:/docker/xyz/sub\n";
        let m = find_controller("memory", cg, mi).unwrap();
        assert_eq!(m.dir, PathBuf::from("/sys/fs/cgroup/memory/sub"));
        // A group outside the mounted subtree cannot be reached.
        assert!(find_controller("memory", "4:memory:/other\n", mi).is_none());
    }

    #[test]
    fn mountinfo_octal_escapes_are_decoded() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
