//! # hardmine-detect
//!
//! A dense one-stage detector (RetinaNet's), allocation-free and `no_std`,
//! generic over [`hardmine::Real`] (`f32`, `f64`, [`hardmine::Q16`]) like the core:
//!
//! - [`Anchors`]: the anchors of one feature map, in mmdetection's `AnchorGenerator` order;
//! - [`MaxIouAssigner`]: RetinaNet's IoU assignment (mmdetection's `MaxIoUAssigner`), one
//!   [`Assignment`] per anchor;
//! - [`DeltaXywhCoder`]: the `(dx, dy, dw, dh)` box encoding and its decoding (mmdetection's
//!   `DeltaXYWHBBoxCoder`);
//! - [`PostProcess`]: inference post-processing of a [`HeadOutput`] (score threshold, pre-NMS
//!   top-k into a caller pool of [`Candidate`]s, decoding, per-class NMS, at most
//!   `max_per_img` [`Detection`]s), RetinaNet's `test_cfg`;
//! - the network, [`DetectorSpec`]: a backbone of 3x3 convolutions ([`ConvSpec`], ReLU) and
//!   a RetinaNet-style head of two 3x3 convolutions on its last feature map, one predicting
//!   `A * C` classification logits and one `A * 4` box deltas per location; forward and
//!   backward passes over the whole map and at one location (for A-Fast-RCNN's adversaries,
//!   which edit the head's 3 x 3 receptive field around a positive);
//! - A-Fast-RCNN's learned adversaries on the head's 3 x 3 window around a positive: [`Asdn`]
//!   (which cells to drop) and [`Astn`] (one rotation angle per channel block, within
//!   +-10 degrees), with [`patch_gradient`] (the head's gradient with respect to its window)
//!   and the layout helpers [`to_chw`], [`from_chw`], [`apply_mask`];
//! - [`Sgd`]: SGD with momentum and weight decay (PyTorch's), over slices, with a wider
//!   [`Master`] copy of the weights for Q15.16 (Q31.32, [`I32F32`]) and [`SgdStats`] of the
//!   updates that rounded away.
//!
//! Every entry point writes into caller buffers whose lengths it states (`*_len()` or the
//! slice's own length) and answers bad input with a [`hardmine::Error`], never a panic.
//!
//! # The network, and why these sizes
//! A one-stage detector predicts at every location of a feature map with the same weights:
//! convolutions, so that a digit is detected the same way wherever it sits, and the whole
//! model is a few thousand parameters however large the image. The backbone turns pixels
//! into features at stride 4; the head's classification branch scores `A` anchors for `C`
//! classes at each feature location and its box branch refines each anchor
//! ([`DeltaXywhCoder`] deltas), in the anchor-major order of [`Anchors`] and [`HeadOutput`]
//! (no permutation between the head and the post-processing).
//!
//! [`DetectorSpec::tiny`], the CLI's configuration: an 80 x 80 grey image, conv 1 -> 8
//! stride 2, conv 8 -> 16 stride 2, conv 16 -> 16 stride 1 (a 20 x 20 x 16 map at stride 4),
//! then the head, 16 -> 6 * 10 and 16 -> 6 * 4. The backbone's receptive field is 15 px
//! (3, then 7, then 15) and the head's 3x3 on top makes 23 px, centred on each location:
//! between the 8 and 16 px digits the scenes hold, so a location sees a whole digit and a
//! little context, while one feature cell (4 px) is small against a digit, so neighbouring
//! digits fall on different locations. Two stride-2 layers keep the work small: about 6.3 M
//! multiply-adds per image (1.50 M in the backbone, 4.84 M in the head; counted from the
//! shapes, not timed on a device), and the memory below.
//!
//! # Memory of [`DetectorSpec::tiny`]
//! Elements and bytes of each buffer (from the `*_len()` functions; `tests/net_memory.rs`
//! checks this table against them). Q15.16 values are 4 bytes, its SGD master weights and
//! momentum ([`I32F32`]) 8.
//!
//! | buffer | elements | f32 bytes | Q15.16 bytes |
//! |---|---:|---:|---:|
//! | parameters, whole network (`params_len`) | 15,748 | 62,992 | 62,992 |
//! | of which the head (`head_params`) | 12,180 | 48,720 | 48,720 |
//! | image (`image_len`) | 6,400 | 25,600 | 25,600 |
//! | backbone activations kept for backward (`activations_len`) | 19,200 | 76,800 | 76,800 |
//! | features (`features_len`) | 6,400 | 25,600 | 25,600 |
//! | head outputs (`cls_len + box_len`) | 33,600 | 134,400 | 134,400 |
//! | gradients of the head outputs (`g_cls + g_box`) | 33,600 | 134,400 | 134,400 |
//! | head parameter gradients (`head_grads`) | 12,180 | 48,720 | 48,720 |
//! | SGD master + momentum, head only (`head_sgd`) | 24,360 | 97,440 | 194,880 |
//! | backbone parameter gradients (`backbone_grads`) | 3,568 | 14,272 | 14,272 |
//! | backbone backward scratch (`scratch_len`) | 12,800 | 51,200 | 51,200 |
//! | SGD master + momentum, whole network (`all_sgd`) | 31,496 | 125,984 | 251,968 |
//! | fine-tuning the head, total (`head_total`) | | 605,952 | 703,392 |
//!
//! The last row is what on-device fine-tuning of the head holds at once: parameters, image,
//! activations, features, head outputs and their gradients, head gradients and the head's
//! SGD state. With the backbone frozen the activations are dead once the features are
//! computed (the outputs' gradients can reuse them: 76,800 bytes less), and the loss
//! gradients may overwrite the outputs where the losses allow it (134,400 less): 394,752 bytes
//! in f32 and 492,192 in Q15.16, more than the 192 or 256 KiB of SRAM of common Cortex-M4
//! parts, so a device run keeps fewer anchors in flight (a part of the map at a time) or
//! pages the master copy.
//!
//! # Memory of A-Fast-RCNN's adversaries ([`Asdn::tiny`], [`Astn::tiny`])
//! What the learned adversaries add to fine-tuning (`tests/net_memory.rs` checks these rows
//! too): their weights, gradients and SGD state, and the buffers of one positive's window at a
//! time (3 x 3 x 16 values each).
//!
//! | buffer | elements | f32 bytes | Q15.16 bytes |
//! |---|---:|---:|---:|
//! | ASDN parameters (`asdn.params_len`) | 1,817 | 7,268 | 7,268 |
//! | ASDN parameter gradients (`asdn grads`) | 1,817 | 7,268 | 7,268 |
//! | ASDN SGD master + momentum (`asdn sgd`) | 3,634 | 14,536 | 29,072 |
//! | ASDN hidden map and its gradient, scores, their gradient, mask (`asdn buffers`) | 171 | 684 | 684 |
//! | ASTN parameters (`astn.params_len`) | 2,388 | 9,552 | 9,552 |
//! | ASTN parameter gradients (`astn grads`) | 2,388 | 9,552 | 9,552 |
//! | ASTN SGD master + momentum (`astn sgd`) | 4,776 | 19,104 | 38,208 |
//! | ASTN hidden units and their gradient, angles, their gradient (`astn buffers`) | 40 | 160 | 160 |
//! | window copies: patch, masked, CHW, rotated, hard, their gradients (`8 * patch_len`) | 1,152 | 4,608 | 4,608 |
//! | A-Fast-RCNN's adversaries, total (`afast_total`) | | 72,732 | 106,372 |
//!
//! Against the head's 605,952 bytes of fine-tuning (f32), 12% more; the search it replaces
//! (`hardmine finetune`'s `afast_search`) needs no weights but runs the head once per
//! candidate cell and angle (about 30 times a positive).
//!
//! Speed (x86-64, one core of a shared 2-core machine, release build,
//! `examples/head_speed.rs`): one head forward and backward on the 20 x 20 map takes about
//! 1.5 ms in f32 with a gradient at every location, 1.0 ms with gradients on 8 locations (a
//! miner's selection), 1.0 ms for the forward pass alone; Q15.16 about 9.4, 3.3 and 2.9 ms.
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

mod afast;
mod anchors;
mod assign;
pub mod coco;
mod coder;
mod conv;
mod detector;
mod math;
mod nms;
mod scalar;
mod sgd;

pub use afast::{
    apply_mask, from_chw, patch_gradient, to_chw, Asdn, Astn, CELLS, MAX_ANGLE, MAX_BLOCKS,
};
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
