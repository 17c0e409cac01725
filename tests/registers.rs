//! Callee-saved registers survive a switch, the entry function starts with the stack pointer the
//! ABI requires, and the floating-point control state is shared between contexts (documented).
//!
//! Each side of a ping-pong fills every callee-saved register the ABI names with its own
//! pattern, switches through a real `extern "C"` function (so the ABI's promise is what is
//! tested: the compiler saves what `swap` clobbers, the assembly saves the rest), and reads the
//! registers back after the other side has filled them with its pattern.

use splitstack::{prepare, swap, Gobuf, Stack};
use std::arch::{asm, naked_asm};
use std::ptr::{addr_of, addr_of_mut};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A switch function with the C ABI, which must preserve callee-saved registers like any other.
type SwapC = extern "C" fn(*mut Gobuf, *const Gobuf, usize) -> usize;

/// A real function boundary around `swap` (the switch inlined at its call site).
#[inline(never)]
extern "C" fn swap_inline(save: *mut Gobuf, resume: *const Gobuf, arg: usize) -> usize {
    // SAFETY: the callers below pass buffers of a live ping-pong.
    unsafe { swap(&mut *save, &*resume, arg) }
}

/// A real function boundary around `swap_out_of_line` (a call to the assembly routine).
#[inline(never)]
extern "C" fn swap_outlined(save: *mut Gobuf, resume: *const Gobuf, arg: usize) -> usize {
    // SAFETY: the callers below pass buffers of a live ping-pong.
    unsafe { splitstack::swap_out_of_line(&mut *save, &*resume, arg) }
}

#[cfg(target_arch = "x86_64")]
mod regs {
    use super::*;
    /// rbx, rbp, r12, r13, r14, r15.
    pub const NAMES: &[&str] = &["rbx", "rbp", "r12", "r13", "r14", "r15"];
    pub type Saved = [u64; 6];
    /// Each register's width.
    pub const MASKS: Saved = [u64::MAX; 6];

    /// Fills the callee-saved registers with pattern + 0, 1, 2, ..., calls swap_c, and records
    /// what they hold when it returns.
    pub unsafe fn switch_with_patterns(
        save: *mut Gobuf,
        resume: *const Gobuf,
        arg: usize,
        pattern: u64,
        out: &mut Saved,
        f: SwapC,
    ) -> usize {
        let ret: usize;
        // SAFETY: rbx and rbp, which asm! cannot name, are pushed and popped around the call;
        // the stack stays 16-byte aligned (four pushes) for the call.
        unsafe {
            asm!(
                "push rbx",
                "push rbp",
                "push {out}",
                "push {pat}",
                "mov rbx, {pat}",
                "lea rbp, [rbx + 1]",
                "lea r12, [rbx + 2]",
                "lea r13, [rbx + 3]",
                "lea r14, [rbx + 4]",
                "lea r15, [rbx + 5]",
                "call r11",
                "mov rcx, [rsp + 8]",
                "mov [rcx], rbx",
                "mov [rcx + 8], rbp",
                "mov [rcx + 16], r12",
                "mov [rcx + 24], r13",
                "mov [rcx + 32], r14",
                "mov [rcx + 40], r15",
                "add rsp, 16",
                "pop rbp",
                "pop rbx",
                out = in(reg) out.as_mut_ptr(),
                pat = in(reg) pattern,
                in("r11") f,
                in("rdi") save,
                in("rsi") resume,
                in("rdx") arg,
                lateout("rax") ret,
                out("r12") _, out("r13") _, out("r14") _, out("r15") _,
                clobber_abi("C"),
            );
        }
        ret
    }
}

#[cfg(target_arch = "aarch64")]
mod regs {
    use super::*;
    /// x19-x28, x29, d8-d15.
    pub const NAMES: &[&str] = &[
        "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29", "d8", "d9",
        "d10", "d11", "d12", "d13", "d14", "d15",
    ];
    pub type Saved = [u64; 19];
    /// Each register's width.
    pub const MASKS: Saved = [u64::MAX; 19];

