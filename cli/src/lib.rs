//! The library behind the `hardmine` command: the golden parity runner and its checker, the
//! throughput bench, and the on-line fine-tuning demo.

pub mod bench;
pub mod case;
pub mod coco;
pub mod compare;
pub mod finetune;
pub mod op;
pub mod parity;
pub mod plot;
pub mod svg;
pub mod tolerance;
