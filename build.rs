//! Let every artefact find libtorch without LD_LIBRARY_PATH: `$ORIGIN` for the installed
//! layout (Fiji's lib/linux64 holds libcomir.so next to the libtorch libraries), plus the
//! LIBTORCH folder used for this build (CLI, tests), as given (e.g. the repository's
//! .deps/libtorch link, not the cache folder it points to, so re-provisioning libtorch elsewhere
//! does not break them). The Fiji install copy of the library gets `$ORIGIN` only
//! (scripts/runpath-origin.py, run by `gradle fijiInstall`): no build-machine path ships.
use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=COMIR_PORTABLE");
    println!("cargo:rerun-if-changed=native/old-linux-compat.cpp");
    // The portable build (scripts/build-portable-lib.sh) links the library against old glibc;
    // see native/old-linux-compat.cpp for why it needs these few definitions.
    if env::var_os("COMIR_PORTABLE").is_some() {
        let objects = cc::Build::new()
            .cpp(true)
            .pic(true)
            .flag("-std=c++17")
            .file("native/old-linux-compat.cpp")
            .compile_intermediates();
        for object in objects {
            println!("cargo:rustc-cdylib-link-arg={}", object.display());
        }
        // zig's linker knows neither GCC's library folder (torch-sys asks for -lgomp) nor
        // -lstdc++ (it drops it, leaving C++ symbols unversioned): name both files directly.
        let links = std::path::PathBuf::from(env::var("OUT_DIR").unwrap()).join("links");
        std::fs::create_dir_all(&links).unwrap();
        for name in ["libgomp.so", "libstdc++.so"] {
            let target = gcc_file(name);
            let link = links.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&target, &link).unwrap();
        }
        println!("cargo:rustc-link-search=native={}", links.display());
        println!("cargo:rustc-cdylib-link-arg={}", links.join("libstdc++.so").display());
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    if let Ok(libtorch) = env::var("LIBTORCH") {
        if let Ok(abs) = std::path::absolute(std::path::Path::new(&libtorch).join("lib")) {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", abs.display());
        }
    }
}

/// The file GCC itself would link for `name` (e.g. libgomp.so), resolved to the real library.
fn gcc_file(name: &str) -> std::path::PathBuf {
    let out = std::process::Command::new("g++")
        .arg(format!("-print-file-name={name}"))
        .output()
        .expect("g++ is needed for the portable build");
    let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    std::fs::canonicalize(&path).unwrap_or_else(|_| panic!("g++ does not know {name} ({path})"))
}
