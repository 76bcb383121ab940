//! Let every artefact (CLI, tests, the JNI library) find libtorch without LD_LIBRARY_PATH:
//! `$ORIGIN` for the installed layout (Fiji's lib/linux64 holds libcomir.so next to the
//! libtorch libraries), plus the LIBTORCH folder used for this build (development, tests).
use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    if let Ok(libtorch) = env::var("LIBTORCH") {
        if let Ok(abs) = std::fs::canonicalize(&libtorch) {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}/lib", abs.display());
        }
    }
}
