//! Build script: writes `offsets.h` from the layout table and assembles the target's `asm/`
//! units with `cc`.
//!
//! The target is read from `CARGO_CFG_TARGET_ARCH`, `CARGO_CFG_TARGET_OS`,
//! `CARGO_CFG_TARGET_ENV` with `CARGO_CFG_TARGET_ABI` (together the triple's environment, e.g.
//! `gnueabihf`) and `CARGO_CFG_TARGET_POINTER_WIDTH`; [`targets::asm_sources`] is the
//! whole table of what each supported target builds, and any other target fails here with a
//! message saying what is supported. `offsets.h` goes to `OUT_DIR`, generated from
//! src/layout.rs, the one source of every offset the assembly reads.
//!
//! One cfg is emitted: `splitstack_thumb_mode`, on 32-bit ARM when Rust's code is Thumb-2, whose
//! frame pointer is r7 rather than A32's r11 (src/arch/arm.rs names the frame pointer by it, and
//! the assembly is told the same through `SPLITSTACK_THUMB_MODE`). Rust's own
//! `target_feature = "thumb-mode"` cannot say so on stable, where ARM's target features are
//! unstable and appear neither in `cfg` nor in `CARGO_CFG_TARGET_FEATURE`; so it is read from
//! the target's name (`thumbv7neon-…`) and from the flags cargo passes rustc
//! (`-C target-feature=+thumb-mode`), the last `thumb-mode` named there deciding.

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
    // 32-bit x86's memclr is SSE2 code, which i686 targets have and i586 ones do not.
    if arch == "x86" && !var("CARGO_CFG_TARGET_FEATURE").split(',').any(|f| f == "sse2") {
        panic!(
            "splitstack does not support 32-bit x86 without SSE2 (the target {arch}-{os}-\
             {target_env} lacks it): memclr's 32-bit routine is SSE2 code; {} are supported",
            targets::SUPPORTED
        )
    }
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
    println!("cargo:rustc-check-cfg=cfg(splitstack_thumb_mode)");
    if arch == "arm" && thumb_mode(&var("TARGET"), &var("CARGO_ENCODED_RUSTFLAGS")) {
        println!("cargo:rustc-cfg=splitstack_thumb_mode");
        build.define("SPLITSTACK_THUMB_MODE", None);
    }
    build.compile("splitstack_asm");
}

/// Whether Rust's code for the ARM `target` is Thumb-2: the target's default (a `thumb…` name),
/// unless the encoded rustflags (separated by 0x1f) turn `thumb-mode` on or off, the last
/// mention winning.
fn thumb_mode(target: &str, encoded_rustflags: &str) -> bool {
    let mut thumb = target.starts_with("thumb");
    for flag in encoded_rustflags.split('\x1f') {
        for feature in flag.rsplit("target-feature=").next().unwrap_or("").split(',') {
            match feature {
                "+thumb-mode" => thumb = true,
                "-thumb-mode" => thumb = false,
                _ => {}
            }
        }
    }
    thumb
}
