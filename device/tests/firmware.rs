//! The fine-tuning firmware's printed lines (QEMU, Cortex-M4F) against this host's run of the
//! same job: every value, Q15.16 bit for bit, and f32 bit for bit too on a host build without
//! fused multiply-adds (the Cortex-M4F's single-precision FPU fuses none either: Rust never
//! contracts `a * b + c`, and the core's kernels fuse only where `FUSED_MULTIPLY_ADD` says).
//! Needs the firmware's output, so it is ignored by default; `firmware-finetune/check.sh`
//! runs it with `DEVICE_FINETUNE_OUTPUT=path --ignored`.

use hardmine::Q16;
use hardmine_device::{Digits, NoClock};

fn host() -> String {
    let digits = Digits::new(hardmine_device::DIGITS).unwrap();
    let mut out = String::new();
    hardmine_device::header(&mut out).unwrap();
    hardmine_device::run::<Q16>(&mut out, &mut NoClock, &digits, 1.0).unwrap();
    hardmine_device::run::<f32>(&mut out, &mut NoClock, &digits, 1.0).unwrap();
    out
}

/// The job's lines of a text (the firmware adds `icount`, `instructions`, `stack`, `done`).
fn job_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("device ") || l.starts_with("q16 ") || l.starts_with("f32 "))
        .collect()
}

#[test]
#[ignore = "needs the fine-tuning firmware's QEMU output: run by firmware-finetune/check.sh"]
fn firmware_matches_the_host() {
    let path = std::env::var("DEVICE_FINETUNE_OUTPUT")
        .expect("DEVICE_FINETUNE_OUTPUT names the QEMU output file");
    let text = std::fs::read_to_string(&path).expect("readable firmware output");
    assert!(
        text.lines().any(|l| l.trim() == "done true"),
        "the firmware finished cleanly"
    );
    let host = host();
    let (fw, host) = (job_lines(&text), job_lines(&host));
    assert_eq!(fw.len(), host.len(), "same number of lines");
    let (mut exact, mut values) = (0, 0);
    for (f, h) in fw.iter().zip(&host) {
        let (ft, ht): (Vec<&str>, Vec<&str>) = (
            f.split_whitespace().collect(),
            h.split_whitespace().collect(),
        );
        assert_eq!(
            ft.len(),
            ht.len(),
            "line shapes: firmware {f:?}, host {h:?}"
        );
        let f32_line = h.starts_with("f32 ");
        for (a, b) in ft.iter().zip(&ht) {
            values += 1;
            if f32_line && hardmine::FUSED_MULTIPLY_ADD {
                // This host fuses multiply-adds: f32 is not bit-exact; compare the names.
                if a.parse::<f64>().is_err() && u64::from_str_radix(a, 16).is_err() {
                    assert_eq!(a, b);
                }
                continue;
            }
            assert_eq!(a, b, "firmware {f:?}\n    host {h:?}");
            exact += 1;
        }
    }
    println!(
        "fine-tuning firmware vs host: {} lines, {exact} of {values} fields identical{}",
        host.len(),
        if hardmine::FUSED_MULTIPLY_ADD {
            " (f32 not compared: this host build fuses multiply-adds)"
        } else {
            ""
        }
    );
}

/// A diverging run (the rate times 10^6) is reported, with its method and step, as an error
/// line and an `Err`, never a panic or a hang.
#[test]
fn a_diverging_run_is_an_error_line() {
    let digits = Digits::new(hardmine_device::DIGITS).unwrap();
    for lr in [1e6, 1e9] {
        let mut out = String::new();
        let e = hardmine_device::run::<Q16>(&mut out, &mut NoClock, &digits, lr).unwrap_err();
        assert_eq!((e.path, e.method), ("q16", "bce"));
        let last = out.lines().last().unwrap();
        assert_eq!(last, e.to_string());
        assert!(last.starts_with("error q16 bce step "), "{last}");
        let mut out = String::new();
        let e = hardmine_device::run::<f32>(&mut out, &mut NoClock, &digits, lr).unwrap_err();
        assert_eq!(e.method, "bce");
        assert!(out.ends_with(&format!("{e}\n")));
    }
}

/// Pretraining gives the same weights and figures twice (the committed files are
/// regenerated in full, bit for bit, by `firmware-finetune/check.sh`).
#[test]
fn pretraining_is_deterministic() {
    let digits = Digits::new(hardmine_device::DIGITS).unwrap();
    let o = hardmine_device::pretrain::Options {
        steps: 300,
        ..Default::default()
    };
    let mut a = Box::new([0f32; hardmine_device::PARAMS]);
    let mut b = Box::new([0f32; hardmine_device::PARAMS]);
    let sa = hardmine_device::pretrain::run(&o, &digits, &mut a, &mut |_| {}).unwrap();
    let sb = hardmine_device::pretrain::run(&o, &digits, &mut b, &mut |_| {}).unwrap();
    assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits));
    assert_eq!(sa, sb);
}
