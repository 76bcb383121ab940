// Linked only into the portable libcomir.so (scripts/build-portable-lib.sh), which must load on
// every Linux the torch wheel loads on (manylinux_2_28: glibc 2.28, libstdc++ of GCC 8).
// The Rust side links against glibc 2.28 stubs (zig), but tch's C++ wrapper is compiled with
// this machine's GCC 12 headers, which make it call three things older systems lack. Defining
// them here binds those calls inside the library (rustc's version script keeps them local), so
// the loader never asks the system for them. Each has the meaning the newer runtime gives it.
#include <new>
#include <sstream>

// glibc 2.32: lets libstdc++ skip atomic reference counts in single-threaded programs.
// 0 = "maybe multi-threaded": always use atomics, which is always correct.
extern "C" {
char __libc_single_threaded = 0;
}

namespace std {
// GLIBCXX_3.4.29: thrown by `new T[n]` when n * sizeof(T) overflows.
void __throw_bad_array_new_length() { throw bad_array_new_length(); }

// GLIBCXX_3.4.26: the default constructor of std::ostringstream (before that only the one
// taking an open mode existed); instantiate it here from the header's inline definition.
template __cxx11::basic_ostringstream<char>::basic_ostringstream();
}  // namespace std
