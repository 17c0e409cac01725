//! The build script's table of supported targets: what each one assembles. Pure, so that the
//! crate's unit tests include this file and check it (src/lib.rs).

/// The assembly units `(arch, os, env)` builds, or `None` for a target the crate does not
/// support. `env` is the target triple's environment: the C library and the ABI, if any
/// (`gnu`, `gnueabihf`). One unit per concern and target: `asm/<unit>_<arch>_<abi>.S`.
pub fn asm_sources(arch: &str, os: &str, env: &str) -> Option<&'static [&'static str]> {
    match (arch, os, env) {
        ("x86_64", "linux", "gnu") => Some(&[
            "asm/switch_x86_64_sysv.S",
            "asm/stack_x86_64_sysv.S",
            "asm/memclr_x86_64_sysv.S",
            "asm/valgrind_x86_64_sysv.S",
        ]),
        ("x86", "linux", "gnu") => Some(&[
            "asm/switch_x86_sysv.S",
            "asm/stack_x86_sysv.S",
            "asm/memclr_x86_sysv.S",
            "asm/valgrind_x86_sysv.S",
        ]),
        ("aarch64", "linux", "gnu") => Some(&[
            "asm/switch_aarch64_aapcs.S",
            "asm/stack_aarch64_aapcs.S",
            "asm/memclr_aarch64_aapcs.S",
            "asm/valgrind_aarch64_aapcs.S",
        ]),
        ("arm", "linux", "gnueabihf") => Some(&[
            "asm/switch_arm_aapcs.S",
            "asm/stack_arm_aapcs.S",
            "asm/memclr_arm_aapcs.S",
            "asm/valgrind_arm_aapcs.S",
        ]),
        ("riscv64", "linux", "gnu") => Some(&[
            "asm/switch_riscv64_lp64d.S",
            "asm/stack_riscv64_lp64d.S",
            "asm/memclr_riscv64_lp64d.S",
            "asm/valgrind_riscv64_lp64d.S",
        ]),
        _ => None,
    }
}

/// The targets [`asm_sources`] supports, for the build script's message about any other.
pub const SUPPORTED: &str = "x86_64-unknown-linux-gnu, i686-unknown-linux-gnu, \
    aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf and riscv64gc-unknown-linux-gnu";

#[cfg(test)]
mod tests {
    use super::*;

    /// Each supported Linux architecture, its environment and the ABI its file names carry.
    const SUPPORTED_ARCHES: [(&str, &str, &str); 5] = [
        ("x86_64", "gnu", "sysv"),
        ("x86", "gnu", "sysv"),
        ("aarch64", "gnu", "aapcs"),
        ("arm", "gnueabihf", "aapcs"),
        ("riscv64", "gnu", "lp64d"),
    ];

    #[test]
    fn each_supported_target_builds_every_unit_for_its_own_arch() {
        for (arch, env, abi) in SUPPORTED_ARCHES {
            let sources = asm_sources(arch, "linux", env).expect("supported");
            let units: Vec<&str> = sources
                .iter()
                .map(|path| {
                    let name = path.strip_prefix("asm/").and_then(|p| p.strip_suffix(".S"));
                    let name = name.unwrap_or_else(|| panic!("{path} is not asm/*.S"));
                    let unit = name.strip_suffix(&format!("_{arch}_{abi}"));
                    unit.unwrap_or_else(|| panic!("{path} is not for {arch} {abi}"))
                })
                .collect();
            assert_eq!(units, ["switch", "stack", "memclr", "valgrind"]);
        }
    }

    #[test]
    fn every_listed_source_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for (arch, env, _) in SUPPORTED_ARCHES {
            for path in asm_sources(arch, "linux", env).expect("supported") {
                assert!(root.join(path).is_file(), "{path} is missing");
            }
        }
    }

    #[test]
    fn other_targets_are_refused() {
        assert_eq!(asm_sources("x86_64", "linux", "musl"), None);
        assert_eq!(asm_sources("aarch64", "macos", ""), None);
        assert_eq!(asm_sources("riscv64", "linux", "musl"), None);
        assert_eq!(asm_sources("riscv32", "linux", "gnu"), None);
        assert_eq!(asm_sources("x86", "linux", "musl"), None);
        // Soft-float ARM passes floats in core registers and has no d8-d15 to keep; the table
        // tells it apart by the environment, which names the float ABI.
        assert_eq!(asm_sources("arm", "linux", "gnu"), None);
        assert_eq!(asm_sources("arm", "linux", "gnueabi"), None);
        assert_eq!(asm_sources("arm", "linux", "musleabihf"), None);
        for target in [
            "x86_64-unknown-linux-gnu",
            "i686-unknown-linux-gnu",
            "aarch64-unknown-linux-gnu",
            "armv7-unknown-linux-gnueabihf",
            "riscv64gc-unknown-linux-gnu",
        ] {
            assert!(SUPPORTED.contains(target), "{SUPPORTED} names {target}");
        }
    }
}
