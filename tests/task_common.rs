//! The benchmarks' shared Python helpers (`benchmarks/_common/`) as graders
//! see them: every eval.py imports `mlab_eval` from beside its task folder,
//! so the grader sandbox must show that folder, read-only, even when the
//! checkout lives in the home folder, which sandboxed code cannot see.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use common::{mlab, output, text};

#[test]
fn graders_import_the_shared_helpers_read_only_from_a_checkout_in_the_hidden_home() {
    common::need_bwrap();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().canonicalize().unwrap();
    // A checkout in the home folder, which the sandbox hides.
    let home = root.join("home");
    let repo = home.join("src/mlab/benchmarks");
    let script = repo.join("toy/script");
    std::fs::create_dir_all(&script).unwrap();
    std::fs::create_dir_all(repo.join("toy/env")).unwrap();
    common::copy_tree(
        &common::benchmarks_dir().join("_common"),
        &repo.join("_common"),
    );
    std::fs::write(
        script.join("eval.py"),
        "import sys\nfrom pathlib import Path\n\
         sys.path.insert(0, str(Path(__file__).resolve().parents[2] / '_common'))\n\
         import mlab_eval\n\
         print('answer file', mlab_eval.ANSWER_FILE)\n\
         try:\n    open(mlab_eval.__file__, 'a').write('# changed')\n    print('WROTE')\n\
         except OSError as e:\n    print('refused', e.errno)\n\
         try:\n    open(Path(mlab_eval.__file__).parents[2] / 'README.md').read()\n    print('LEAK')\n\
         except OSError:\n    print('rest of the checkout hidden')\n",
    )
    .unwrap();
    std::fs::write(repo.parent().unwrap().join("README.md"), "x").unwrap();
    let snapshot = root.join("logs/step_final_files");
    std::fs::create_dir_all(&snapshot).unwrap();

    let o = output(
        mlab()
            .env("HOME", &home)
            .args(["sandbox-exec", "--sandbox", "bwrap", "--grader"])
            .arg(&snapshot)
            .arg(&script)
            .arg(repo.join("toy/env"))
            .arg("--python")
            .arg(common::python())
            .args(["--", "python"])
            .arg(script.join("eval.py")),
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("answer file answer.csv"), "{out}");
    assert!(
        out.contains("refused 30") && !out.contains("WROTE"),
        "{out}"
    );
}