    /// Fills the callee-saved registers with pattern + 0, 1, 2, ..., calls swap_c, and records
    /// what they hold when it returns.
    pub unsafe fn switch_with_patterns(
        save: *mut Gobuf,
        resume: *const Gobuf,
        arg: usize,
        pattern: u64,
        out: &mut Saved,
        f: SwapC,
    ) -> usize {
        let ret: usize;
        // SAFETY: x19 and x29, which asm! cannot name, are saved and restored around the call;
        // sp moves by 32, keeping 16-byte alignment.
        unsafe {
            asm!(
                "stp x19, x29, [sp, #-32]!",
                "stp {out}, {pat}, [sp, #16]",
                "mov x19, {pat}",
                "add x20, x19, #1",
                "add x21, x19, #2",
                "add x22, x19, #3",
                "add x23, x19, #4",
                "add x24, x19, #5",
                "add x25, x19, #6",
                "add x26, x19, #7",
                "add x27, x19, #8",
                "add x28, x19, #9",
                "add x29, x19, #10",
                "add x9, x19, #11", "fmov d8, x9",
                "add x9, x19, #12", "fmov d9, x9",
                "add x9, x19, #13", "fmov d10, x9",
                "add x9, x19, #14", "fmov d11, x9",
                "add x9, x19, #15", "fmov d12, x9",
                "add x9, x19, #16", "fmov d13, x9",
                "add x9, x19, #17", "fmov d14, x9",
                "add x9, x19, #18", "fmov d15, x9",
                "blr x16",
                "ldr x9, [sp, #16]",
                "stp x19, x20, [x9]",
                "stp x21, x22, [x9, #16]",
                "stp x23, x24, [x9, #32]",
                "stp x25, x26, [x9, #48]",
                "stp x27, x28, [x9, #64]",
                "str x29, [x9, #80]",
                "str d8, [x9, #88]",
                "stp d9, d10, [x9, #96]",
                "stp d11, d12, [x9, #112]",
                "stp d13, d14, [x9, #128]",
                "str d15, [x9, #144]",
                "ldp x19, x29, [sp], #32",
                out = in(reg) out.as_mut_ptr(),
                pat = in(reg) pattern,
                in("x16") f,
                in("x0") save,
                in("x1") resume,
                in("x2") arg,
                lateout("x0") ret,
                out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
                out("x25") _, out("x26") _, out("x27") _, out("x28") _,
                out("v8") _, out("v9") _, out("v10") _, out("v11") _,
                out("v12") _, out("v13") _, out("v14") _, out("v15") _,
                clobber_abi("C"),
            );
        }
        ret
    }
}

#[cfg(target_arch = "x86")]
mod regs {
    use super::*;
    /// ebx, esi, edi, ebp.
    pub const NAMES: &[&str] = &["ebx", "esi", "edi", "ebp"];
    pub type Saved = [u64; 4];
    /// Each register's width.
    pub const MASKS: Saved = [0xffff_ffff; 4];

    /// What the asm block below reads, by offset: the switch and its cdecl arguments, the
    /// pattern and where the registers go.
    #[repr(C)]
    struct Call {
        f: SwapC,
        save: *mut Gobuf,
        resume: *const Gobuf,
        arg: usize,
        pattern: usize,
        out: *mut Saved,
    }

