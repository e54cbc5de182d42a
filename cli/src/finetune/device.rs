//! `--config device`: the on-device fine-tuning job (crate `hardmine-device`) on the host,
//! the same code the Cortex-M4 firmware (`firmware-finetune/`) runs, printing the same lines:
//! a header, then the Q15.16 run and the f32 run (each: the pretrained detector's AP on the
//! test scenes, then per method the fine-tuned loss, a fold of the head's weights and AP).
//! `hardmine pretrain --config device` writes its inputs: the packed digits and the
//! pretrained weights (f32 and their Q15.16 rounding). `hardmine tune --config device` picks
//! each method's learning rate per path on the validation scenes and writes the table the
//! device build reads (`device/src/rates.rs`).

use super::data::Digits;
use anyhow::Context as _;
use hardmine::Error;
use hardmine::{Real as _, Q16};
use hardmine_device::eval::{self, Summary};
use hardmine_device::train::{self, Buffers, Method, METHODS};
use hardmine_device::{pretrain, scene, Detector, Digits as Packed, NoClock, PARAMS};
use std::fmt::Write as _;
use std::path::Path;

/// The device tuner's grid: the main tuner's.
pub const GRID: [f64; super::tune::GRID.len()] = super::tune::GRID;

/// The pretrained detector's validation AP on each path (Q15.16, f32): the search's baseline.
pub fn pretrained_val() -> anyhow::Result<[Summary; 2]> {
    fn on<T: hardmine_device::Path>(digits: &Packed<'_>) -> anyhow::Result<Summary> {
        let det = Detector::<T>::new()?;
        let mut params = Box::new([T::ZERO; PARAMS]);
        T::pretrained(params.as_mut_slice())?;
        let mut b = Box::new(Buffers::<T>::new());
        Ok(eval::validate(&det, &params, digits, &mut b)?)
    }
    let digits = Packed::new(hardmine_device::DIGITS).context("data/device_digits.bin")?;
    Ok([on::<Q16>(&digits)?, on::<f32>(&digits)?])
}

/// One method's search on one path.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceTuned {
    /// The path's name (`q16`, `f32`).
    pub path: &'static str,
    /// The method.
    pub method: Method,
    /// The chosen rate.
    pub lr: f64,
    /// The validation AP50 and AP at each grid rate (`None`: diverged).
    pub val: Vec<Option<Summary>>,
}

/// The rule: the highest validation AP50; on a tie the higher AP; then the smaller rate.
/// `None` when every rate diverged.
pub fn pick(val: &[Option<Summary>]) -> Option<f64> {
    GRID.iter()
        .zip(val)
        .filter_map(|(&lr, s)| s.map(|s| (lr, s)))
        .fold(None, |best: Option<(f64, Summary)>, (lr, s)| match best {
            Some((_, b)) if (b.ap50, b.ap) >= (s.ap50, s.ap) => best,
            _ => Some((lr, s)),
        })
        .map(|(lr, _)| lr)
}

/// The validation AP after fine-tuning with `method` at `lr` on path `T` (`None`: diverged).
fn validated<T: hardmine_device::Path>(
    digits: &Packed<'_>,
    method: Method,
    lr: f64,
) -> anyhow::Result<Option<Summary>> {
    let det = Detector::<T>::new()?;
    let mut params = Box::new([T::ZERO; PARAMS]);
    T::pretrained(params.as_mut_slice())?;
    let mut b = Box::new(Buffers::<T>::new());
    match train::fine_tune(&det, &mut params, digits, method, lr, &mut b) {
        Ok(_) => Ok(Some(eval::validate(&det, &params, digits, &mut b)?)),
        Err((_, Error::InvalidParameter("diverged"))) => Ok(None),
        Err((step, e)) => anyhow::bail!("{} {} lr {lr} step {step}: {e}", T::NAME, method.name()),
    }
}

