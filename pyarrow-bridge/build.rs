//! Links the extension module with its functions in the order `symbol-order.txt` gives (design/decisions.md
//! D62): the functions small calls run sit side by side at the start of the code, so a call with cold
//! caches touches ~100 pages of code instead of ~300 (a 10-row read: ~20 µs of ~110 in the extension).
//!
//! Only release builds of the cdylib for x86_64 Linux (GNU) with rustc's own linker setup, which is
//! LLD since Rust 1.90; LLD skips names the build no longer has (`--no-warn-symbol-ordering`). A build
//! that names its own linker (a configured `linker`, or `-fuse-ld`, linker features or flavor in the
//! rustflags) is left alone, as GNU ld lacks the flag; `FLOE_SYMBOL_ORDER=off` turns it off anyway.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=symbol-order.txt");
    println!("cargo:rerun-if-env-changed=FLOE_SYMBOL_ORDER");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let rustflags = var("CARGO_ENCODED_RUSTFLAGS");
    let own_linker = env::var_os("RUSTC_LINKER").is_some()
        || ["fuse-ld", "linker-features", "linker-flavor", "link-self-contained"].iter().any(|f| rustflags.contains(f));
    let wanted = var("FLOE_SYMBOL_ORDER") != "off"
        && !own_linker
        && var("PROFILE") == "release"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_ENV") == "gnu";
    let file = Path::new(&var("CARGO_MANIFEST_DIR")).join("symbol-order.txt");
    if wanted && file.is_file() {
        println!("cargo:rustc-link-arg-cdylib=-Wl,--symbol-ordering-file={}", file.display());
        println!("cargo:rustc-link-arg-cdylib=-Wl,--no-warn-symbol-ordering");
    }
}
