//! A small SVG writer for the figures of `hardmine plot`: line charts (linear or log y),
//! grouped bars, and image panels with boxes. No dependencies; readable labels.

use std::fmt::Write;

const W: f64 = 720.0;
const H: f64 = 440.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 58.0;
/// Colour-blind-safe palette (Okabe-Ito), then greys.
pub const COLOURS: [&str; 9] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
    "#999999",
];

/// A line series: name and points.
pub type Series = (String, Vec<(f64, f64)>);

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Axis mapping of a plot area.
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    log_y: bool,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        LEFT + (x - self.x0) / (self.x1 - self.x0).max(1e-300) * (W - LEFT - RIGHT)
    }
    fn py(&self, y: f64) -> f64 {
        let (y, y0, y1) = if self.log_y {
            (y.max(1e-300).log10(), self.y0.log10(), self.y1.log10())
        } else {
            (y, self.y0, self.y1)
        };
        H - BOTTOM - (y - y0) / (y1 - y0).max(1e-300) * (H - TOP - BOTTOM)
    }
}

fn head(out: &mut String, title: &str, xlabel: &str, ylabel: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="13"><rect width="100%" height="100%" fill="white"/><text x="{}" y="26" text-anchor="middle" font-size="16" font-weight="bold">{}</text><text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(18 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        esc(title),
        (LEFT + W - RIGHT) / 2.0,
        H - 14.0,
        esc(xlabel),
        (TOP + H - BOTTOM) / 2.0,
        esc(ylabel)
    );
}

fn ticks(out: &mut String, f: &Frame) {
    let (fw, fh) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let _ = write!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{fw}" height="{fh}" fill="none" stroke="#333"/>"##
    );
    for k in 0..=5 {
        let x = f.x0 + (f.x1 - f.x0) * f64::from(k) / 5.0;
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" font-size="11">{}</text>"#,
            f.px(x),
            H - BOTTOM + 16.0,
            short(x)
        );
    }
    let ys: Vec<f64> = if f.log_y {
        let (a, b) = (f.y0.log10().floor() as i32, f.y1.log10().ceil() as i32);
        (a..=b)
            .map(|e| 10f64.powi(e))
            .filter(|&y| y >= f.y0 * 0.999 && y <= f.y1 * 1.001)
            .collect()
    } else {
        (0..=5)
            .map(|k| f.y0 + (f.y1 - f.y0) * f64::from(k) / 5.0)
            .collect()
    };
    for y in ys {
        let (right, py, lx, ty, label) = (W - RIGHT, f.py(y), LEFT - 6.0, f.py(y) + 4.0, short(y));
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{right}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{lx}" y="{ty:.1}" text-anchor="end" font-size="11">{label}</text>"##
        );
    }
}

fn short(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e4 || v.abs() < 1e-2 {
        format!("{v:.0e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn legend(out: &mut String, names: &[String]) {
    for (i, n) in names.iter().enumerate() {
        let y = TOP + 14.0 + 20.0 * i as f64;
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="14" height="4" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            W - RIGHT + 12.0,
            y - 6.0,
            COLOURS[i % COLOURS.len()],
            W - RIGHT + 32.0,
            y,
            esc(n)
        );
    }
}

fn polyline(out: &mut String, f: &Frame, pts: &[(f64, f64)], colour: &str, dash: bool) {
    let d: Vec<String> = pts
        .iter()
        .filter(|p| p.1.is_finite() && (!f.log_y || p.1 > 0.0))
        .map(|&(x, y)| format!("{:.1},{:.1}", f.px(x), f.py(y)))
        .collect();
    let _ = write!(
        out,
        r#"<polyline fill="none" stroke="{colour}" stroke-width="2"{} points="{}"/>"#,
        if dash {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        },
        d.join(" ")
    );
}

/// A line chart of `series`; `y_range` fixes the y axis (else it fits the data).
pub fn lines(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[Series],
    log_y: bool,
    y_range: Option<(f64, f64)>,
) -> String {
    let all = || {
        series
            .iter()
            .flat_map(|s| s.1.iter())
            .filter(|p| p.1.is_finite() && (!log_y || p.1 > 0.0))
    };
    let x0 = all().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x1 = all().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let (y0, y1) = y_range.unwrap_or_else(|| {
        let lo = all().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = all().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        if log_y {
            (
                10f64.powf(lo.log10().floor()),
                10f64.powf(hi.log10().ceil()),
            )
        } else {
            (lo.min(0.0), hi * 1.05)
        }
    });
    let f = Frame {
        x0,
        x1,
        y0,
        y1,
        log_y,
    };
    let mut out = String::new();
    head(&mut out, title, xlabel, ylabel);
    ticks(&mut out, &f);
    for (i, (_, pts)) in series.iter().enumerate() {
        polyline(&mut out, &f, pts, COLOURS[i % COLOURS.len()], false);
    }
    legend(
        &mut out,
        &series.iter().map(|s| s.0.clone()).collect::<Vec<_>>(),
    );
    out.push_str("</svg>\n");
    out
}

/// Grouped bars: one group of bars per category, `values[category][series]` in `[0, 1]`.
pub fn grouped_bars(
    title: &str,
    ylabel: &str,
    categories: &[String],
    series: &[String],
    values: &[Vec<f64>],
) -> String {
    let f = Frame {
        x0: 0.0,
        x1: categories.len().max(1) as f64,
        y0: 0.0,
        y1: 1.0,
        log_y: false,
    };
    let mut out = String::new();
    head(&mut out, title, "", ylabel);
    ticks_y(&mut out, &f);
    let k = series.len().max(1) as f64;
    for (i, (name, v)) in categories.iter().zip(values).enumerate() {
        let (xa, xb) = (f.px(i as f64 + 0.1), f.px(i as f64 + 0.9));
        let bw = (xb - xa) / k;
        for (g, &value) in v.iter().enumerate() {
            let value = if value.is_finite() {
                value.clamp(0.0, 1.0)
            } else {
                0.0
            };
            let (ya, yb) = (f.py(value), f.py(0.0));
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{ya:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                xa + bw * g as f64,
                bw * 0.9,
                (yb - ya).max(0.0),
                COLOURS[g % COLOURS.len()]
            );
        }
        let _ = write!(
            out,
            r#"<text transform="translate({:.1} {}) rotate(-30)" text-anchor="end" font-size="11">{}</text>"#,
            (xa + xb) / 2.0,
            H - BOTTOM + 14.0,
            esc(name)
        );
    }
    legend(&mut out, series);
    out.push_str("</svg>\n");
    out
}

/// The frame and the y axis' labels of a chart over `[0, 1]`.
fn ticks_y(out: &mut String, f: &Frame) {
    let (fw, fh) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let _ = write!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{fw}" height="{fh}" fill="none" stroke="#333"/>"##
    );
    for k in 0..=5 {
        let y = f64::from(k) / 5.0;
        let (right, py) = (W - RIGHT, f.py(y));
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{right}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
            LEFT - 6.0,
            py + 4.0,
            short(y)
        );
    }
}

