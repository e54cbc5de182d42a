//! Shared helpers of the host tests: the tolerance table, naive f64 oracles, input
//! generators and the vendored golden cases.

pub mod golden;
pub mod random;
pub mod reference;
pub mod tolerance;
