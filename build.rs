//! Build script: compiles the per-target assembly in `asm/` and the valgrind shim with `cc`.
//!
//! The target is read from `CARGO_CFG_TARGET_ARCH`, `CARGO_CFG_TARGET_OS` and
//! `CARGO_CFG_TARGET_ENV`; [`asm_sources`] is the whole table of what each supported target
//! builds. Any other target fails here with a message saying what is supported.
//!
//! Emits `cfg(splitstack_valgrind)` when valgrind's `valgrind.h` was found and compiled in.

use std::env;
use std::path::Path;

/// The assembly units each supported target builds, or `None` for an unsupported target.
fn asm_sources(arch: &str, os: &str, env: &str) -> Option<&'static [&'static str]> {
    match (arch, os, env) {
        ("x86_64", "linux", "gnu" | "musl") => Some(&[
            "asm/switch_x86_64_sysv.S",
            "asm/stack_x86_64_sysv.S",
            "asm/memclr_x86_64_sysv.S",
        ]),
        ("aarch64", "linux", "gnu" | "musl") => Some(&[
            "asm/switch_aarch64_aapcs.S",
            "asm/stack_aarch64_aapcs.S",
            "asm/memclr_aarch64_aapcs.S",
        ]),
        _ => None,
    }
}

/// Headers every assembly unit may include.
const ASM_HEADERS: &[&str] = &["asm/asm.h", "asm/offsets.h"];

/// The C shim that registers stacks with valgrind.
const VALGRIND_SHIM: &str = "asm/valgrind_stacks.c";

/// Where Debian's valgrind package (and most others) put the client-request header.
const VALGRIND_INCLUDE_DIRS: &[&str] = &["/usr/include", "/usr/local/include"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-check-cfg=cfg(splitstack_valgrind)");

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let Some(sources) = asm_sources(&arch, &os, &target_env) else {
        panic!(
            "splitstack does not support the target {arch}-{os}-{target_env}: its context \
             switches are hand-written assembly for x86_64 and aarch64 Linux only"
        );
    };

    for path in sources.iter().chain(ASM_HEADERS).chain([&VALGRIND_SHIM]) {
        println!("cargo:rerun-if-changed={path}");
    }

    let mut build = cc::Build::new();
    build.include("asm").files(sources.iter());
    let valgrind_dir = VALGRIND_INCLUDE_DIRS
        .iter()
        .find(|dir| Path::new(dir).join("valgrind/valgrind.h").exists());
    match valgrind_dir {
        Some(dir) => {
            // valgrind.h is self-contained (it includes only <stdarg.h>), so the host's copy
            // serves a cross build too; the include comes last so that the cross compiler's own
            // headers win.
            build.flag(format!("-idirafter{dir}"));
            build.define("SPLITSTACK_HAVE_VALGRIND_H", None);
            println!("cargo:rustc-cfg=splitstack_valgrind");
        }
        None => println!(
            "cargo:warning=valgrind/valgrind.h not found: stacks are not registered with valgrind \
             (install Debian's valgrind package, or run ci/setup.sh)"
        ),
    }
    build.file(VALGRIND_SHIM).compile("splitstack_asm");
}
