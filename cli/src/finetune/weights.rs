//! The pretrained weights: a small little-endian file, `data/pretrained.bin`, written by
//! `hardmine pretrain` and embedded in the command.
//!
//! ```text
//! bytes 0..8    magic "HMDET001"
//! bytes 8..12   u32: parameter count (DetectorSpec::params_len of the job's spec)
//! then          that many f32, in the spec's parameter order
//! ```

use anyhow::{bail, Context as _};
use hardmine::Real;
use hardmine_detect::DetectorSpec;

/// The committed weights.
const PRETRAINED: &[u8] = include_bytes!("../../../data/pretrained.bin");
/// The file's first bytes.
const MAGIC: &[u8; 8] = b"HMDET001";

/// The weights file's bytes for `params`.
pub fn encode(params: &[f32]) -> anyhow::Result<Vec<u8>> {
    let count = u32::try_from(params.len()).context("too many parameters")?;
    let mut out = Vec::with_capacity(12 + 4 * params.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&count.to_le_bytes());
    for p in params {
        out.extend_from_slice(&p.to_le_bytes());
    }
    Ok(out)
}

/// The parameters of a weights file, checked against `spec`.
pub fn decode(bytes: &[u8], spec: &DetectorSpec) -> anyhow::Result<Vec<f32>> {
    let Some((magic, rest)) = bytes.split_first_chunk::<8>() else {
        bail!("weights file: too short");
    };
    if magic != MAGIC {
        bail!("weights file: not a hardmine detector (bad magic)");
    }
    let Some((count, rest)) = rest.split_first_chunk::<4>() else {
        bail!("weights file: too short");
    };
    let count = u32::from_le_bytes(*count) as usize;
    if count != spec.params_len() || rest.len() != 4 * count {
        bail!(
            "weights file: {count} parameters in {} bytes, the detector has {}",
            rest.len(),
            spec.params_len()
        );
    }
    let params: Vec<f32> = rest
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some(i) = params.iter().position(|p| !p.is_finite()) {
        bail!("weights file: parameter {i} is not finite");
    }
    Ok(params)
}

/// The committed pretrained weights on path `T` (Q15.16 rounds each to nearest).
pub fn pretrained<T: Real>(spec: &DetectorSpec) -> anyhow::Result<Vec<T>> {
    Ok(decode(PRETRAINED, spec)?
        .into_iter()
        .map(|p| T::from_f64(f64::from(p)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_files() {
        let spec = DetectorSpec::tiny();
        let params: Vec<f32> = (0..spec.params_len())
            .map(|i| i as f32 * 0.5 - 3.0)
            .collect();
        let bytes = encode(&params).unwrap();
        assert_eq!(decode(&bytes, &spec).unwrap(), params);
        assert!(decode(&bytes[..bytes.len() - 1], &spec).is_err());
        assert!(decode(&bytes[..5], &spec).is_err());
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(decode(&bad, &spec).is_err());
        let mut nan = bytes;
        nan[12..16].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(decode(&nan, &spec).is_err());
    }

    #[test]
    fn the_committed_weights_fit_the_detector() {
        assert_eq!(
            pretrained::<f32>(&DetectorSpec::tiny()).unwrap().len(),
            DetectorSpec::tiny().params_len()
        );
    }
}
