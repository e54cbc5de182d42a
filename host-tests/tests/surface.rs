//! The public numeric surface stays small: `Real` (with the public traits it requires, none of
//! the core's own but the sealed and crate-private ones) declares at most 20 items, none of
//! them `#[doc(hidden)]`; the loss kernels' stages live in the crate-private `Kernels` trait.

use std::path::Path;

/// The text of `pub trait Real` in `core/src/num.rs`, from its declaration to its closing brace.
fn real_trait() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/src/num.rs");
    let text = std::fs::read_to_string(path).expect("core/src/num.rs is readable");
    let start = text
        .find("pub trait Real:")
        .expect("`pub trait Real` is declared");
    let body = &text[start..];
    let end = body.find("\n}\n").expect("the trait closes");
    body[..end].to_string()
}

/// The items a trait body declares: lines starting with `type`, `const` or `fn`.
fn items(body: &str) -> Vec<String> {
    body.lines()
        .map(str::trim_start)
        .filter(|l| ["type ", "const ", "fn "].iter().any(|k| l.starts_with(k)))
        .map(|l| {
            l.split(['(', ':', ';'])
                .next()
                .unwrap_or(l)
                .trim()
                .to_string()
        })
        .collect()
}

#[test]
fn real_has_at_most_twenty_items_none_hidden() {
    let body = real_trait();
    let items = items(&body);
    assert!(
        items.len() >= 10,
        "the parser found too few items: {items:?}"
    );
    assert!(
        items.len() <= 20,
        "Real has {} items: {items:?}",
        items.len()
    );
    assert!(!body.contains("doc(hidden)"), "Real has a hidden item");
    // Its supertraits are std's and the sealed, crate-private ones only.
    let header = body.split('{').next().unwrap_or_default();
    for bound in header.split('+').skip(1) {
        let bound = bound.trim();
        assert!(
            bound.starts_with("private::")
                || ["Copy", "PartialOrd", "Debug", "Default"].contains(&bound)
                || ["Add<", "Sub<", "Mul<", "Div<", "Neg<"]
                    .iter()
                    .any(|op| bound.starts_with(op)),
            "unexpected supertrait `{bound}`"
        );
    }
    // Kernel stages are not part of it.
    for stage in [
        "logistic_stage",
        "logistic_finish",
        "pick",
        "flip",
        "bin_small",
    ] {
        assert!(
            !items.iter().any(|i| i.ends_with(stage)),
            "`{stage}` is public"
        );
    }
}