    /// Fills the callee-saved registers with pattern + 0, 1, 2, ... (its low 32 bits), calls
    /// swap_c, and records what they hold when it returns.
    pub unsafe fn switch_with_patterns(
        save: *mut Gobuf,
        resume: *const Gobuf,
        arg: usize,
        pattern: u64,
        out: &mut Saved,
        f: SwapC,
    ) -> usize {
        let call = Call { f, save, resume, arg, pattern: pattern as usize, out };
        let ret: usize;
        // SAFETY: every callee-saved register (esi and ebp, which asm! cannot name, included) is
        // pushed and popped around the call; the call's arguments sit at a 16-byte aligned esp
        // below them, the old esp above them.
        unsafe {
            asm!(
                "push ebx",
                "push esi",
                "push edi",
                "push ebp",
                "mov ecx, esp",
                "and esp, -16",
                "sub esp, 32",
                "mov [esp + 20], ecx",       // the esp to return to
                "mov [esp + 16], eax",       // &call
                "mov ecx, [eax + 4]",
                "mov [esp], ecx",            // save
                "mov ecx, [eax + 8]",
                "mov [esp + 4], ecx",        // resume
                "mov ecx, [eax + 12]",
                "mov [esp + 8], ecx",        // arg
                "mov ecx, [eax]",            // f
                "mov ebx, [eax + 16]",
                "lea esi, [ebx + 1]",
                "lea edi, [ebx + 2]",
                "lea ebp, [ebx + 3]",
                "call ecx",
                "mov ecx, [esp + 16]",
                "mov ecx, [ecx + 20]",       // out
                "mov [ecx], ebx",
                "mov dword ptr [ecx + 4], 0",
                "mov [ecx + 8], esi",
                "mov dword ptr [ecx + 12], 0",
                "mov [ecx + 16], edi",
                "mov dword ptr [ecx + 20], 0",
                "mov [ecx + 24], ebp",
                "mov dword ptr [ecx + 28], 0",
                "mov esp, [esp + 20]",
                "pop ebp",
                "pop edi",
                "pop esi",
                "pop ebx",
                inout("eax") &call as *const Call => ret,
                clobber_abi("C"),
            );
        }
        ret
    }
}

#[cfg(target_arch = "riscv64")]
mod regs {
    use super::*;
    /// s0-s11, fs0-fs11.
    pub const NAMES: &[&str] = &[
        "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "fs0", "fs1",
        "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9", "fs10", "fs11",
    ];
    pub type Saved = [u64; 24];
    /// Each register's width.
    pub const MASKS: Saved = [u64::MAX; 24];

    /// Fills the callee-saved registers with pattern + 0, 1, 2, ..., calls swap_c, and records
    /// what they hold when it returns.
    pub unsafe fn switch_with_patterns(
        save: *mut Gobuf,
        resume: *const Gobuf,
        arg: usize,
        pattern: u64,
        out: &mut Saved,
        f: SwapC,
    ) -> usize {
        let ret: usize;
        // SAFETY: s0 and s1, which asm! cannot name, are saved and restored around the call;
        // sp moves by 32, keeping 16-byte alignment.
        unsafe {
            asm!(
                "addi sp, sp, -32",
                "sd s0, 0(sp)",
                "sd s1, 8(sp)",
                "sd {out}, 16(sp)",
                "mv s0, {pat}",
                "addi s1, s0, 1",
                "addi s2, s0, 2",
                "addi s3, s0, 3",
                "addi s4, s0, 4",
                "addi s5, s0, 5",
                "addi s6, s0, 6",
                "addi s7, s0, 7",
                "addi s8, s0, 8",
                "addi s9, s0, 9",
                "addi s10, s0, 10",
                "addi s11, s0, 11",
                "addi t0, s0, 12", "fmv.d.x fs0, t0",
                "addi t0, s0, 13", "fmv.d.x fs1, t0",
                "addi t0, s0, 14", "fmv.d.x fs2, t0",
                "addi t0, s0, 15", "fmv.d.x fs3, t0",
                "addi t0, s0, 16", "fmv.d.x fs4, t0",
                "addi t0, s0, 17", "fmv.d.x fs5, t0",
                "addi t0, s0, 18", "fmv.d.x fs6, t0",
                "addi t0, s0, 19", "fmv.d.x fs7, t0",
                "addi t0, s0, 20", "fmv.d.x fs8, t0",
                "addi t0, s0, 21", "fmv.d.x fs9, t0",
                "addi t0, s0, 22", "fmv.d.x fs10, t0",
                "addi t0, s0, 23", "fmv.d.x fs11, t0",
                "jalr t2",
                "ld t0, 16(sp)",
                "sd s0, 0(t0)",
                "sd s1, 8(t0)",
                "sd s2, 16(t0)",
                "sd s3, 24(t0)",
                "sd s4, 32(t0)",
                "sd s5, 40(t0)",
                "sd s6, 48(t0)",
                "sd s7, 56(t0)",
                "sd s8, 64(t0)",
                "sd s9, 72(t0)",
                "sd s10, 80(t0)",
                "sd s11, 88(t0)",
                "fsd fs0, 96(t0)",
                "fsd fs1, 104(t0)",
                "fsd fs2, 112(t0)",
                "fsd fs3, 120(t0)",
                "fsd fs4, 128(t0)",
                "fsd fs5, 136(t0)",
                "fsd fs6, 144(t0)",
                "fsd fs7, 152(t0)",
                "fsd fs8, 160(t0)",
                "fsd fs9, 168(t0)",
                "fsd fs10, 176(t0)",
                "fsd fs11, 184(t0)",
                "ld s0, 0(sp)",
                "ld s1, 8(sp)",
                "addi sp, sp, 32",
                out = in(reg) out.as_mut_ptr(),
                pat = in(reg) pattern,
                in("t2") f,
                in("a0") save,
                in("a1") resume,
                in("a2") arg,
                lateout("a0") ret,
                out("s2") _, out("s3") _, out("s4") _, out("s5") _, out("s6") _,
                out("s7") _, out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("fs0") _, out("fs1") _, out("fs2") _, out("fs3") _, out("fs4") _,
                out("fs5") _, out("fs6") _, out("fs7") _, out("fs8") _, out("fs9") _,
                out("fs10") _, out("fs11") _,
                clobber_abi("C"),
            );
        }
        ret
    }
}

