//! Gradient harmonizing mechanism: GHM-C and GHM-R with bounded-memory histograms.

mod ghm_c;
mod ghm_r;
mod harmonized;
mod histogram;

pub use ghm_c::{Classification, GhmC};
pub use ghm_r::{GhmR, Regression};
pub use harmonized::{Ghm, GhmKind};
pub use histogram::{BinWeights, GradientDensity, GradientHistogram};
