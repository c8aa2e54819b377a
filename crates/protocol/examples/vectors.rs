//! Writes the test vectors to docs/vectors (or the directory given).
//!
//! ```text
//! cargo run -p backchannel-protocol --example vectors [-- DIR]
//! ```
//!
//! The test suite fails when the committed files differ from this output.

// A tool beside the crate, not the core: it writes the files.
#[allow(clippy::disallowed_methods)]
fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/vectors"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir)?;
    for (name, value) in backchannel_protocol::vectors::generate() {
        let path = dir.join(name);
        std::fs::write(&path, backchannel_protocol::vectors::to_text(&value))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
