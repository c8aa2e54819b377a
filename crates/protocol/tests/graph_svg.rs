// The core is sans-IO, its tests are not: this one reads a font file (and
// may write the SVGs it checks).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]
//! The what-if graph's SVG, measured as a viewer would draw it: every
//! label's text is measured with the real DejaVu Sans font (Debian's
//! `fonts-dejavu-core`), not with the layout's own width estimate, and must
//! lie inside its node's outline. A three-step cascade is taller than wide.
//!
//! `GRAPH_SVG_OUT=DIR` also writes each scenario's SVG to DIR, to look at.

mod common;

use std::collections::BTreeMap;

use ttf_parser::Face;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// The font, or `None` (after saying so) where it may be missing: in CI
/// (`CI=true`) its absence fails the test.
fn font() -> Option<Vec<u8>> {
    match std::fs::read(FONT) {
        Ok(data) => Some(data),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "{FONT}: {e}: CI must install fonts-dejavu-core (.ci/run does) to measure the graph's labels"
        ),
        Err(_) => {
            println!("skipped: fonts-dejavu-core is not installed ({FONT} is missing)");
            None
        }
    }
}

/// One element as the SVG writes it: its name, attributes and text.
#[derive(Clone, Debug, Default)]
struct Element {
    name: String,
    attrs: BTreeMap<String, String>,
    text: String,
}

impl Element {
    fn num(&self, key: &str) -> f64 {
        let v = self
            .attrs
            .get(key)
            .unwrap_or_else(|| panic!("<{}> has no {key}", self.name));
        v.parse()
            .unwrap_or_else(|e| panic!("<{}> {key}={v:?}: {e}", self.name))
    }
}

/// A `<g>` of class `node`, `legend` or `channel`: its outline (the first
/// rect or polygon in it) and its lines of text.
#[derive(Debug)]
struct Group {
    class: String,
    id: String,
    outline: Element,
    texts: Vec<Element>,
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `name key="value" …` inside a tag.
fn tag(inner: &str) -> Element {
    let inner = inner.trim_end_matches('/').trim();
    let (name, mut rest) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
    let mut attrs = BTreeMap::new();
    while let Some((key, after)) = rest.split_once("=\"") {
        let (value, after) = after.split_once('"').expect("an unterminated attribute");
        attrs.insert(key.trim().to_string(), unescape(value));
        rest = after;
    }
    Element {
        name: name.to_string(),
        attrs,
        text: String::new(),
    }
}

/// Every element, in order, with each `<text>`'s content (the SVG writes
/// no nested markup inside text).
fn elements(svg: &str) -> Vec<Element> {
    let mut out: Vec<Element> = Vec::new();
    let mut rest = svg;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').expect("an unterminated tag") + open;
        let inner = &rest[open + 1..close];
        let after = &rest[close + 1..];
        if !inner.starts_with('?') && !inner.starts_with('!') {
            let mut e = tag(inner);
            if e.name == "text" {
                let end = after.find("</text>").expect("an unterminated text");
                e.text = unescape(&after[..end]);
            }
            out.push(e);
        }
        rest = after;
    }
    out
}

/// The SVG's node, legend and channel groups.
fn groups(svg: &str) -> Vec<Group> {
    let mut out = Vec::new();
    let mut current: Option<Group> = None;
    for e in elements(svg) {
        match e.name.as_str() {
            "g" => {
                let class = e.attrs.get("class").cloned().unwrap_or_default();
                let first = class.split(' ').next().unwrap_or_default();
                if ["node", "legend", "channel"].contains(&first) {
                    assert!(current.is_none(), "nested groups");
                    current = Some(Group {
                        class,
                        id: e.attrs.get("id").cloned().unwrap_or_default(),
                        outline: Element::default(),
                        texts: Vec::new(),
                    });
                }
            }
            "/g" => out.extend(current.take()),
            "rect" | "polygon" => {
                if let Some(g) = current.as_mut().filter(|g| g.outline.name.is_empty()) {
                    g.outline = e;
                }
            }
            "text" => {
                if let Some(g) = current.as_mut() {
                    g.texts.push(e);
                }
            }
            _ => {}
        }
    }
    out
}

