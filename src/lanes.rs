//! Wide vector instructions chosen at run time. The library is built for baseline x86-64
//! (4 f32 lanes), because Fiji loads it on any PC and an unsupported instruction would take
//! the JVM down; `wide_lanes!` compiles a hot loop a second time for AVX2 (8 lanes) and picks
//! that copy when the CPU has it. Both copies compute the same values bit for bit: Rust never
//! fuses a multiply and an add, so only the lane width differs, not the rounding.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many tests now ask for the baseline copies on an AVX2 machine (to compare the two).
static BASELINE_ONLY: AtomicUsize = AtomicUsize::new(0);

/// Whether the AVX2 copies run: the CPU has AVX2 (detected once; later calls read a cached
/// flag) and no test asked for the baseline.
#[inline]
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        BASELINE_ONLY.load(Ordering::SeqCst) == 0 && std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Run `f` with the baseline copies only (for tests that compare them with the wide ones;
/// other threads meanwhile run the baseline too, which computes the same values).
#[cfg(test)]
pub fn with_baseline_only<T>(f: impl FnOnce() -> T) -> T {
    BASELINE_ONLY.fetch_add(1, Ordering::SeqCst);
    let out = f();
    BASELINE_ONLY.fetch_sub(1, Ordering::SeqCst);
    out
}

/// Defines a plain function whose body runs compiled for AVX2 where the CPU has it and for
/// the baseline elsewhere. Arguments must be plain names; no generics.
macro_rules! wide_lanes {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::lanes::has_avx2() {
                // SAFETY: AVX2 instructions run only on a CPU that has them, checked just above.
                return unsafe { avx2($($arg),*) };
            }
            body($($arg),*)
        }
    };
}
pub(crate) use wide_lanes;
