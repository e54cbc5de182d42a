//! Every kernel compiles with NVRTC, which needs no driver and no device: CI installs NVRTC
//! (PyPI's `nvidia-cuda-nvrtc-cu12`) and sets `HARDMINE_REQUIRE_NVRTC=1`, so there a missing
//! compiler fails the test instead of skipping it.

use hardmine_gpu::{ptx, GpuError};

/// Whether this test build has the CUDA backend.
static CUDA: bool = cfg!(feature = "cuda");

#[test]
fn kernels_compile_with_nvrtc() {
    let required = std::env::var("HARDMINE_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
    // Ampere and Hopper (the device machine's H200).
    for arch in ["compute_80", "compute_90"] {
        match ptx(Some(arch)) {
            Ok(ptx) => {
                for kernel in [
                    "focal",
                    "focal_labels",
                    "box_loss",
                    "softmax_rows",
                    "bce",
                    "check_inputs",
                    "ghm_hist",
                    "ghm_apply",
                    "rank_hist",
                    "rank_collect",
                ] {
                    assert!(
                        ptx.contains(&format!(".entry {kernel}(")),
                        "{arch}: no entry `{kernel}` in the PTX"
                    );
                }
            }
            Err(GpuError::Unavailable) => {
                assert!(!CUDA, "with `cuda` NVRTC is looked for");
                assert!(!required, "HARDMINE_REQUIRE_NVRTC=1 needs --features cuda");
                return;
            }
            Err(GpuError::NoDevice) => {
                assert!(
                    !required,
                    "HARDMINE_REQUIRE_NVRTC=1 but no NVRTC library found"
                );
                println!("no NVRTC on this machine: kernels not compiled");
                return;
            }
            Err(e) => panic!("{arch}: {e}"),
        }
    }
}
