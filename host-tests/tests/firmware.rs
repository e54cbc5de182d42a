//! The firmware's printed results (QEMU, Cortex-M4F) against the host build of the same
//! workload (`firmware/src/workload.rs`, included here): Q15.16 bit for bit, f32 within the
//! published f32 tolerance. Needs the firmware's output, so it is ignored by default;
//! `firmware/check.sh` runs it with `FIRMWARE_OUTPUT=path --ignored`.

#[path = "../../firmware/src/workload.rs"]
#[allow(dead_code)]
mod workload;

use hardmine::Q16;
use std::collections::BTreeMap;

type Results = BTreeMap<(String, String, usize), u64>;

fn host() -> Results {
    let mut out = Results::new();
    assert!(workload::run::<Q16>(&mut |name, i, b| {
        out.insert(("q16".into(), name.into(), i), b);
    }));
    let mut f = Results::new();
    assert!(workload::run::<f32>(&mut |name, i, b| {
        f.insert(("f32".into(), name.into(), i), b);
    }));
    out.extend(f);
    out
}

fn parse(text: &str) -> Results {
    text.lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            match parts.as_slice() {
                [path @ ("q16" | "f32"), name, i, bits] => Some((
                    (path.to_string(), name.to_string(), i.parse().ok()?),
                    u64::from_str_radix(bits, 16).ok()?,
                )),
                _ => None,
            }
        })
        .collect()
}

#[test]
#[ignore = "needs the firmware's QEMU output: run by firmware/check.sh"]
fn firmware_matches_the_host() {
    let path =
        std::env::var("FIRMWARE_OUTPUT").expect("FIRMWARE_OUTPUT names the QEMU output file");
    let text = std::fs::read_to_string(&path).expect("readable firmware output");
    assert!(
        text.lines().any(|l| l.trim() == "done true"),
        "the firmware finished cleanly"
    );
    let (fw, host) = (parse(&text), host());
    assert_eq!(fw.len(), host.len(), "same number of results");
    let (mut exact, mut close) = (0, 0);
    for (key, &h) in &host {
        let f = *fw
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} missing from the firmware output"));
        let (path, name, i) = key;
        if path == "q16" || name == "ohem" {
            assert_eq!(
                f, h,
                "{path} {name}[{i}] differs: firmware {f:#x}, host {h:#x}"
            );
            exact += 1;
        } else {
            // f32 values, and the f64 moving averages of the f32 path.
            let (a, b) = if name == "ghm_ema" {
                (f64::from_bits(f), f64::from_bits(h))
            } else {
                (
                    f64::from(f32::from_bits(f as u32)),
                    f64::from(f32::from_bits(h as u32)),
                )
            };
            assert!(
                (a - b).abs() <= 1e-5 * b.abs() + 1e-6,
                "f32 {name}[{i}]: firmware {a} vs host {b}"
            );
            close += 1;
        }
    }
    println!("firmware vs host: {exact} bit-exact, {close} within the f32 tolerance");
}
