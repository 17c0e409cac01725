//! Build script: writes `offsets.h` from the layout table and assembles the target's `asm/`
//! units with `cc`.
//!
//! The target is read from `CARGO_CFG_TARGET_ARCH`, `CARGO_CFG_TARGET_OS`,
//! `CARGO_CFG_TARGET_ENV` with `CARGO_CFG_TARGET_ABI` (together the triple's environment, e.g.
//! `gnueabihf`) and `CARGO_CFG_TARGET_POINTER_WIDTH`; [`targets::asm_sources`] is the
//! whole table of what each supported target builds, and any other target fails here with a
//! message saying what is supported. `offsets.h` goes to `OUT_DIR`, generated from
//! src/layout.rs, the one source of every offset the assembly reads. No cfg is emitted. On
//! 32-bit ARM built for Thumb-2 (`thumb-mode` in `CARGO_CFG_TARGET_FEATURE`) the assembly is
//! told so (`SPLITSTACK_THUMB_MODE`), since Rust's frame pointer is then r7, not r11.

#[path = "../src/layout.rs"]
mod layout;
mod targets;

use std::env;
use std::path::PathBuf;

/// The header every assembly unit includes.
const ASM_HEADER: &str = "asm/asm.h";

fn main() {
    println!("cargo:rerun-if-changed=build");
    println!("cargo:rerun-if-changed=src/layout.rs");
    println!("cargo:rerun-if-changed={ASM_HEADER}");

    let var = |name: &str| env::var(name).unwrap_or_default();
    let (arch, os) = (var("CARGO_CFG_TARGET_ARCH"), var("CARGO_CFG_TARGET_OS"));
    // The environment as the target triple spells it: the C library, then the ABI where the
    // target names one (`gnu` + `eabihf` for hard-float ARM, which soft-float `gnueabi` is not).
    let target_env = var("CARGO_CFG_TARGET_ENV") + &var("CARGO_CFG_TARGET_ABI");
    let unsupported = || -> ! {
        panic!(
            "splitstack does not support the target {arch}-{os}-{target_env}: its context \
             switches are hand-written assembly for {} only",
            targets::SUPPORTED
        )
    };
    let Some(sources) = targets::asm_sources(&arch, &os, &target_env) else { unsupported() };
    let Some(layout_arch) = layout::Arch::from_target_arch(&arch) else { unsupported() };
    let word: usize = match var("CARGO_CFG_TARGET_POINTER_WIDTH").parse::<usize>() {
        Ok(bits) => bits / 8,
        Err(_) => panic!("splitstack: CARGO_CFG_TARGET_POINTER_WIDTH is not a number"),
    };
    for path in sources {
        println!("cargo:rerun-if-changed={path}");
    }

    let out = PathBuf::from(var("OUT_DIR"));
    let header = layout::c_header(&layout::Layout::new(layout_arch, word));
    std::fs::write(out.join("offsets.h"), header).expect("splitstack: cannot write offsets.h");

    let mut build = cc::Build::new();
    build.include("asm").include(&out).files(sources.iter());
    if arch == "arm" && var("CARGO_CFG_TARGET_FEATURE").split(',').any(|f| f == "thumb-mode") {
        build.define("SPLITSTACK_THUMB_MODE", None);
    }
    build.compile("splitstack_asm");
}
