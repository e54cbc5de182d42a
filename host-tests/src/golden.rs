//! The golden cases vendored in `golden/` at the project root.

use serde_json::Value;
use std::path::PathBuf;

/// The folder of vendored golden cases.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../golden")
}

/// Every case of every `*.jsonl` file, with its file name.
pub fn cases() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("golden/ is vendored in the repository")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&f).expect("readable golden file");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            out.push((
                name.clone(),
                serde_json::from_str(line).expect("golden line is JSON"),
            ));
        }
    }
    out
}
