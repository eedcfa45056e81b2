//! Choosing the sandbox: `none` warns, and a missing or broken bwrap under
//! `auto` or `bwrap` stops with the reason and the way out instead of
//! running the command unconfined.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{mlab, output, text};

/// A folder holding a `bwrap` that fails the way a kernel without user
/// namespaces makes it fail.
fn broken_bwrap_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bwrap");
    std::fs::write(
        &p,
        "#!/bin/sh\necho 'bwrap: No permissions to creating new namespace, likely because the kernel does not allow non-privileged user namespaces.' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn path_with_first(dir: &Path) -> std::ffi::OsString {
    let mut parts = vec![dir.to_path_buf()];
    parts.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(parts).unwrap()
}

#[test]
fn sandbox_none_prints_its_warning_and_runs() {
    let ws = tempfile::tempdir().unwrap();
    let o = output(
        mlab()
            .args(["sandbox-exec", "--sandbox", "none", "--workspace"])
            .arg(ws.path())
            .args(["--", "sh", "-c", "echo ran"]),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "ran\n");
    let err = text(&o.stderr);
    assert!(err.contains("--sandbox none"), "{err}");
    assert!(err.contains("unconfined"), "{err}");
}

#[test]
fn a_broken_bwrap_stops_with_the_reason_and_the_way_out() {
    let fake = broken_bwrap_dir();
    let ws = tempfile::tempdir().unwrap();
    let marker = ws.path().join("ran");
    for kind in ["auto", "bwrap"] {
        let o = output(
            mlab()
                .env("PATH", path_with_first(fake.path()))
                .args(["sandbox-exec", "--sandbox", kind, "--workspace"])
                .arg(ws.path())
                .args(["--", "touch"])
                .arg(&marker),
        );
        assert!(!o.status.success(), "{kind}: it ran anyway");
        let err = text(&o.stderr);
        assert!(err.contains("cannot make a sandbox"), "{kind}: {err}");
        assert!(
            err.contains("non-privileged user namespaces"),
            "{kind}: {err}"
        );
        for way_out in ["install bubblewrap", "user namespaces", "--sandbox none"] {
            assert!(err.contains(way_out), "{kind}: no '{way_out}' in {err}");
        }
        assert!(!marker.exists(), "{kind}: the command ran unconfined");
    }
}

#[test]
fn a_missing_bwrap_is_never_replaced_by_no_sandbox() {
    let empty = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    let marker = ws.path().join("ran");
    // Only an empty folder on PATH: no bwrap anywhere.
    let o = output(
        mlab()
            .env("PATH", empty.path())
            .args(["sandbox-exec", "--workspace"])
            .arg(ws.path())
            .args(["--", "/bin/touch"])
            .arg(&marker),
    );
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("not installed"), "{err}");
    assert!(err.contains("install bubblewrap"), "{err}");
    assert!(!marker.exists());
}

#[test]
fn doctor_says_which_sandbox_auto_will_use() {
    let o = output(mlab().args(["doctor", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sandbox = v
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sandbox")
        .expect("a sandbox check")
        .clone();
    let detail = sandbox["detail"].as_str().unwrap();
    assert!(detail.starts_with("auto will"), "{detail}");

    let fake = broken_bwrap_dir();
    let o = output(
        mlab()
            .env("PATH", path_with_first(fake.path()))
            .args(["doctor", "--json"]),
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = v
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sandbox")
        .unwrap();
    assert_eq!(c["level"], "fail", "{c}");
    assert!(
        c["detail"].as_str().unwrap().contains("auto will refuse"),
        "{c}"
    );
    assert!(
        c["hint"].as_str().unwrap().contains("--sandbox none"),
        "{c}"
    );
}

#[test]
fn mem_limit_sizes_are_checked_on_the_command_line() {
    let ws = tempfile::tempdir().unwrap();
    let o = output(
        mlab()
            .args([
                "sandbox-exec",
                "--sandbox",
                "none",
                "--mem-limit",
                "8X",
                "--workspace",
            ])
            .arg(ws.path())
            .args(["--", "true"]),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("e.g. 8G or 512M"),
        "{}",
        text(&o.stderr)
    );
}
