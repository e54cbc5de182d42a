//! # hardmine-detect
//!
//! The geometry of a dense one-stage detector (RetinaNet's), allocation-free and `no_std`,
//! generic over [`hardmine::Real`] (`f32`, `f64`, [`hardmine::Q16`]) like the core:
//!
//! - [`Anchors`]: the anchors of one feature map, in mmdetection's `AnchorGenerator` order;
//! - [`MaxIouAssigner`]: RetinaNet's IoU assignment (mmdetection's `MaxIoUAssigner`), one
//!   [`Assignment`] per anchor;
//! - [`DeltaXywhCoder`]: the `(dx, dy, dw, dh)` box encoding and its decoding (mmdetection's
//!   `DeltaXYWHBBoxCoder`);
//! - [`PostProcess`]: inference post-processing of a [`HeadOutput`] (score threshold, pre-NMS
//!   top-k into a caller pool of [`Candidate`]s, decoding, per-class NMS, at most
//!   `max_per_img` [`Detection`]s), RetinaNet's `test_cfg`.
//!
//! Every entry point writes into caller buffers whose lengths it states (`*_len()` or the
//! slice's own length) and answers bad input with a [`hardmine::Error`], never a panic.
//!
//! This is the first step of issue 17. The next steps add the network whose weights are shared
//! across locations (a small convolutional backbone and a head with a classification and a box
//! branch), its forward and backward passes and SGD, the training scenes made from the vendored
//! digits, and the CLI's detection job and COCO-style evaluation.
//!
//! # Layout
//! Boxes are `[x1, y1, x2, y2]` in continuous coordinates (width `x2 - x1`, no "+1"), stored
//! flat: box `i` is `boxes[4 * i..4 * i + 4]`. Per-anchor, per-class scores are anchor-major:
//! `scores[i * num_classes + c]`, the layout of a head's output permuted to `(h, w, A, C)`.
//!
//! # Feature flags
//! - `defmt`: derives `defmt::Format` for the public types (and the core's), for firmware
//!   logging.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Panic-freedom (the core's DESIGN §4): no unwrap, expect, panic or panicking index outside tests.
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]
#![cfg_attr(not(test), deny(clippy::expect_used, clippy::panic))]

mod anchors;
mod assign;
mod coder;
mod conv;
mod detector;
mod math;
mod nms;
mod scalar;
mod sgd;

pub use anchors::{Anchors, MAX_RATIOS, MAX_SCALES};
pub use assign::{Assignment, Match, MaxIouAssigner};
pub use coder::DeltaXywhCoder;
pub use conv::{relu_backward, ConvSpec};
pub use detector::{DetectorSpec, MAX_LAYERS};
/// Q31.32, the master type of Q15.16 weights (re-exported from `fixed`).
pub use fixed::types::I32F32;
pub use nms::{Candidate, Detection, HeadOutput, PostProcess};
pub use scalar::{Master, Scalar};
pub use sgd::{init_master, Sgd, SgdStats};
