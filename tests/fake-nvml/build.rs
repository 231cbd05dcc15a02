//! Compiles `src/fake_nvml.c` into a shared library in `OUT_DIR`. The `cc` crate only builds
//! static archives, so it is used to find the C compiler and its flags, and the link into a
//! `.so` is one extra invocation.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "src/fake_nvml.c";
    println!("cargo:rerun-if-changed={source}");
    let out_dir =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts"));
    let library = out_dir.join("libnvidia-ml.so");

    let compiler = cc::Build::new().opt_level(1).get_compiler();
    let mut command: Command = compiler.to_command();
    command
        .args(["-shared", "-fPIC", "-std=c11", "-Wall", "-Wextra"])
        .arg("-o")
        .arg(&library)
        .arg(source)
        .arg("-lpthread")
        .arg("-ldl");
    // Name the compiler invocation, not the environment `cc` wraps it in.
    let invocation = format!(
        "{:?} {:?}",
        command.get_program(),
        command.get_args().collect::<Vec<_>>()
    );
    let status = command
        .status()
        .unwrap_or_else(|err| panic!("cannot run the C compiler ({invocation}): {err}"));
    assert!(status.success(), "compiling {source} failed: {invocation}");
}