/// A labelled box on an image panel: `[x1, y1, x2, y2]` in image pixels and its caption.
pub type Labelled = ([f64; 4], String);

/// One image (grey values `0..=max`, row-major `side x side`) drawn once per panel, with the
/// ground truth (green, dashed) and the panel's boxes (orange) over it.
pub fn scene_panels(
    title: &str,
    pixels: &[u8],
    side: usize,
    max: u8,
    truth: &[Labelled],
    panels: &[(String, Vec<Labelled>)],
) -> String {
    const CELL: f64 = 3.0; // screen pixels per image pixel
    const COLUMNS: usize = 4;
    let size = side as f64 * CELL;
    let rows = panels.len().div_ceil(COLUMNS).max(1);
    let (w, h) = (
        COLUMNS as f64 * (size + 16.0) + 16.0,
        rows as f64 * (size + 36.0) + 48.0,
    );
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Arial, sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/><text x="{}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        w / 2.0,
        esc(title)
    );
    // The image once, reused by every panel.
    out.push_str(r#"<defs><g id="scene">"#);
    for (i, &v) in pixels.iter().enumerate() {
        if v == 0 {
            continue;
        }
        let g = 255 - (u32::from(v.min(max)) * 255 / u32::from(max.max(1)));
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="{CELL}" height="{CELL}" fill="rgb({g},{g},{g})"/>"#,
            (i % side) as f64 * CELL,
            (i / side) as f64 * CELL
        );
    }
    out.push_str("</g></defs>");
    for (p, (name, boxes)) in panels.iter().enumerate() {
        let x0 = 16.0 + (p % COLUMNS) as f64 * (size + 16.0);
        let y0 = 48.0 + (p / COLUMNS) as f64 * (size + 36.0);
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><g transform="translate({x0:.1} {y0:.1})"><use href="#scene"/>"##,
            x0 + size / 2.0,
            y0 - 4.0,
            esc(name)
        );
        let _ = write!(
            out,
            r##"<rect width="{size}" height="{size}" fill="none" stroke="#333"/>"##
        );
        let mut draw = |b: &[f64; 4], label: &str, colour: &str, dash: &str| {
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="{colour}" stroke-width="1.5"{dash}/><text x="{:.1}" y="{:.1}" fill="{colour}" font-size="9">{}</text>"#,
                b[0] * CELL,
                b[1] * CELL,
                (b[2] - b[0]) * CELL,
                (b[3] - b[1]) * CELL,
                b[0] * CELL,
                (b[1] * CELL - 2.0).max(8.0),
                esc(label)
            );
        };
        for (b, label) in truth {
            draw(b, label, "#009E73", r#" stroke-dasharray="3 2""#);
        }
        for (b, label) in boxes {
            draw(b, label, "#D55E00", "");
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>\n");
    out
}