/// Every (path, method, rate) of the grid on the validation scenes, on `threads` threads;
/// the chosen rate per path and method (Q15.16 then f32, each in [`METHODS`] order).
pub fn tune(
    threads: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> anyhow::Result<Vec<DeviceTuned>> {
    let digits = Packed::new(hardmine_device::DIGITS).context("data/device_digits.bin")?;
    let jobs: Vec<(bool, Method, f64)> = [true, false]
        .into_iter()
        .flat_map(|q| {
            METHODS
                .into_iter()
                .flat_map(move |m| GRID.map(|lr| (q, m, lr)))
        })
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<anyhow::Result<Option<Summary>>>>> =
        jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(q, m, lr)) = jobs.get(i) else {
                    break;
                };
                let r = if q {
                    validated::<Q16>(&digits, m, lr)
                } else {
                    validated::<f32>(&digits, m, lr)
                };
                if let Some(slot) = results.get(i) {
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                }
                progress(
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                    jobs.len(),
                );
            });
        }
    });
    let mut vals = Vec::with_capacity(jobs.len());
    for r in results {
        let r = r.into_inner().unwrap_or_else(|p| p.into_inner());
        vals.push(r.context("a tuning job did not run")??);
    }
    jobs.chunks(GRID.len())
        .zip(vals.chunks(GRID.len()))
        .map(|(js, val)| {
            let (q, method, _) = js.first().copied().context("empty grid")?;
            let path = if q { "q16" } else { "f32" };
            let lr = pick(val).with_context(|| {
                format!(
                    "{path} {}: every learning rate of the grid diverged",
                    method.name()
                )
            })?;
            Ok(DeviceTuned {
                path,
                method,
                lr,
                val: val.to_vec(),
            })
        })
        .collect()
}

/// The generated `device/src/rates.rs` of a search ([`tune`]'s rows).
pub fn rates_file(rows: &[DeviceTuned], pretrained: &[Summary; 2]) -> anyhow::Result<String> {
    let mut s = String::new();
    writeln!(
        s,
        "//! The learning rate of each method on each path, picked on the validation scenes\n\
         //! ([`eval::validate`](crate::eval::validate): {} target-domain scenes of validation\n\
         //! digits, seed {:#x}) after the job's {} fine-tuning steps, from the main tuner's grid.\n\
         //! Rule: the highest validation AP50; on a tie the higher AP; then the smaller rate;\n\
         //! a diverged run is out. Written by `hardmine tune --config device`; do not edit\n\
         //! (`firmware-finetune/check.sh` regenerates it and compares).\n",
        eval::VAL_SCENES,
        eval::VAL_SEED,
        train::STEPS
    )?;
    writeln!(s, "/// The grid searched.")?;
    writeln!(s, "pub const GRID: [f64; {}] = {:?};", GRID.len(), GRID)?;
    for ((path, name), base) in [("q16", "Q16"), ("f32", "F32")].into_iter().zip(pretrained) {
        let rows: Vec<&DeviceTuned> = rows.iter().filter(|r| r.path == path).collect();
        let names: Vec<&str> = rows.iter().map(|r| r.method.name()).collect();
        if names != METHODS.map(Method::name) {
            anyhow::bail!("{path}: the search's methods are not the job's");
        }
        writeln!(
            s,
            "\n/// {path}: the chosen rate per method ({}).",
            names.join(", ")
        )?;
        let lrs: Vec<String> = rows.iter().map(|r| format!("{:?}", r.lr)).collect();
        writeln!(
            s,
            "pub const {name}: [f64; {}] = [{}];",
            rows.len(),
            lrs.join(", ")
        )?;
        writeln!(
            s,
            "/// {path}: the pretrained detector's validation AP50 and AP (before fine-tuning)."
        )?;
        writeln!(
            s,
            "pub const {name}_VAL_PRETRAINED: [f64; 2] = [{:?}, {:?}];",
            base.ap50, base.ap
        )?;
        for (what, field) in [("AP50", 0), ("AP", 1)] {
            writeln!(
                s,
                "/// {path}: validation {what} per method (rows) at each grid rate (columns); \
                 `-1.0`: diverged."
            )?;
            writeln!(
                s,
                "pub const {name}_VAL_{what}: [[f64; {}]; {}] = [",
                GRID.len(),
                rows.len()
            )?;
            for r in &rows {
                let v: Vec<String> = r
                    .val
                    .iter()
                    .map(|v| {
                        let x = v.map_or(-1.0, |v| if field == 0 { v.ap50 } else { v.ap });
                        format!("{x:?}")
                    })
                    .collect();
                writeln!(s, "    [{}],", v.join(", "))?;
            }
            writeln!(s, "];")?;
        }
    }
    Ok(s)
}

