//! The one source of every struct layout the assembly reads: Go's `go_asm.h`, from a table.
//!
//! [`Layout::new`] gives each offset and size for a target's architecture and word size. The
//! crate reads [`LAYOUT`] (its own target's): the `offset_of!` checks next to each `#[repr(C)]`
//! struct ([`Gobuf`](crate::Gobuf), `Stktop`, `M`, the coroutine's `Link` and `CoContext`)
//! compare against it, and the `asm!` blocks take their numbers from it as `const` operands. The
//! build script includes this file too and writes the same table as `offsets.h` (one `#define`
//! per entry) for the `.S` files and their `.cfi_escape` bytes. So a layout change made in one
//! place only fails the build: a struct that moves a field no longer matches its check, and a
//! table entry that moves no longer matches the struct.

/// The architectures whose layouts the table knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// x86-64 (System V).
    X86_64,
    /// AArch64 (AAPCS64).
    Aarch64,
    /// 32-bit x86 (System V i386, cdecl).
    X86,
    /// 32-bit ARM (AAPCS with VFP, hard float).
    Arm,
    /// RISC-V 64 (LP64D).
    Riscv64,
}

impl Arch {
    /// The architecture named by `CARGO_CFG_TARGET_ARCH`, if the table knows it.
    #[allow(dead_code)] // the build script's
    pub fn from_target_arch(name: &str) -> Option<Arch> {
        match name {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            "x86" => Some(Arch::X86),
            "arm" => Some(Arch::Arm),
            "riscv64" => Some(Arch::Riscv64),
            _ => None,
        }
    }
}

