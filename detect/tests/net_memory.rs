//! The memory table of the crate documentation (`src/lib.rs`) against the `*_len()`
//! functions of `DetectorSpec::tiny()`.

use hardmine_detect::{Asdn, Astn, DetectorSpec};

/// The numbers of the table row whose first cell names `key` (in backticks).
fn row(doc: &str, key: &str) -> Vec<u64> {
    let tag = format!("(`{key}`)");
    let line = doc
        .lines()
        .find(|l| l.starts_with("//! |") && l.contains(&tag))
        .unwrap_or_else(|| panic!("no row for {key}"));
    line.split('|')
        .skip(2)
        .map(|c| c.trim().replace(',', ""))
        .filter(|c| !c.is_empty())
        .map(|c| c.parse().unwrap())
        .collect()
}

#[test]
fn memory_table_matches_the_functions() {
    let doc = include_str!("../src/lib.rs");
    let s = DetectorSpec::tiny();
    let (f32b, q16b, masterb) = (4u64, 4u64, 8u64);
    let n = |v: usize| v as u64;
    let outputs = n(s.cls_len() + s.box_len());
    let head = n(s.head_params().len());
    let plain = [
        ("params_len", n(s.params_len())),
        ("head_params", head),
        ("image_len", n(s.image_len())),
        ("activations_len", n(s.activations_len())),
        ("features_len", n(s.features_len())),
        ("cls_len + box_len", outputs),
        ("g_cls + g_box", outputs),
        ("head_grads", head),
        ("backbone_grads", n(s.backbone_params().len())),
        ("scratch_len", n(s.scratch_len())),
    ];
    for (key, elements) in plain {
        assert_eq!(
            row(doc, key),
            [elements, elements * f32b, elements * q16b],
            "{key}"
        );
    }
    for (key, weights) in [("head_sgd", head), ("all_sgd", n(s.params_len()))] {
        let e = 2 * weights;
        assert_eq!(row(doc, key), [e, e * f32b, e * masterb], "{key}");
    }
    let held = n(s.params_len() + s.image_len() + s.activations_len() + s.features_len())
        + 2 * outputs
        + head;
    assert_eq!(
        row(doc, "head_total"),
        [
            held * f32b + 2 * head * f32b,
            held * q16b + 2 * head * masterb
        ]
    );
    // The savings the text names.
    let (acts, outs) = (n(s.activations_len()) * 4, outputs * 4);
    assert!(doc.contains(&format!("{} bytes less", group(acts))));
    assert!(doc.contains(&format!("({} less)", group(outs))));
    let total = row(doc, "head_total");
    assert!(doc.contains(&format!(
        "{} bytes\n//! in f32 and {} in Q15.16",
        group(total[0] - acts - outs),
        group(total[1] - acts - outs)
    )));
}

#[test]
fn adversaries_memory_rows_match_the_functions() {
    let doc = include_str!("../src/lib.rs");
    let (asdn, astn) = (Asdn::tiny(), Astn::tiny());
    let s = DetectorSpec::tiny();
    let n = |v: usize| v as u64;
    let (ap, tp) = (n(asdn.params_len()), n(astn.params_len()));
    // Buffers: ASDN's hidden map and its gradient, 9 scores, their gradient and the mask;
    // ASTN's hidden units and their gradient, the angles and theirs; 8 window copies.
    let asdn_buffers = 2 * n(asdn.hidden_len()) + 3 * 9;
    let astn_buffers = 2 * n(astn.hidden_len()) + 2 * n(astn.blocks());
    let windows = 8 * n(s.patch_len());
    let plain = [
        ("asdn.params_len", ap),
        ("asdn grads", ap),
        ("asdn buffers", asdn_buffers),
        ("astn.params_len", tp),
        ("astn grads", tp),
        ("astn buffers", astn_buffers),
        ("8 * patch_len", windows),
    ];
    for (key, e) in plain {
        assert_eq!(row(doc, key), [e, 4 * e, 4 * e], "{key}");
    }
    for (key, w) in [("asdn sgd", ap), ("astn sgd", tp)] {
        assert_eq!(row(doc, key), [2 * w, 8 * w, 16 * w], "{key}");
    }
    let plain_sum = plain.iter().map(|(_, e)| e).sum::<u64>();
    let total = row(doc, "afast_total");
    assert_eq!(
        total,
        [
            4 * plain_sum + 8 * (ap + tp),
            4 * plain_sum + 16 * (ap + tp)
        ]
    );
    let head = row(doc, "head_total")[0];
    let share = (100 * total[0] + head / 2) / head;
    assert!(doc.contains(&format!(
        "Against the head's {} bytes of fine-tuning (f32), {share}% more",
        group(head)
    )));
}

/// `n` with thousands separators.
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