/// The width of `text` at `size` px in the real font: the glyphs'
/// horizontal advances (kerning would only narrow it).
fn measure(face: &Face<'_>, text: &str, size: f64) -> f64 {
    let units: u32 = text
        .chars()
        .map(|c| {
            let g = face
                .glyph_index(c)
                .unwrap_or_else(|| panic!("DejaVu Sans has no glyph for {c:?}"));
            u32::from(face.glyph_hor_advance(g).unwrap_or(0))
        })
        .sum();
    f64::from(units) * size / f64::from(face.units_per_em())
}

/// The box the glyphs of one `<text>` cover: its advance across, the
/// font's ascent above the baseline and descent below.
fn text_box(face: &Face<'_>, t: &Element) -> [(f64, f64); 4] {
    let size = t.num("font-size");
    let w = measure(face, &t.text, size);
    let (x, y) = (t.num("x"), t.num("y"));
    let left = match t.attrs.get("text-anchor").map(String::as_str) {
        Some("middle") => x - w / 2.0,
        Some("end") => x - w,
        _ => x,
    };
    let em = f64::from(face.units_per_em());
    let top = y - f64::from(face.ascender()) * size / em;
    let bottom = y - f64::from(face.descender()) * size / em;
    [
        (left, top),
        (left + w, top),
        (left, bottom),
        (left + w, bottom),
    ]
}

/// Is `p` inside `outline`, at least half its stroke from the edge?
fn inside(outline: &Element, p: (f64, f64)) -> bool {
    let inset = outline
        .attrs
        .get("stroke-width")
        .map_or(1.0, |w| w.parse::<f64>().unwrap())
        / 2.0;
    match outline.name.as_str() {
        "rect" => inside_rect(outline, p, inset),
        "polygon" => inside_polygon(outline, p, inset),
        other => panic!("no outline: <{other}>"),
    }
}

/// Inside a rect whose corners are rounded with `rx`/`ry`.
fn inside_rect(r: &Element, (px, py): (f64, f64), inset: f64) -> bool {
    let (x, y) = (r.num("x") + inset, r.num("y") + inset);
    let (w, h) = (r.num("width") - 2.0 * inset, r.num("height") - 2.0 * inset);
    let rx = r.attrs.get("rx").map_or(0.0, |_| r.num("rx"));
    let ry = r.attrs.get("ry").map_or(rx, |_| r.num("ry"));
    if px < x || px > x + w || py < y || py > y + h {
        return false;
    }
    // In a corner's square, within its ellipse.
    let cx = px.clamp(x + rx, x + w - rx);
    let cy = py.clamp(y + ry, y + h - ry);
    if rx <= 0.0 || ry <= 0.0 || (cx == px || cy == py) {
        return true;
    }
    ((px - cx) / rx).powi(2) + ((py - cy) / ry).powi(2) <= 1.0
}