/// Declares [`Layout`]'s fields, each with its doc and its value as an expression of the
/// architecture and the word size, and [`Layout::constants`], which lists them by name.
macro_rules! layout {
    (($arch:ident, $word:ident) { $($(#[doc = $doc:literal])+ $name:ident = $value:expr;)+ }) => {
        /// Offsets and sizes in bytes of what the assembly reads, named as in `offsets.h`.
        #[allow(non_snake_case)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct Layout {
            $($(#[doc = $doc])+ pub $name: usize,)+
        }

        impl Layout {
            /// The layout on `arch` with a machine word of `word` bytes.
            #[allow(clippy::erasing_op, clippy::identity_op)] // `0 * word` reads as a word index
            pub const fn new($arch: Arch, $word: usize) -> Layout {
                Layout { $($name: $value,)+ }
            }

            /// Every entry, by the name the assembly uses, in declaration order.
            #[allow(dead_code)] // the build script's and the tests'
            pub fn constants(&self) -> Vec<(&'static str, usize)> {
                vec![$((stringify!($name), self.$name)),+]
            }
        }
    };
}

layout! {
    (arch, word) {
        /// `Gobuf.sp`: the stack pointer to resume with.
        GOBUF_SP = 0 * word;
        /// `Gobuf.pc`: the instruction to resume at (follows `sp`: AArch64 loads the pair).
        GOBUF_PC = 1 * word;
        /// `Gobuf.fp`: the frame pointer, rbp / ebp / x29 / r11 (r7 in Thumb-2 code) / s0.
        GOBUF_FP = 2 * word;
        /// `Gobuf.base`: LLVM's base register, rbx / esi / x19 / r6 / s1 (follows `fp`, loaded as a
        /// pair).
        GOBUF_BASE = 3 * word;
        /// The size of a `Gobuf`.
        GOBUF_SIZE = 4 * word;

        /// `Stktop.gobuf`: the context that called `morestack`.
        STKTOP_GOBUF = 0;
        /// `Stktop.m`: the owning thread's `M`, whose `cret` `lessstack` writes.
        STKTOP_M = 4 * word;
        /// The size of a `Stktop`: fourteen words, rounded up to a multiple of 16 (on 32-bit
        /// targets) so that the stack below it stays aligned.
        STKTOP_SIZE = (14 * word).next_multiple_of(16);

        /// `M.cret`: where `lessstack` parks the return register.
        M_CRET = 0;

        /// `Link.parent_sp`: the resumer's context, in every coroutine's shared record, after
        /// the coroutine's `Stack` (a word, a word and two `u32`s: 24 bytes on 64-bit targets,
        /// 16 on 32-bit ones).
        LINK_PARENT_SP = if word == 8 { 24 } else { 16 };

        /// `CoContext.pc`: a suspended coroutine side's resume pc, at its saved stack pointer.
        CO_CONTEXT_PC = 0;
        /// `CoContext.base`: its base register, rbx / esi / x19 / r6 / s1 (follows `pc`: AArch64 stores
        /// the pair).
        CO_CONTEXT_BASE = 1 * word;
        /// `CoContext.fp`: its frame pointer, rbp / ebp / x29 / r11 (r7 in Thumb-2 code) / s0.
        CO_CONTEXT_FP = 2 * word;
        /// The size of a `CoContext`: what a switch leaves at the stack pointer. x86 and x86-64
        /// push three words; AArch64, ARM and RISC-V store them below a stack pointer they keep
        /// aligned (16 bytes; 8 on ARM), so they pad to four.
        CO_CONTEXT_SIZE = match arch {
            Arch::X86_64 | Arch::X86 => 3 * word,
            Arch::Aarch64 | Arch::Arm | Arch::Riscv64 => 4 * word,
        };
    }
}

/// The architecture this crate is compiled for.
#[allow(dead_code)] // the crate's; the build script reads `CARGO_CFG_TARGET_ARCH`
const TARGET_ARCH: Arch = if cfg!(target_arch = "aarch64") {
    Arch::Aarch64
} else if cfg!(target_arch = "x86") {
    Arch::X86
} else if cfg!(target_arch = "arm") {
    Arch::Arm
} else if cfg!(target_arch = "riscv64") {
    Arch::Riscv64
} else {
    Arch::X86_64
};

/// The layout of the target this crate is compiled for.
#[allow(dead_code)] // the crate's; the build script uses `Layout::new`
pub const LAYOUT: Layout = Layout::new(TARGET_ARCH, core::mem::size_of::<usize>());

/// `offsets.h`: one `#define` per entry of `layout`, for the `.S` files.
#[allow(dead_code)] // the build script's and the tests'
pub fn c_header(layout: &Layout) -> String {
    let mut header = String::from(
        "/* offsets.h: generated by the build script from src/layout.rs; do not edit. */\n\
         #ifndef SPLITSTACK_OFFSETS_H\n#define SPLITSTACK_OFFSETS_H\n",
    );
    for (name, value) in layout.constants() {
        header.push_str(&format!("#define {name} {value}\n"));
    }
    header.push_str("#endif /* SPLITSTACK_OFFSETS_H */\n");
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every architecture the table knows, with its word size.
    const ALL: [(Arch, usize); 5] =
        [(Arch::X86_64, 8), (Arch::Aarch64, 8), (Arch::X86, 4), (Arch::Arm, 4), (Arch::Riscv64, 8)];

    #[test]
    fn pairs_that_aarch64_loads_together_are_adjacent() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let l = Layout::new(arch, 8);
            assert_eq!(l.GOBUF_PC, l.GOBUF_SP + 8);
            assert_eq!(l.GOBUF_BASE, l.GOBUF_FP + 8);
            assert_eq!(l.CO_CONTEXT_BASE, l.CO_CONTEXT_PC + 8);
        }
    }

    #[test]
    fn records_at_a_stack_pointer_keep_it_aligned() {
        assert_eq!(Layout::new(Arch::Aarch64, 8).CO_CONTEXT_SIZE % 16, 0);
        assert_eq!(Layout::new(Arch::Riscv64, 8).CO_CONTEXT_SIZE % 16, 0);
        assert_eq!(Layout::new(Arch::Arm, 4).CO_CONTEXT_SIZE % 16, 0);
        for (arch, word) in ALL {
            let layout = Layout::new(arch, word);
            assert_eq!(layout.STKTOP_SIZE % 16, 0, "{arch:?}");
            assert!(layout.STKTOP_SIZE >= 14 * word, "{arch:?}");
        }
    }

    #[test]
    fn the_header_defines_every_entry_once() {
        let layout = Layout::new(Arch::X86_64, 8);
        let header = c_header(&layout);
        let constants = layout.constants();
        assert_eq!(constants.len(), 14);
        for (name, value) in constants {
            let line = format!("#define {name} {value}\n");
            assert_eq!(header.matches(&line).count(), 1, "{line:?} in\n{header}");
            assert_eq!(header.matches(&format!("#define {name} ")).count(), 1);
        }
        assert_eq!(header.matches("#define GOBUF_PC 8\n").count(), 1);
        assert!(header.contains("#define CO_CONTEXT_SIZE 24\n"));
        assert!(c_header(&Layout::new(Arch::Aarch64, 8)).contains("#define CO_CONTEXT_SIZE 32\n"));
        assert!(c_header(&Layout::new(Arch::Riscv64, 8)).contains("#define CO_CONTEXT_SIZE 32\n"));
    }

    #[test]
    fn every_offset_fits_one_byte_of_a_cfi_operand() {
        // The `.cfi_escape` operands are written as single SLEB128 / ULEB128 bytes.
        for (arch, word) in ALL {
            for (name, value) in Layout::new(arch, word).constants() {
                assert!(value < 64 || name.ends_with("_SIZE"), "{name} = {value}");
            }
        }
    }

    #[test]
    fn the_crates_layout_is_its_targets() {
        assert_eq!(LAYOUT, Layout::new(TARGET_ARCH, core::mem::size_of::<usize>()));
        assert_eq!(Arch::from_target_arch("x86_64"), Some(Arch::X86_64));
        assert_eq!(Arch::from_target_arch("aarch64"), Some(Arch::Aarch64));
        assert_eq!(Arch::from_target_arch("x86"), Some(Arch::X86));
        assert_eq!(Arch::from_target_arch("arm"), Some(Arch::Arm));
        assert_eq!(Arch::from_target_arch("riscv64"), Some(Arch::Riscv64));
        assert_eq!(Arch::from_target_arch("riscv32"), None);
    }
}
