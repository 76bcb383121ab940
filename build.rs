//! Let every artefact find libtorch without LD_LIBRARY_PATH: `$ORIGIN` for the installed
//! layout (Fiji's lib/linux64 holds libcomir.so next to the libtorch libraries), plus the
//! LIBTORCH folder used for this build (CLI, tests), as given (e.g. the repository's
//! .deps/libtorch link, not the cache folder it points to, so re-provisioning libtorch elsewhere
//! does not break them). The Fiji install copy of the library gets `$ORIGIN` only
//! (scripts/runpath-origin.py, run by `gradle fijiInstall`): no build-machine path ships.
use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    if let Ok(libtorch) = env::var("LIBTORCH") {
        if let Ok(abs) = std::path::absolute(std::path::Path::new(&libtorch).join("lib")) {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", abs.display());
        }
    }
}
