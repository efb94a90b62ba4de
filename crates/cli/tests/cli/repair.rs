//! Guards against repairs that make things worse: with the MANIFEST moved aside (the obvious
//! manual fix for a damaged one), no command deletes a snapshot, writers refuse naming the
//! MANIFEST when the log can no longer rebuild the state, and putting it back restores the store.

use crate::common::{Scratch, compacted_store, file_names, u};

#[test]
fn a_missing_manifest_deletes_no_snapshot_and_putting_it_back_restores_the_store() {
    let (sc, _) = compacted_store(false);
    let snapshots = |sc: &Scratch| {
        let dir = sc.store.join("snapshots");
        let mut all = Vec::new();
        for p in file_names(&dir) {
            all.extend(file_names(&dir.join(&p)).into_iter().map(|f| format!("{p}/{f}")));
        }
        all
    };
    let before = snapshots(&sc);
    assert!(!before.is_empty(), "the compaction wrote snapshots");
    let manifest = sc.store.join("MANIFEST");
    let aside = sc.path("MANIFEST.aside");
    std::fs::rename(&manifest, &aside).expect("move the MANIFEST aside");
    for (command, args) in [
        ("append", &["--stream", "s-0", "--type", "t"][..]),
        ("compact", &[][..]),
        ("verify", &[][..]),
        ("init", &[][..]),
    ] {
        let run = sc.run(command, args);
        run.code(3);
        assert!(run.one_error_line().contains("MANIFEST"), "{command}: {run:?}");
        assert_eq!(snapshots(&sc), before, "{command} removed a snapshot");
    }
    std::fs::rename(&aside, &manifest).expect("put it back");
    sc.run("append", &["--stream", "s-0", "--type", "t"]).ok();
    assert_eq!(snapshots(&sc), before);
    sc.run("verify", &[]).ok();
    assert_eq!(u(&sc.info(), "last_seq"), 201);
}
