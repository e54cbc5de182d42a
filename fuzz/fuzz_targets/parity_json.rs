//! The parity runner's JSON input: any bytes as a case line, on every path, never panic; the
//! answer names the case's id and is either results or an error line.
#![no_main]
use hardmine_cli::parity::{run_case, Path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(case) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for path in [Path::F64, Path::F32, Path::Fixed, Path::Gpu] {
        let lines = run_case(&case, path);
        assert!(!lines.is_empty());
        for l in &lines {
            assert_eq!(
                l.get("id"),
                Some(case.get("id").unwrap_or(&serde_json::Value::Null))
            );
        }
        let _ = hardmine_cli::compare::check_case(&case, &lines, path);
    }
});
