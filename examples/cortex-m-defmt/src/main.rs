//! hardmine on a Cortex-M4F with cortex-m-rt and defmt: one training step's losses on a
//! fixed batch of 8 anchors, on f32 and on Q15.16 (`hardmine::Q16`, which formats itself with
//! defmt), and an OHEM selection, logged with defmt over semihosting (`defmt-semihosting`).
//! A bad input is logged as the `hardmine::Error` it returns (the core's `defmt` feature
//! derives `defmt::Format` for it). Exits through semihosting: 0 when every check held.
#![no_std]
#![no_main]

// cortex-m provides the single-core critical section defmt-semihosting takes.
use cortex_m as _;
use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use defmt_semihosting as _;
use hardmine::{GhmC, Ohem, Real, SigmoidFocal, Q16};

/// Eight anchors: logits and their 0/1 targets (two positives).
const LOGITS: [f64; 8] = [-4.0, -3.5, 2.0, -0.1, 1.2, -2.5, -6.0, 0.4];
const TARGETS: [f64; 8] = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0];

/// The batch in `T`.
fn batch<T: Real>() -> ([T; 8], [T; 8]) {
    (LOGITS.map(T::from_f64), TARGETS.map(T::from_f64))
}

/// Focal loss and GHM-C with their gradients, and OHEM's top 3 of the focal losses; logs
/// them and returns whether the gradients point the right way and the two paths agree.
fn step<T: Real + defmt::Format>(path: &str) -> Result<[f64; 2], hardmine::Error> {
    let (x, t) = batch::<T>();
    let mut grad = [T::ZERO; 8];
    let focal = SigmoidFocal::new(T::from_f64(0.25), T::from_f64(2.0))?;
    let loss = focal.value_and_grad(&x, &t, &mut grad)?;
    defmt::info!("{=str} focal loss {} grad[3] {}", path, loss, grad[3]);

    let mut ghm = GhmC::<T, 10>::new(10, T::from_f64(0.75), T::ONE)?;
    let mut g = [T::ZERO; 8];
    let ghm_loss = ghm.value_and_grad(&x, &t, None, &mut g)?;
    defmt::info!("{=str} GHM-C loss {} grad[3] {}", path, ghm_loss, g[3]);

    let mut per = [T::ZERO; 8];
    focal.per_element(&x, &t, &mut per)?;
    let picked = Ohem::<T, 8>::new(3)?.select(&per, None)?;
    defmt::info!("{=str} OHEM top 3 {=[?]}", path, picked.indices());
    let ok = grad[3] < T::ZERO && g[3] < T::ZERO && picked.len() == 3 && picked.contains(4);
    if !ok {
        defmt::error!("{=str}: a check failed", path);
        return Err(hardmine::Error::InvalidParameter("check"));
    }
    Ok([loss.to_f64(), ghm_loss.to_f64()])
}

#[entry]
fn main() -> ! {
    let f32_run = step::<f32>("f32");
    let q16_run = step::<Q16>("q16");
    // The fixed-point path agrees with f32 to a few LSBs of Q15.16.
    let agree = match (f32_run, q16_run) {
        (Ok(a), Ok(b)) => a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-3),
        _ => false,
    };
    // Bad input is an `Err`, never a panic.
    let refused = SigmoidFocal::new(0.25f32, 2.0).and_then(|f| f.value(&[0.0], &[2.0]));
    if let Err(e) = refused {
        defmt::info!("a target of 2 is refused: {}", e);
    }
    let ok = agree && refused.is_err();
    defmt::info!(
        "hardmine on cortex-m4: {=str}",
        if ok { "ok" } else { "FAILED" }
    );
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