#[cfg(target_arch = "arm")]
mod regs {
    use super::*;
    /// r4-r11, d8-d15. The frame pointer is r11 in A32 code and r7 in Thumb-2 code; the block
    /// below saves and restores both (and r6), so it is the same in either.
    pub const NAMES: &[&str] = &[
        "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "d8", "d9", "d10", "d11", "d12", "d13",
        "d14", "d15",
    ];
    pub type Saved = [u64; 16];
    /// Each register's width: 32 bits for r4-r11, 64 for d8-d15.
    pub const MASKS: Saved = [
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        u64::MAX,
        u64::MAX,
        u64::MAX,
        u64::MAX,
        u64::MAX,
        u64::MAX,
        u64::MAX,
        u64::MAX,
    ];

    /// Fills the callee-saved registers with pattern + 0, 1, 2, ... (r4-r11 its low 32 bits),
    /// calls swap_c, and records what they hold when it returns.
    pub unsafe fn switch_with_patterns(
        save: *mut Gobuf,
        resume: *const Gobuf,
        arg: usize,
        pattern: u64,
        out: &mut Saved,
        f: SwapC,
    ) -> usize {
        let ret: usize;
        // Adding i < 16 to the low half never carries into the high half: the pattern's low
        // 16 bits are 0 but for the round in bits 8-15.
        let block: [usize; 3] =
            [out.as_mut_ptr() as usize, pattern as u32 as usize, (pattern >> 32) as usize];
        // SAFETY: r6 and the frame pointer (r11 or r7), which asm! cannot name, are pushed and
        // popped around the call with the other of r7 and r11; sp moves by 24, keeping the
        // 8-byte alignment AAPCS asks for at a call.
        unsafe {
            asm!(
                "push {{r6, r7, r11, lr}}",
                "sub sp, sp, #8",
                "str {blk}, [sp]",          // the block, for after the call
                "ldr r5, [{blk}, #8]",      // r5 = the pattern's high half
                "ldr r4, [{blk}, #4]",      // r4 = the pattern's low half
                "add r12, r4, #8", "vmov d8, r12, r5",
                "add r12, r4, #9", "vmov d9, r12, r5",
                "add r12, r4, #10", "vmov d10, r12, r5",
                "add r12, r4, #11", "vmov d11, r12, r5",
                "add r12, r4, #12", "vmov d12, r12, r5",
                "add r12, r4, #13", "vmov d13, r12, r5",
                "add r12, r4, #14", "vmov d14, r12, r5",
                "add r12, r4, #15", "vmov d15, r12, r5",
                "add r5, r4, #1",
                "add r6, r4, #2",
                "add r7, r4, #3",
                "add r8, r4, #4",
                "add r9, r4, #5",
                "add r10, r4, #6",
                "add r11, r4, #7",
                "blx r3",
                "ldr r12, [sp]",            // the block
                "ldr r12, [r12]",           // r12 = out
                "mov lr, #0",               // the high half of each core register's slot
                "str r4, [r12]", "str lr, [r12, #4]",
                "str r5, [r12, #8]", "str lr, [r12, #12]",
                "str r6, [r12, #16]", "str lr, [r12, #20]",
                "str r7, [r12, #24]", "str lr, [r12, #28]",
                "str r8, [r12, #32]", "str lr, [r12, #36]",
                "str r9, [r12, #40]", "str lr, [r12, #44]",
                "str r10, [r12, #48]", "str lr, [r12, #52]",
                "str r11, [r12, #56]", "str lr, [r12, #60]",
                "vstr d8, [r12, #64]",
                "vstr d9, [r12, #72]",
                "vstr d10, [r12, #80]",
                "vstr d11, [r12, #88]",
                "vstr d12, [r12, #96]",
                "vstr d13, [r12, #104]",
                "vstr d14, [r12, #112]",
                "vstr d15, [r12, #120]",
                "add sp, sp, #8",
                "pop {{r6, r7, r11, lr}}",
                blk = in(reg) block.as_ptr(),
                in("r3") f,
                in("r0") save,
                in("r1") resume,
                in("r2") arg,
                lateout("r0") ret,
                out("r4") _, out("r5") _, out("r8") _, out("r9") _, out("r10") _,
                out("d8") _, out("d9") _, out("d10") _, out("d11") _,
                out("d12") _, out("d13") _, out("d14") _, out("d15") _,
                clobber_abi("C"),
            );
        }
        ret
    }
}

