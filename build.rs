//! Let every artefact find libtorch without LD_LIBRARY_PATH:
//! - the JNI library (cdylib) gets RUNPATH `$ORIGIN` only: installed, it lies in Fiji's
//!   lib/linux64 next to the libtorch libraries, and no path of the build machine leaks into it;
//! - the CLI, tests and examples also get the LIBTORCH folder used for this build (as
//!   given, e.g. the repository's .deps/libtorch link, not the cache folder it points to, so
//!   re-provisioning libtorch elsewhere does not break them).
use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    if let Ok(libtorch) = env::var("LIBTORCH") {
        let dir = std::path::Path::new(&libtorch).join("lib");
        if let Ok(abs) = std::path::absolute(&dir) {
            for kind in ["bins", "tests", "examples"] {
                println!("cargo:rustc-link-arg-{kind}=-Wl,-rpath,{}", abs.display());
            }
        }
    }
}
