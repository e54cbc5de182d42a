//! `ChannelBlockRotation`: Err for bad shapes, non-finite values and angles beyond the limit;
//! finite outputs and gradients otherwise; angle 0 is the identity; the backward pass is the
//! adjoint of the forward one (<R x, u> = <x, R^T u>).
#![no_main]
use hardmine::{ChannelBlockRotation, Error};
use hardmine_fuzz::{padded, MapShape};
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    shape: MapShape,
    blocks: u8,
    angles: Vec<f32>,
    values: Vec<i8>,
    up: Vec<i8>,
}

fuzz_target!(|inp: Input| {
    let (c, h, w) = inp.shape.dims(6, 9);
    let b = usize::from(inp.blocks % 6);
    let rot = match ChannelBlockRotation::<f64>::new(c, h, w, b) {
        Err(e) => return assert!(e == Error::InvalidParameter("blocks") && (b == 0 || b > c)),
        Ok(r) => r.with_max_angle(3.0).unwrap(),
    };
    let n = c * h * w;
    let x: Vec<f64> = padded(&inp.values, n, 3);
    let u: Vec<f64> = padded(&inp.up, n, -2);
    let angles: Vec<f64> = inp.angles.iter().map(|&a| f64::from(a)).collect();
    let mut out = vec![0.0; n];
    let r = rot.forward(&x, &angles, &mut out);
    if angles.len() != b {
        return assert_eq!(
            r,
            Err(Error::LengthMismatch {
                expected: b,
                got: angles.len()
            })
        );
    }
    if let Some(i) = angles.iter().position(|a| !a.is_finite()) {
        return assert_eq!(r, Err(Error::NonFinite { index: i }));
    }
    if angles.iter().any(|a| a.abs() > 3.0) {
        return assert_eq!(r, Err(Error::InvalidParameter("angles")));
    }
    r.unwrap();
    assert!(out.iter().all(|v| v.is_finite()));
    let (mut gx, mut ga) = (vec![0.0; n], vec![0.0; b]);
    rot.backward(&x, &angles, &u, &mut gx, &mut ga).unwrap();
    assert!(gx.iter().chain(&ga).all(|v| v.is_finite()));
    let lhs: f64 = out.iter().zip(&u).map(|(a, b)| a * b).sum();
    let rhs: f64 = x.iter().zip(&gx).map(|(a, b)| a * b).sum();
    assert!(
        (lhs - rhs).abs() <= 1e-9 * (1.0 + lhs.abs()),
        "adjoint: {lhs} vs {rhs}"
    );
    rot.forward(&x, &vec![0.0; b], &mut out).unwrap();
    assert_eq!(out, x, "angle 0 is the identity");
});