use regs::{switch_with_patterns, Saved, MASKS, NAMES};

const MAIN_PATTERN: u64 = 0x1111_2222_3333_0000;
const CO_PATTERN: u64 = 0x7777_8888_9999_0000;

/// Registers that do not hold pattern + i (cut to their width), as "name: found 0x.., expected
/// 0x..".
fn mismatches(saved: &Saved, pattern: u64) -> Vec<String> {
    let expected = |i: usize| (pattern + i as u64) & MASKS[i];
    (0..NAMES.len())
        .filter(|&i| saved[i] != expected(i))
        .map(|i| format!("{}: found {:#x}, expected {:#x}", NAMES[i], saved[i], expected(i)))
        .collect()
}

struct Pair {
    main: Gobuf,
    co: Gobuf,
    /// The switch under test.
    switch: SwapC,
    /// How many of the co side's checks found a clobbered register.
    co_failures: usize,
}

unsafe extern "C" fn clobbering_entry(arg: usize) -> ! {
    let pair = arg as *mut Pair;
    let mut saved: Saved = Default::default();
    loop {
        // SAFETY: the test keeps the Pair alive; main's context is suspended in a switch.
        unsafe {
            switch_with_patterns(
                addr_of_mut!((*pair).co),
                addr_of!((*pair).main),
                0,
                CO_PATTERN,
                &mut saved,
                (*pair).switch,
            );
            if !mismatches(&saved, CO_PATTERN).is_empty() {
                (*pair).co_failures += 1;
            }
        }
    }
}