/// The job's lines, as the firmware prints them (`lr_scale` 1; the firmware's `diverge`
/// build uses another to show a diverging run's report).
pub fn run(lr_scale: f64) -> anyhow::Result<String> {
    let digits = Packed::new(hardmine_device::DIGITS).context("data/device_digits.bin")?;
    let mut out = String::new();
    hardmine_device::header(&mut out)?;
    let q = hardmine_device::run::<Q16>(&mut out, &mut NoClock, &digits, lr_scale);
    let f = q.and_then(|_| hardmine_device::run::<f32>(&mut out, &mut NoClock, &digits, lr_scale));
    match f {
        Ok(_) => Ok(out),
        Err(e) => {
            print!("{out}");
            anyhow::bail!("{e}")
        }
    }
}

/// The vendored digits packed in 5 bits a pixel (`data/device_digits.bin`).
pub fn packed_digits() -> anyhow::Result<Vec<u8>> {
    let d = Digits::load()?;
    let mut out = vec![0u8; 10 + scene::PACKED * d.len()];
    scene::pack(&d.images, &d.labels, &mut out)?;
    Ok(out)
}

/// The Q15.16 weights file of f32 weights: each rounded to nearest.
pub fn q16_file(params: &[f32]) -> anyhow::Result<Vec<u8>> {
    let count = u32::try_from(params.len()).context("too many parameters")?;
    let mut out = b"HMDQ1601".to_vec();
    out.extend_from_slice(&count.to_le_bytes());
    for &p in params {
        out.extend_from_slice(&Q16::from_f64(f64::from(p)).to_bits().to_le_bytes());
    }
    Ok(out)
}

