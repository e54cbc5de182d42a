//! The library behind the `hardmine` command: the golden parity runner and its checker.

pub mod compare;
pub mod parity;
