//! `--config device`: the on-device fine-tuning job (crate `hardmine-device`) on the host,
//! the same code the Cortex-M4 firmware (`firmware-finetune/`) runs, printing the same lines:
//! a header, then the Q15.16 run and the f32 run (each: the pretrained detector's AP on the
//! test scenes, then per method the fine-tuned loss, a fold of the head's weights and AP).
//! `hardmine pretrain --config device` writes its inputs: the packed digits and the
//! pretrained weights (f32 and their Q15.16 rounding).

use super::data::Digits;
use anyhow::Context as _;
use hardmine::{Real as _, Q16};
use hardmine_device::{pretrain, scene, Digits as Packed, NoClock, PARAMS};
use std::path::Path;

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