/// Pretrains the device's detector and writes `dir/device_digits.bin`,
/// `dir/device_pretrained.bin` and `dir/device_pretrained_q16.bin`; returns a line saying
/// what was written and the source validation AP.
pub fn pretrain_files(
    opts: &pretrain::Options,
    dir: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<String> {
    let digits_bytes = packed_digits()?;
    let digits = Packed::new(&digits_bytes)?;
    let mut params = Box::new([0.0f32; PARAMS]);
    let steps = opts.steps;
    let summary = pretrain::run(opts, &digits, &mut params, &mut |s| progress(s, steps))?;
    let weights = super::weights::encode(params.as_slice())?;
    let q16 = q16_file(params.as_slice())?;
    for (name, bytes) in [
        ("device_digits.bin", &digits_bytes),
        ("device_pretrained.bin", &weights),
        ("device_pretrained_q16.bin", &q16),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, bytes).with_context(|| p.display().to_string())?;
    }
    Ok(format!(
        "{}: device digits ({} bytes), weights ({} parameters, {} + {} bytes); source validation \
         AP {:.3}, AP50 {:.3}",
        dir.display(),
        digits_bytes.len(),
        PARAMS,
        weights.len(),
        q16.len(),
        summary.ap,
        summary.ap50
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coco;
    use hardmine_device::eval::{self, Event};
    use hardmine_device::train::Buffers;
    use hardmine_device::Detector;

    fn s(ap50: f64, ap: f64) -> Option<Summary> {
        Some(Summary { ap50, ap })
    }

    #[test]
    fn the_rule_takes_the_best_ap50_then_ap_then_the_smaller_rate() {
        // GRID: 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1.
        let v = [
            s(0.4, 0.2),
            s(0.5, 0.1),
            s(0.5, 0.3),
            s(0.5, 0.3),
            None,
            s(0.1, 0.9),
            None,
        ];
        assert_eq!(
            pick(&v),
            Some(0.001),
            "AP50 tie: the higher AP; then the smaller rate"
        );
        let v = [None, None, None, None, None, None, s(0.0, 0.0)];
        assert_eq!(pick(&v), Some(0.1), "a diverged run is out");
        assert_eq!(pick(&[None; GRID.len()]), None);
    }

    /// The committed table's rates are the rule's choice on its own validation figures (the
    /// figures themselves are regenerated and compared by `firmware-finetune/check.sh`).
    #[test]
    fn the_committed_rates_follow_the_rule() {
        use hardmine_device::rates;
        assert_eq!(rates::GRID, GRID);
        for (lrs, ap50, ap) in [
            (rates::Q16, rates::Q16_VAL_AP50, rates::Q16_VAL_AP),
            (rates::F32, rates::F32_VAL_AP50, rates::F32_VAL_AP),
        ] {
            for ((lr, a50), a) in lrs.iter().zip(ap50).zip(ap) {
                let val: Vec<Option<Summary>> = a50
                    .iter()
                    .zip(a)
                    .map(|(&ap50, ap)| (ap50 >= 0.0).then_some(Summary { ap50, ap }))
                    .collect();
                assert_eq!(pick(&val), Some(*lr));
            }
        }
    }

    #[test]
    fn the_rates_file_is_rust_the_device_crate_reads() {
        let val = vec![s(0.5, 0.25); GRID.len()];
        let rows: Vec<DeviceTuned> = ["q16", "f32"]
            .into_iter()
            .flat_map(|path| {
                let val = val.clone();
                METHODS.map(move |method| DeviceTuned {
                    path,
                    method,
                    lr: 0.01,
                    val: val.clone(),
                })
            })
            .collect();
        let text = rates_file(
            &rows,
            &[Summary {
                ap50: 0.5,
                ap: 0.25,
            }; 2],
        )
        .unwrap();
        assert!(text.contains("pub const Q16: [f64; 4] = [0.01, 0.01, 0.01, 0.01];"));
        assert!(text.contains("pub const F32_VAL_PRETRAINED: [f64; 2] = [0.5, 0.25];"));
        assert!(rates_file(
            &rows[..4],
            &[Summary {
                ap50: 0.5,
                ap: 0.25
            }; 2]
        )
        .is_err());
    }

    #[test]
    fn the_committed_digits_are_the_csv_packed() {
        assert!(
            packed_digits().unwrap() == hardmine_device::DIGITS,
            "data/device_digits.bin is stale: run `hardmine pretrain --config device`"
        );
    }

    #[test]
    fn the_committed_q16_weights_are_the_f32_ones_rounded() {
        let mut f = [0.0f32; PARAMS];
        <f32 as hardmine_device::Path>::pretrained(&mut f).unwrap();
        assert_eq!(q16_file(&f).unwrap(), hardmine_device::PRETRAINED_Q16);
    }

    /// The device's AP, on the detections it evaluated, against the CLI's COCO evaluator
    /// (itself checked against pycocotools): the pretrained detector on the test scenes.
    fn cross_check<T: hardmine_device::Path>() {
        let digits = Packed::new(hardmine_device::DIGITS).unwrap();
        let det = Detector::<T>::new().unwrap();
        let mut params = [T::ZERO; PARAMS];
        T::pretrained(&mut params).unwrap();
        let mut b = Box::new(Buffers::<T>::new());
        let (mut gts, mut dets) = (Vec::new(), Vec::new());
        let s = eval::evaluate(&det, &params, &digits, &mut b, &mut |e| match e {
            Event::Truth { image, class, bbox } => {
                gts.push(coco::GroundTruth { image, class, bbox })
            }
            Event::Detection {
                image,
                class,
                bbox,
                score,
            } => dets.push(coco::Detection {
                image,
                class,
                bbox,
                score,
            }),
        })
        .unwrap();
        assert!(!dets.is_empty() && !gts.is_empty());
        let c = coco::evaluate(eval::TEST_SCENES, hardmine_device::CLASSES, &gts, &dets).unwrap();
        assert_eq!(s.ap50, c.ap50, "AP50: device {} vs COCO {}", s.ap50, c.ap50);
        assert_eq!(s.ap, c.ap, "AP: device {} vs COCO {}", s.ap, c.ap);
        assert!(s.ap50 > 0.0);
    }

    #[test]
    fn device_ap_is_the_coco_evaluators_q16() {
        cross_check::<Q16>();
    }

    #[test]
    fn device_ap_is_the_coco_evaluators_f32() {
        cross_check::<f32>();
    }
}
