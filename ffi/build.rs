//! Gives libtinyllm.so the SONAME libtinyllm.so.<ABI version>, so that a program built against
//! one binary interface never loads a library with another.

/// Must equal `TINYLLM_ABI_VERSION` in src/lib.rs; the `library` test compares the SONAME of the
/// built library with it.
const ABI_VERSION: u32 = 0;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    // ELF platforms take -soname; Apple and Windows name shared libraries differently.
    if matches!(os.as_str(), "linux" | "android" | "freebsd" | "netbsd" | "openbsd" | "dragonfly" | "illumos" | "solaris") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtinyllm.so.{ABI_VERSION}");
    }
}
