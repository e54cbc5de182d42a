//! Puts `memory.x` (the 256 KiB flash and 64 KiB RAM budgets) where cortex-m-rt's `link.x` finds it, and links with `link.x`.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("memory.x is beside build.rs");
    println!("cargo:rustc-link-search={}", out.display());
    // cortex-m-rt's linker script, here rather than in `.cargo/config.toml`: a `RUSTFLAGS`
    // in the environment (CI sets one) replaces config rustflags and would drop it.
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rerun-if-changed=memory.x");
}
