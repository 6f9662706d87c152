//! `design/backends.md` quotes `examples/plugin.rs` whole; this keeps the quote and the file identical.

#[test]
fn design_doc_quotes_the_plugin_example_verbatim() {
    let doc = include_str!("../../design/backends.md");
    let example = include_str!("../examples/plugin.rs");
    let quoted = format!("```rust\n{example}```\n");
    assert!(
        doc.contains(&quoted),
        "design/backends.md must contain backends/examples/plugin.rs verbatim in a ```rust block; re-paste it"
    );
}
