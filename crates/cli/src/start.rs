//! A lean process start-up for the static `hull` binary (feature
//! `lean-start`): hull's own `__libc_start_main`, which does what static
//! glibc 2.36's does for a fixed-address x86-64 executable, except the CPU
//! probing.
//!
//! glibc's start-up asks the CPU, with about 80 `cpuid` instructions, for
//! its features and its cache layout (leaf 2, then leaf 4 again for each of
//! twelve cache parameters). On bare metal that is a few microseconds. In a
//! virtual machine every `cpuid` exits to the hypervisor: 6 µs each on the
//! development machine (a nested guest), where it makes an empty static C
//! program take 0.59 ms from spawn to exit instead of 0.07 ms.
//! A runtime is started for every container operation, so this is paid
//! each time.
//!
//! Without the probing glibc knows no CPU feature beyond the x86-64
//! baseline, and its string functions (memcpy, strlen, ...) resolve to their
//! SSE2 versions, as on a CPU that reports nothing. Their size thresholds,
//! which glibc would derive from the cache sizes, are set here to glibc's
//! own defaults (32 KiB data cache, 1 MiB shared cache, and the formulas
//! glibc applies to them). hull's copies are small; the Rust code's own
//! feature checks (`is_x86_feature_detected!`) ask the CPU themselves.
//!
//! Everything else is as glibc does it, in its order: the auxiliary vector,
//! tunables, IRELATIVE relocations (the string functions), thread-local
//! storage, the stack-protector and pointer-mangling canaries from
//! AT_RANDOM, early libc initialisation, the check of fds 0-2 for set-id
//! programs, constructors, and destructors at exit. The functions called
//! are glibc-internal, so the build script allows this only against glibc
//! 2.36 (the version this follows), statically linked, not position
//! independent, on x86-64; the link fails if any of them is missing.
//!
//! Before the IRELATIVE relocations are applied no string function may be
//! called: the code up to that point only reads words and walks pointers,
//! and the compiled function was checked to call nothing else there.

use core::ffi::{c_char, c_int, c_long, c_void};

/// An `Elf64_Rela` entry of the executable's IRELATIVE table (x86-64
/// only, so its words are `usize`).
#[repr(C)]
struct Rela {
    offset: usize,
    info: usize,
    addend: usize,
}

type InitFn = unsafe extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char);
type FiniFn = unsafe extern "C" fn();
type MainFn = unsafe extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) -> c_int;

// SAFETY: these are glibc 2.36's own definitions (libc.a) and the linker's
// section bounds, with the C types they have there; the build script
// checks the glibc version.
unsafe extern "C" {
    static mut __environ: *mut *mut c_char;
    static mut __libc_stack_end: *mut c_void;
    static __libc_enable_secure: c_int;
    static _dl_random: *const u8;
    fn _dl_aux_init(auxv: *const usize);
    fn __tunables_init(env: *mut *mut c_char);
    fn _dl_relocate_static_pie();
    fn __libc_setup_tls();
    fn __libc_early_init(initial: bool);
    fn __libc_init_first(argc: c_int, argv: *mut *mut c_char, env: *mut *mut c_char);
    fn __libc_check_standard_fds();
    fn _dl_debug_initialize(ldbase: usize, ns: c_long) -> *mut c_void;
    fn __cxa_atexit(
        f: unsafe extern "C" fn(*mut c_void),
        arg: *mut c_void,
        dso: *mut c_void,
    ) -> c_int;
    fn exit(code: c_int) -> !;
    fn _init();
    fn _fini();
    static __rela_iplt_start: [Rela; 0];
    static __rela_iplt_end: [Rela; 0];
    static __preinit_array_start: [InitFn; 0];
    static __preinit_array_end: [InitFn; 0];
    static __init_array_start: [InitFn; 0];
    static __init_array_end: [InitFn; 0];
    static __fini_array_start: [FiniFn; 0];
    static __fini_array_end: [FiniFn; 0];
}

