//! Keeping large blocks in the heap while the network (or a registration, or training) runs.
//!
//! libtorch allocates every feature map of a forward pass with `malloc`, and glibc serves each
//! one above 32 MB (a 16-channel map of a 1024² window is 64 MB) with a fresh `mmap` and
//! returns it with `munmap` when freed. Every page of it is then faulted in anew: at 1 MP one
//! pass took ~690 000 page faults and more system time than arithmetic (3.2 s against 2.5 s);
//! a training step of the paper net spent 37 % of its time in the kernel zeroing such pages.
//! While a [`HeapReuse`] lives, large blocks come from the heap and freed ones stay there, so
//! later layers, tiles, steps and registration stages reuse pages already mapped; the last one
//! to end hands the free memory back to the system (`malloc_trim`), so Fiji's process does not
//! keep it.
use std::sync::Mutex;

/// Guards in flight (representations of both images may run side by side).
static ACTIVE: Mutex<usize> = Mutex::new(0);

/// Large allocations reuse the heap from construction until drop (glibc only; elsewhere a no-op).
pub struct HeapReuse(());

impl HeapReuse {
    pub fn begin() -> HeapReuse {
        let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        if *active == 0 {
            sys::keep_large_blocks(true);
        }
        *active += 1;
        HeapReuse(())
    }
}

impl Drop for HeapReuse {
    fn drop(&mut self) {
        let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        *active -= 1;
        if *active == 0 {
            sys::keep_large_blocks(false);
        }
    }
}

/// For a process of our own (the CLI), before its first thread: every thread allocates from
/// glibc's one main heap. By default each thread that meets a busy allocator gets an arena of
/// its own, so memory one step frees (the network's feature maps, on the pool's threads) is not
/// what the next step's threads get (SIFT's scale space): they fault fresh pages in, and two
/// threads faulting at once wait on the kernel. At 1 MP `comir register` measured 0.55 s for
/// SIFT and 1.0 s of system time with 8 arenas, 0.30 s and 0.4 s with one (bench/ab_steps.sh
/// has the whole command). Not done in Fiji: the JVM's threads have their arenas already.
pub fn one_arena_for_this_process() {
    sys::one_arena();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod sys {
    use std::os::raw::c_int;

    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
        fn malloc_trim(pad: usize) -> c_int;
    }
    // glibc's <malloc.h>
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_MAX: c_int = -4;
    const M_ARENA_MAX: c_int = -8;
    // glibc's defaults
    const DEFAULT_MMAP_MAX: c_int = 65536;
    const DEFAULT_TRIM_THRESHOLD: c_int = 128 * 1024;

    pub fn one_arena() {
        // SAFETY: as below; a limit on arenas only changes where later allocations come from.
        unsafe {
            mallopt(M_ARENA_MAX, 1);
        }
    }

    pub fn keep_large_blocks(keep: bool) {
        // SAFETY: mallopt and malloc_trim only change or apply glibc's allocation policy; they
        // take the allocator's own locks and are safe to call from any thread at any time.
        unsafe {
            if keep {
                // No mmap for large blocks (they come from the heap, which can grow without
                // bound), and no giving back of the heap's top while the pass runs.
                mallopt(M_MMAP_MAX, 0);
                mallopt(M_TRIM_THRESHOLD, c_int::MAX);
            } else {
                mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX);
                mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD);
                malloc_trim(0);
            }
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod sys {
    pub fn keep_large_blocks(_keep: bool) {}
    pub fn one_arena() {}
}
