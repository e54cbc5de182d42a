//! `TopK`, `nms` and `Ohem`: equal a brute-force sort and greedy walk (ties to the lower index);
//! Err for k = 0, lengths, non-finite losses or boxes, inverted boxes; TopK unchanged after Err.
#![no_main]
use hardmine::{nms, Error, Ohem, TopK};
use libfuzzer_sys::fuzz_target;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    k: u8,
    losses: Vec<i8>,
    boxes: Vec<(u8, u8, u8, u8)>,
    thr: u8,
    nan_at: Option<u8>,
}

fn iou(a: &[f32], b: &[f32]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let i = w * h;
    let u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i;
    if u > 0.0 {
        i / u
    } else {
        0.0
    }
}

fuzz_target!(|inp: Input| {
    let k = usize::from(inp.k % 20);
    let losses: Vec<f32> = inp.losses.iter().map(|&v| f32::from(v) / 4.0).collect();
    let n = losses.len();
    let boxes: Vec<f32> = inp
        .boxes
        .iter()
        .take(n)
        .flat_map(|&(x, y, w, h)| {
            let (x, y) = (f32::from(x % 32), f32::from(y % 32));
            [x, y, x + f32::from(w % 16), y + f32::from(h % 16)]
        })
        .collect();
    let thr = f32::from(inp.thr % 11) / 10.0;
    if k == 0 {
        assert_eq!(
            Ohem::<f32, 20>::new(0).map(|_| ()),
            Err(Error::InvalidParameter("k"))
        );
        return;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| losses[b].partial_cmp(&losses[a]).unwrap().then(a.cmp(&b)));
    let mut top = TopK::<f32, 20>::new(k).unwrap();
    top.extend(0, &losses).unwrap();
    let mut exp: Vec<usize> = order.iter().copied().take(k).collect();
    exp.sort_unstable();
    assert_eq!(top.selection().indices(), &exp[..]);
    if let Some(at) = inp.nan_at.filter(|_| n > 0) {
        let before = top.selection();
        let mut bad = losses.clone();
        bad[usize::from(at) % n] = f32::NAN;
        assert_eq!(
            top.extend(0, &bad),
            Err(Error::NonFinite {
                index: usize::from(at) % n
            })
        );
        assert_eq!(top.selection(), before);
    }
    let ohem = Ohem::<f32, 20>::new(k).unwrap().with_nms(thr).unwrap();
    let r = ohem.select(&losses, Some(&boxes));
    if boxes.len() != 4 * n {
        assert_eq!(
            r,
            Err(Error::LengthMismatch {
                expected: 4 * n,
                got: boxes.len()
            })
        );
        return;
    }
    let mut kept: Vec<usize> = Vec::new();
    for &i in &order {
        if kept.len() == k {
            break;
        }
        if !kept
            .iter()
            .any(|&j| iou(&boxes[4 * i..4 * i + 4], &boxes[4 * j..4 * j + 4]) > thr)
        {
            kept.push(i);
        }
    }
    kept.sort_unstable();
    assert_eq!(r.unwrap().indices(), &kept[..], "ohem with nms");
    assert_eq!(
        nms::<f32, 20>(&losses, &boxes, thr, k).unwrap().indices(),
        &kept[..],
        "nms"
    );
    if n > 0 {
        let mut inv = boxes.clone();
        inv[0] = inv[2] + 1.0;
        assert_eq!(
            ohem.select(&losses, Some(&inv)),
            Err(Error::InvalidBox { index: 0 })
        );
    }
});