// The string functions' tuning variables. glibc defines them in the same
// object as its `__libc_start_main`, where its CPU probing sets them; they
// are defined here so that object is not linked. Values: glibc's defaults
// for the cache sizes, and for the thresholds its formulas on those
// (non-temporal stores from 3/4 of the shared cache; `rep movsb`/`stosb`
// from 2 KiB, which the SSE2 versions do not use).
const DATA_CACHE: c_long = 32 * 1024;
const SHARED_CACHE: c_long = 1024 * 1024;
#[unsafe(no_mangle)]
static mut __x86_data_cache_size_half: c_long = DATA_CACHE / 2;
#[unsafe(no_mangle)]
static mut __x86_data_cache_size: c_long = DATA_CACHE;
#[unsafe(no_mangle)]
static mut __x86_shared_cache_size_half: c_long = SHARED_CACHE / 2;
#[unsafe(no_mangle)]
static mut __x86_shared_cache_size: c_long = SHARED_CACHE;
#[unsafe(no_mangle)]
static mut __x86_shared_non_temporal_threshold: c_long = SHARED_CACHE * 3 / 4;
#[unsafe(no_mangle)]
static mut __x86_rep_movsb_threshold: c_long = 2048;
#[unsafe(no_mangle)]
static mut __x86_rep_stosb_threshold: c_long = 2048;
#[unsafe(no_mangle)]
static mut __x86_rep_movsb_stop_threshold: c_long = SHARED_CACHE * 3 / 4;
#[unsafe(no_mangle)]
static mut __x86_string_control: c_int = 0;

/// Runs the destructors, last first, as glibc's `call_fini` does.
unsafe extern "C" fn call_fini(_: *mut c_void) {
    // SAFETY: the linker's bounds of .fini_array, which holds function
    // pointers; `_fini` is the executable's own.
    unsafe {
        let start = &raw const __fini_array_start as *const FiniFn;
        let mut end = &raw const __fini_array_end as *const FiniFn;
        while end > start {
            end = end.sub(1);
            (*end)();
        }
        _fini();
    }
}

/// Called by the C run-time's `_start` with `main` and the initial stack.
///
/// # Safety
/// Only as the process entry: once, on the initial stack, single-threaded.
#[unsafe(no_mangle)]
unsafe extern "C" fn __libc_start_main(
    main: MainFn,
    argc: c_int,
    argv: *mut *mut c_char,
    _init_unused: *mut c_void,
    _fini_unused: *mut c_void,
    rtld_fini: Option<unsafe extern "C" fn()>,
    stack_end: *mut c_void,
) -> ! {
    // SAFETY: the kernel's initial stack layout: argv, NULL, envp, NULL,
    // then the auxiliary vector. Up to the IRELATIVE loop nothing here calls
    // a string function (see the module's doc).
    unsafe {
        #[allow(clippy::cast_sign_loss)]
        let env = argv.add(argc as usize + 1);
        __environ = env;
        __libc_stack_end = stack_end;
        let mut p = env;
        while !(*p).is_null() {
            p = p.add(1);
        }
        _dl_aux_init(p.add(1) as *const usize);
        __tunables_init(env);
        _dl_relocate_static_pie();

        let mut r = &raw const __rela_iplt_start as *const Rela;
        let end = &raw const __rela_iplt_end as *const Rela;
        while r < end {
            // R_X86_64_IRELATIVE: the slot gets what the resolver at the
            // addend returns.
            let resolver =
                core::mem::transmute::<usize, unsafe extern "C" fn() -> usize>((*r).addend);
            *((*r).offset as *mut usize) = resolver();
            r = r.add(1);
        }

        __libc_setup_tls();
        // The stack-protector canary (its low byte zero) and the pointer
        // guard, from the 16 random bytes at AT_RANDOM, in the thread
        // control block where glibc keeps them (%fs:0x28 and %fs:0x30).
        let random = _dl_random;
        let canary = (random as *const u64).read_unaligned() & !0xff;
        let guard = (random.add(8) as *const u64).read_unaligned();
        core::arch::asm!(
            "mov qword ptr fs:[0x28], {canary}",
            "mov qword ptr fs:[0x30], {guard}",
            canary = in(reg) canary,
            guard = in(reg) guard,
            options(nostack, preserves_flags),
        );

        if let Some(f) = rtld_fini {
            // A function of no arguments, called with one (ignored).
            let f = core::mem::transmute::<unsafe extern "C" fn(), unsafe extern "C" fn(*mut c_void)>(
                f,
            );
            __cxa_atexit(f, core::ptr::null_mut(), core::ptr::null_mut());
        }
        __libc_early_init(true);
        __libc_init_first(argc, argv, env);
        __cxa_atexit(call_fini, core::ptr::null_mut(), core::ptr::null_mut());
        if __libc_enable_secure != 0 {
            __libc_check_standard_fds();
        }

        let run = |start: *const InitFn, end: *const InitFn| {
            let mut f = start;
            while f < end {
                (*f)(argc, argv, env);
                f = f.add(1);
            }
        };
        run(
            &raw const __preinit_array_start as *const InitFn,
            &raw const __preinit_array_end as *const InitFn,
        );
        _init();
        run(
            &raw const __init_array_start as *const InitFn,
            &raw const __init_array_end as *const InitFn,
        );
        _dl_debug_initialize(0, 0);
        exit(main(argc, argv, env))
    }
}
