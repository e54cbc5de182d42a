//! The core's checks and kernels the modules use, one piece each: validation from
//! `hardmine::check`, the natural logarithm (libm for floats, the exact fixed-point kernel
//! for Q15.16) and box access from `hardmine::kernels`.

pub(crate) use hardmine::check::{all_finite, length, parameter};
pub(crate) use hardmine::kernels::{box_at, ln};
