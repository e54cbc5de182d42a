//! Hard-example mining: top-k, NMS, OHEM, the balanced sampler, S-OHEM and the census. All
//! allocation-free, with capacities as const generics and the caller's PRNG for every choice.

mod balanced;
mod budget;
mod census;
mod iou;
mod nms;
mod ohem;
mod ohem_sampler;
mod selection;
mod sohem;
mod top_k;

pub use balanced::BalancedSampler;
pub use budget::Budget;
pub use census::{Census, CensusReport, Group};
pub use iou::{box_at, check_boxes, iou};
pub use nms::nms;
pub use ohem::Ohem;
pub use ohem_sampler::OhemSampler;
pub use selection::Selection;
pub use sohem::{SOhem, SOhemSchedule, MAX_STRATA};
pub use top_k::TopK;
