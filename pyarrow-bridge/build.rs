//! Links the extension module with its functions in the order `symbol-order.txt` gives (design/decisions.md
//! D62): the functions small calls run sit side by side at the start of the code, so a call with cold
//! caches touches ~100 pages of code instead of ~300 (a 10-row read: ~20 µs of ~110 in the extension).
//!
//! Only release builds of the cdylib for x86_64 Linux (GNU), where rustc links with LLD by default
//! since 1.90; LLD skips names the build no longer has (`--no-warn-symbol-ordering`). A build with
//! another linker that lacks `--symbol-ordering-file` (GNU ld) sets `FLOE_SYMBOL_ORDER=off`.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=symbol-order.txt");
    println!("cargo:rerun-if-env-changed=FLOE_SYMBOL_ORDER");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let wanted = var("FLOE_SYMBOL_ORDER") != "off"
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
