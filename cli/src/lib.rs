//! The library behind the `hardmine` command: the golden parity runner and its checker, and the
//! on-line fine-tuning demo.

pub mod bench;
pub mod compare;
pub mod finetune;
pub mod parity;
pub mod plot;
pub mod svg;
