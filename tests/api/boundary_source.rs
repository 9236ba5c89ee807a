//! Only the tenancy crate may open a tenant transaction: no other crate names the
//! constructor of the opener.

use std::path::Path;

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn only_tenancy_issues_tenant_openers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    let needle = ["issued_by", "_tenancy("].concat();
    let offenders: Vec<_> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            text.contains(&needle)
                && !path.starts_with(root.join("crates/tenancy"))
                && !path.ends_with("crates/kernel/src/tenant.rs")
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "tenant transactions opened outside tenancy: {offenders:?}"
    );
    assert!(files.iter().any(|p| {
        p.starts_with(root.join("crates/tenancy"))
            && std::fs::read_to_string(p)
                .unwrap_or_default()
                .contains(&needle)
    }));
}

/// Lines past which a source file says in its header why it is that long.
const LONG_FILE_LINES: usize = 600;

#[test]
fn a_source_file_past_600_lines_says_why_in_its_header() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["crates", "tests", "migration"] {
        rust_files(&root.join(dir), &mut files);
    }
    let unexplained: Vec<_> = files
        .iter()
        .filter(|path| !path.components().any(|c| c.as_os_str() == "target"))
        .filter_map(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines = text.lines().count();
            let header: String = text
                .lines()
                .take_while(|line| line.starts_with("//!"))
                .collect();
            (lines > LONG_FILE_LINES && !header.contains("Longer than 600 lines"))
                .then(|| format!("{} ({lines} lines)", path.display()))
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "split these, or say why in the header (\"Longer than 600 lines on purpose: …\"): {unexplained:?}"
    );
}
