//! Puts `memory.x` where cortex-m-rt's `link.x` finds it, and links with `link.x` and defmt's
//! `defmt.x` (here rather than in `.cargo/config.toml`: a `RUSTFLAGS` in the environment, as
//! CI sets, replaces config rustflags).
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("memory.x is beside build.rs");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo:rerun-if-changed=memory.x");
}