fn check_callee_saved_registers(switch: SwapC) {
    let stack = Stack::new(64 * 1024).unwrap();
    let mut pair = Pair { main: Gobuf::default(), co: Gobuf::default(), switch, co_failures: 0 };
    let p: *mut Pair = &mut pair;
    let mut saved: Saved = Default::default();
    // SAFETY: the stack outlives every switch into it; clobbering_entry never returns.
    unsafe { prepare(&mut *addr_of_mut!((*p).co), &stack, clobbering_entry) };
    for round in 0..100u64 {
        let pattern = MAIN_PATTERN + (round << 8);
        // SAFETY: as above.
        unsafe {
            switch_with_patterns(
                addr_of_mut!((*p).main),
                addr_of!((*p).co),
                p as usize,
                pattern,
                &mut saved,
                switch,
            );
        }
        let bad = mismatches(&saved, pattern);
        assert!(bad.is_empty(), "round {round}: registers clobbered across the switch: {bad:?}");
    }
    // The co side checked 99 times (its first switch only started it).
    // SAFETY: the co side is suspended; nothing else touches the Pair.
    let co_failures = unsafe { (*p).co_failures };
    assert_eq!(co_failures, 0, "the coroutine side saw clobbered registers");
}

#[test]
fn callee_saved_registers_survive_the_inlined_switch_both_ways() {
    check_callee_saved_registers(swap_inline);
}

#[test]
fn callee_saved_registers_survive_the_out_of_line_switch_both_ways() {
    check_callee_saved_registers(swap_outlined);
}

/// The stack pointer the entry function saw at its first instruction.
static ENTRY_SP: AtomicUsize = AtomicUsize::new(0);
static mut ALIGN_BACK: Gobuf = Gobuf::new_empty();

/// Records the stack pointer at its first instruction, then continues in `entry_body`.
#[unsafe(naked)]
unsafe extern "C" fn sp_recording_entry(arg: usize) -> ! {
    #[cfg(target_arch = "x86_64")]
    naked_asm!("mov rsi, rsp", "jmp {body}", body = sym entry_body);
    #[cfg(target_arch = "aarch64")]
    naked_asm!("mov x1, sp", "b {body}", body = sym entry_body);
    #[cfg(target_arch = "arm")]
    naked_asm!("mov r1, sp", "b {body}", body = sym entry_body);
    #[cfg(target_arch = "riscv64")]
    naked_asm!("mv a1, sp", "tail {body}", body = sym entry_body);
    // cdecl: entry_body's two arguments go on a fresh, aligned frame (it never returns).
    #[cfg(target_arch = "x86")]
    naked_asm!(
        "mov ecx, esp",
        "mov eax, [esp + 4]",
        "and esp, -16",
        "sub esp, 16",
        "mov [esp], eax",
        "mov [esp + 4], ecx",
        "call {body}",
        "ud2",
        body = sym entry_body,
    );
}

unsafe extern "C" fn entry_body(arg: usize, sp: usize) -> ! {
    ENTRY_SP.store(sp, Ordering::Relaxed);
    // SAFETY: ALIGN_BACK is the test's suspended swap.
    unsafe { splitstack::gogo(&*addr_of!(ALIGN_BACK), arg) }
}

#[test]
fn entry_starts_with_the_abi_stack_alignment() {
    let stack = Stack::new(16 * 1024).unwrap();
    let mut co = Gobuf::default();
    // SAFETY: entry_body resumes ALIGN_BACK once, while the swap is suspended.
    let got = unsafe {
        prepare(&mut co, &stack, sp_recording_entry);
        swap(&mut *addr_of_mut!(ALIGN_BACK), &co, 7)
    };
    assert_eq!(got, 7);
    let sp = ENTRY_SP.load(Ordering::Relaxed);
    assert!(
        sp > stack.bottom() as usize && sp <= stack.top() as usize,
        "sp {sp:#x} not on the stack"
    );
    // x86-64 SysV: rsp + 8 is 16-byte aligned at a function's first instruction (the call pushed
    // the return address); i386 Linux: esp + 4. AAPCS64 and the RISC-V psABI: sp itself is
    // 16-byte aligned. AAPCS (32-bit ARM) asks for 8; the crate's stacks start 16-byte aligned
    // and the trampoline pushes nothing, so sp is 16-byte aligned there too.
    let expected_misalignment = if cfg!(target_arch = "x86_64") {
        8
    } else if cfg!(target_arch = "x86") {
        12
    } else {
        0
    };
    assert_eq!(sp % 16, expected_misalignment, "entry's stack pointer {sp:#x} breaks the ABI");
}

