//! The losses' bodies, generic over the path (`f32` or `Q16`): pointers checked, the core
//! loss built from validated integers and parameters, then [`run_loss`].
//!
//! # Safety (every function)
//! Every non-null pointer points to as many values as its C function documents, readable
//! (inputs) or writable (outputs), for the duration of the call.

use super::{factor, input, optional, product, reduction, reg, run_loss, status, HmStatus, Run};
use hardmine::{
    Asl1, BceWithLogits, Error, Real, SigmoidFocal, SigmoidFocalLabels, SmoothL1,
    SoftmaxCrossEntropy, SoftmaxFocal,
};

/// A loss built by the core, given the reduction and optional factor.
fn with<L>(
    made: Result<L, Error>,
    factor: Option<impl FnOnce(L) -> Result<L, Error>>,
) -> Result<L, HmStatus> {
    let l = made.map_err(status)?;
    match factor {
        Some(f) => f(l).map_err(status),
        None => Ok(l),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn bce<T: Real>(
    logits: *const T,
    targets: *const T,
    weights: *const T,
    n: usize,
    red: i32,
    avg_factor: *const T,
    loss: *mut T,
    grad: *mut T,
    elements: *mut T,
) -> Result<(), HmStatus> {
    let red = reduction(red)?;
    // SAFETY: per the module's contract.
    let (x, t, w, f) = unsafe {
        (
            input(logits, n)?,
            input(targets, n)?,
            optional(weights, n)?,
            factor(avg_factor)?,
        )
    };
    let l = BceWithLogits::new().with_reduction(red);
    let l = match f {
        Some(f) => l.with_avg_factor(f).map_err(status)?,
        None => l,
    };
    let ins = [reg(x), reg(t), reg(w.unwrap_or(&[]))];
    // SAFETY: per the module's contract.
    unsafe {
        run_loss(&ins, red, loss, grad, n, elements, n, |r| match r {
            Run::Value => l.value(x, t, w),
            Run::Grad(g) => l.value_and_grad(x, t, w, g),
            Run::Elements(e) => l.per_element(x, t, w, e).map(|()| T::ZERO),
        })
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn focal<T: Real>(
    logits: *const T,
    targets: *const T,
    n: usize,
    alpha: T,
    gamma: T,
    red: i32,
    avg_factor: *const T,
    loss: *mut T,
    grad: *mut T,
    elements: *mut T,
) -> Result<(), HmStatus> {
    let red = reduction(red)?;
    // SAFETY: per the module's contract.
    let (x, t, f) = unsafe { (input(logits, n)?, input(targets, n)?, factor(avg_factor)?) };
    let l = with(
        SigmoidFocal::new(alpha, gamma).map(|l| l.with_reduction(red)),
        f.map(|f| move |l: SigmoidFocal<T>| l.with_avg_factor(f)),
    )?;
    // SAFETY: per the module's contract.
    unsafe {
        run_loss(
            &[reg(x), reg(t)],
            red,
            loss,
            grad,
            n,
            elements,
            n,
            |r| match r {
                Run::Value => l.value(x, t),
                Run::Grad(g) => l.value_and_grad(x, t, g),
                Run::Elements(e) => l.per_element(x, t, e).map(|()| T::ZERO),
            },
        )
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn focal_labels<T: Real>(
    logits: *const T,
    labels: *const i32,
    label_weights: *const T,
    rows: usize,
    classes: usize,
    alpha: T,
    class_alpha: *const T,
    gamma: T,
    red: i32,
    avg_factor: *const T,
    loss: *mut T,
    grad: *mut T,
    elements: *mut T,
) -> Result<(), HmStatus> {
    let red = reduction(red)?;
    let n = product(rows, classes)?;
    // SAFETY: per the module's contract.
    let (x, y, w, ca, f) = unsafe {
        (
            input(logits, n)?,
            input(labels, rows)?,
            optional(label_weights, rows)?,
            optional(class_alpha, classes)?,
            factor(avg_factor)?,
        )
    };
    let focal = SigmoidFocal::new(alpha, gamma)
        .map_err(status)?
        .with_reduction(red);
    let mut l = SigmoidFocalLabels::new(focal, classes).map_err(status)?;
    if let Some(ca) = ca {
        l = l.with_class_alpha(ca).map_err(status)?;
    }
    if let Some(f) = f {
        l = l.with_avg_factor(f).map_err(status)?;
    }
    let ins = [
        reg(x),
        reg(y),
        reg(w.unwrap_or(&[])),
        reg(ca.unwrap_or(&[])),
    ];
    // SAFETY: per the module's contract; labels are checked against outputs too.
    unsafe {
        run_loss(&ins, red, loss, grad, n, elements, n, |r| match r {
            Run::Value => l.value(x, y, w),
            Run::Grad(g) => l.value_and_grad(x, y, w, g),
            Run::Elements(e) => l.per_element(x, y, w, e).map(|()| T::ZERO),
        })
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn softmax_ce<T: Real>(
    logits: *const T,
    labels: *const i32,
    rows: usize,
    classes: usize,
    red: i32,
    avg_factor: *const T,
    loss: *mut T,
    grad: *mut T,
    elements: *mut T,
) -> Result<(), HmStatus> {
    let red = reduction(red)?;
    let n = product(rows, classes)?;
    // SAFETY: per the module's contract.
    let (x, y, f) = unsafe { (input(logits, n)?, input(labels, rows)?, factor(avg_factor)?) };
    let l = SoftmaxCrossEntropy::new(classes)
        .map_err(status)?
        .with_reduction(red);
    let l = match f {
        Some(f) => l.with_avg_factor(f).map_err(status)?,
        None => l,
    };
    // SAFETY: per the module's contract.
    unsafe {
        run_loss(
            &[reg(x), reg(y)],
            red,
            loss,
            grad,
            n,
            elements,
            rows,
            |r| match r {
                Run::Value => l.value(x, y),
                Run::Grad(g) => l.value_and_grad(x, y, g),
                Run::Elements(e) => l.per_element(x, y, e).map(|()| T::ZERO),
            },
        )
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn softmax_focal<T: Real>(
    logits: *const T,
    labels: *const i32,
    rows: usize,
    classes: usize,
    alpha: T,
    gamma: T,
    red: i32,
    avg_factor: *const T,
    loss: *mut T,
    grad: *mut T,
    elements: *mut T,
) -> Result<(), HmStatus> {
    let red = reduction(red)?;
    let n = product(rows, classes)?;
    // SAFETY: per the module's contract.
    let (x, y, f) = unsafe { (input(logits, n)?, input(labels, rows)?, factor(avg_factor)?) };
    let l = with(
        SoftmaxFocal::new(alpha, gamma, classes).map(|l| l.with_reduction(red)),
        f.map(|f| move |l: SoftmaxFocal<T>| l.with_avg_factor(f)),
    )?;
    // SAFETY: per the module's contract.
    unsafe {
        run_loss(
            &[reg(x), reg(y)],
            red,
            loss,
            grad,
            n,
            elements,
            rows,
            |r| match r {
                Run::Value => l.value(x, y),
                Run::Grad(g) => l.value_and_grad(x, y, g),
                Run::Elements(e) => l.per_element(x, y, e).map(|()| T::ZERO),
            },
        )
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn smooth_l1<T: Real>(
    pred: *const T,
    target: *const T,
    n: usize,
    beta: T,
    red: i32,
    avg_factor: *const T,
    loss: *mut T,
    grad: *mut T,
    elements: *mut T,
) -> Result<(), HmStatus> {
    let red = reduction(red)?;
    // SAFETY: per the module's contract.
    let (p, t, f) = unsafe { (input(pred, n)?, input(target, n)?, factor(avg_factor)?) };
    let l = with(
        SmoothL1::new(beta).map(|l| l.with_reduction(red)),
        f.map(|f| move |l: SmoothL1<T>| l.with_avg_factor(f)),
    )?;
    // SAFETY: per the module's contract.
    unsafe {
        run_loss(
            &[reg(p), reg(t)],
            red,
            loss,
            grad,
            n,
            elements,
            n,
            |r| match r {
                Run::Value => l.value(p, t),
                Run::Grad(g) => l.value_and_grad(p, t, g),
                Run::Elements(e) => l.per_element(p, t, e).map(|()| T::ZERO),
            },
        )
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn asl1<T: Real>(
    pred: *const T,
    target: *const T,
    n: usize,
    mu: T,
    red: i32,
    avg_factor: *const T,
    loss: *mut T,
    grad: *mut T,
    elements: *mut T,
) -> Result<(), HmStatus> {
    let red = reduction(red)?;
    // SAFETY: per the module's contract.
    let (p, t, f) = unsafe { (input(pred, n)?, input(target, n)?, factor(avg_factor)?) };
    let l = with(
        Asl1::new(mu).map(|l| l.with_reduction(red)),
        f.map(|f| move |l: Asl1<T>| l.with_avg_factor(f)),
    )?;
    // SAFETY: per the module's contract.
    unsafe {
        run_loss(
            &[reg(p), reg(t)],
            red,
            loss,
            grad,
            n,
            elements,
            n,
            |r| match r {
                Run::Value => l.value(p, t),
                Run::Grad(g) => l.value_and_grad(p, t, g),
                Run::Elements(e) => l.per_element(p, t, e).map(|()| T::ZERO),
            },
        )
    }
}
