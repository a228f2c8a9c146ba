//! Build script of the crates that link libtorch (operators, pipeline,
//! benches, examples): makes their binaries and tests find libtorch without
//! LD_LIBRARY_PATH, and keeps CUDA usable.
//!
//! torch-sys reports the folder of the libtorch it linked. We give our
//! binaries an rpath to it, and, when that libtorch has CUDA, link
//! libtorch_cuda with `--no-as-needed`: nothing references it directly, so
//! the linker would otherwise drop it and `Cuda::is_available()` would be
//! false even on a GPU machine.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