/// Contexts share the floating-point control state (MXCSR and the x87 control word on x86,
/// FPCR on AArch64, FPSCR on 32-bit ARM, fcsr's rounding mode on RISC-V): a change made in one
/// is seen in the other. The crate docs promise this; the test holds them to it.
#[test]
fn floating_point_control_state_is_shared_between_contexts() {
    static mut BACK: Gobuf = Gobuf::new_empty();
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    fn read_control() -> u64 {
        let mut mxcsr: u32 = 0;
        // SAFETY: stores MXCSR into a local.
        unsafe { asm!("stmxcsr [{}]", in(reg) &mut mxcsr, options(nostack)) };
        mxcsr as u64
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    fn write_control(value: u64) {
        let mxcsr = value as u32;
        // SAFETY: loads a valid MXCSR value read from the hardware and changed only in its
        // rounding-control bits.
        unsafe { asm!("ldmxcsr [{}]", in(reg) &mxcsr, options(nostack)) };
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    const ROUND_TOWARD_ZERO: u64 = 0b11 << 13;
    #[cfg(target_arch = "aarch64")]
    fn read_control() -> u64 {
        let fpcr: u64;
        // SAFETY: reads FPCR.
        unsafe { asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack)) };
        fpcr
    }
    #[cfg(target_arch = "aarch64")]
    fn write_control(value: u64) {
        // SAFETY: writes FPCR with only its rounding-mode bits changed.
        unsafe { asm!("msr fpcr, {}", in(reg) value, options(nomem, nostack)) };
    }
    #[cfg(target_arch = "aarch64")]
    const ROUND_TOWARD_ZERO: u64 = 0b11 << 22;
    #[cfg(target_arch = "arm")]
    fn read_control() -> u64 {
        let fpscr: u32;
        // SAFETY: reads FPSCR.
        unsafe { asm!("vmrs {}, fpscr", out(reg) fpscr, options(nomem, nostack)) };
        fpscr as u64
    }
    #[cfg(target_arch = "arm")]
    fn write_control(value: u64) {
        // SAFETY: writes FPSCR with only its rounding-mode bits (RMode, 23:22) changed.
        unsafe { asm!("vmsr fpscr, {}", in(reg) value as u32, options(nomem, nostack)) };
    }
    #[cfg(target_arch = "arm")]
    const ROUND_TOWARD_ZERO: u64 = 0b11 << 22;
    #[cfg(target_arch = "riscv64")]
    fn read_control() -> u64 {
        let frm: u64;
        // SAFETY: reads fcsr's rounding-mode field (frm); the flags, which any float operation
        // may set, stay out of the comparison.
        unsafe { asm!("frrm {}", out(reg) frm, options(nomem, nostack)) };
        frm
    }
    #[cfg(target_arch = "riscv64")]
    fn write_control(value: u64) {
        // SAFETY: writes frm with a valid rounding mode.
        unsafe { asm!("fsrm {}", in(reg) value, options(nomem, nostack)) };
    }
    /// frm = 0b001 (RTZ).
    #[cfg(target_arch = "riscv64")]
    const ROUND_TOWARD_ZERO: u64 = 0b001;

    unsafe extern "C" fn entry(_: usize) -> ! {
        write_control(read_control() | ROUND_TOWARD_ZERO);
        // SAFETY: BACK is the test's suspended swap.
        unsafe { splitstack::gogo(&*addr_of!(BACK), 0) }
    }
    let before = read_control();
    assert_eq!(before & ROUND_TOWARD_ZERO, 0, "test assumes round-to-nearest at start");
    let stack = Stack::new(16 * 1024).unwrap();
    let mut co = Gobuf::default();
    // SAFETY: entry resumes BACK once, while the swap is suspended.
    unsafe {
        prepare(&mut co, &stack, entry);
        swap(&mut *addr_of_mut!(BACK), &co, 0);
    }
    let after = read_control();
    write_control(before);
    assert_eq!(
        after,
        before | ROUND_TOWARD_ZERO,
        "the coroutine's rounding mode did not carry over"
    );
}
