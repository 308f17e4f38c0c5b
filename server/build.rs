//! Rebuilds the binary when the web dashboard's build (`ui/dist`, embedded in release
//! builds by `src/http/ui.rs`) changes, including files added or removed by a new build.
fn main() {
    if std::path::Path::new("../ui/dist").exists() {
        println!("cargo:rerun-if-changed=../ui/dist");
    } else {
        // Not built yet: watch for it to appear.
        println!("cargo:rerun-if-changed=../ui");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