/// Inside a convex polygon, at least `inset` from each of its sides.
fn inside_polygon(poly: &Element, (px, py): (f64, f64), inset: f64) -> bool {
    let pts: Vec<(f64, f64)> = poly.attrs["points"]
        .split_whitespace()
        .map(|xy| {
            let (x, y) = xy.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect();
    let area: f64 = (0..pts.len())
        .map(|i| {
            let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum();
    (0..pts.len()).all(|i| {
        let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
        let cross = (b.0 - a.0) * (py - a.1) - (b.1 - a.1) * (px - a.0);
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        cross * area.signum() / len >= inset
    })
}

/// Every line of every node (and of the legend and channel labels) fits
/// its outline, measured with the real font. The number of nodes checked.
fn labels_fit(face: &Face<'_>, name: &str, svg: &str) -> usize {
    let gs = groups(svg);
    for g in &gs {
        assert!(
            !g.texts.is_empty(),
            "{name}: {} {} has no text",
            g.class,
            g.id
        );
        for t in &g.texts {
            for corner in text_box(face, t) {
                assert!(
                    inside(&g.outline, corner),
                    "{name}: {:?} of {} {} sticks out of its {} at {corner:?}: {:?}",
                    t.text,
                    g.class,
                    g.id,
                    g.outline.name,
                    g.outline.attrs
                );
            }
        }
    }
    gs.iter().filter(|g| g.class.starts_with("node ")).count()
}

/// The root's width and height, which its viewBox repeats.
fn size(svg: &str) -> (f64, f64) {
    let root = elements(svg)
        .into_iter()
        .find(|e| e.name == "svg")
        .expect("no <svg>");
    let (w, h) = (root.num("width"), root.num("height"));
    assert_eq!(root.attrs["viewBox"], format!("0 0 {w} {h}"));
    (w, h)
}

/// No two nodes' outlines overlap.
fn apart(name: &str, svg: &str) {
    let rects: Vec<(String, [f64; 4])> = groups(svg)
        .into_iter()
        .filter(|g| g.class.starts_with("node "))
        .map(|g| {
            let o = &g.outline;
            let b = if o.name == "rect" {
                [o.num("x"), o.num("y"), o.num("width"), o.num("height")]
            } else {
                let xy: Vec<(f64, f64)> = o.attrs["points"]
                    .split_whitespace()
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect();
                let x0 = xy.iter().map(|p| p.0).fold(f64::MAX, f64::min);
                let y0 = xy.iter().map(|p| p.1).fold(f64::MAX, f64::min);
                let x1 = xy.iter().map(|p| p.0).fold(f64::MIN, f64::max);
                let y1 = xy.iter().map(|p| p.1).fold(f64::MIN, f64::max);
                [x0, y0, x1 - x0, y1 - y0]
            };
            (g.id, b)
        })
        .collect();
    for (i, (a, ra)) in rects.iter().enumerate() {
        for (b, rb) in &rects[i + 1..] {
            let overlap = ra[0] < rb[0] + rb[2]
                && rb[0] < ra[0] + ra[2]
                && ra[1] < rb[1] + rb[3]
                && rb[1] < ra[1] + ra[3];
            assert!(!overlap, "{name}: {a} overlaps {b}");
        }
    }
}

fn write_out(name: &str, svg: &str) {
    if let Ok(dir) = std::env::var("GRAPH_SVG_OUT") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.svg")), svg).unwrap();
    }
}

#[test]
fn a_three_step_cascade_is_taller_than_wide_and_its_labels_fit() {
    let Some(data) = font() else { return };
    let face = Face::parse(&data, 0).unwrap();
    let path = common::files()
        .into_iter()
        .find(|p| p.ends_with("05-two-red-line-chain.json"))
        .unwrap();
    let s = common::load(&path);
    let cascade = common::cascade(&s);
    assert_eq!(cascade.steps.len(), 3, "{}", cascade.to_text());
    let svg = cascade.to_svg();
    write_out(&s.name, &svg);
    let (w, h) = size(&svg);
    println!("{}: {w}x{h}", s.name);
    assert!(h > w, "{}: {w} wide, {h} tall", s.name);
    // Three steps and the two red lines between them.
    assert_eq!(labels_fit(&face, &s.name, &svg), 5);
    apart(&s.name, &svg);
}

#[test]
fn every_scenario_graph_fits_its_labels() {
    let Some(data) = font() else { return };
    let face = Face::parse(&data, 0).unwrap();
    let mut checked = 0;
    for path in common::files() {
        let s = common::load(&path);
        if !s.asks() {
            continue;
        }
        let cascade = common::cascade(&s);
        let svg = cascade.to_svg();
        write_out(&s.name, &svg);
        let nodes = labels_fit(&face, &s.name, &svg);
        let effects: usize = cascade.steps.iter().map(|st| st.effects.len()).sum();
        assert_eq!(nodes, cascade.steps.len() + effects, "{}", s.name);
        apart(&s.name, &svg);
        if cascade.steps.len() == 3 {
            let (w, h) = size(&svg);
            assert!(h > w, "{}: {w} wide, {h} tall", s.name);
        }
        checked += 1;
    }
    assert!(checked >= 20, "{checked} scenarios");
}
