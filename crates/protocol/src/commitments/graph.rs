//! The what-if cascade as a graph a person can read: first a neutral
//! model (nodes, edges, channel clusters), then two renderings of it, a
//! Graphviz DOT graph and an SVG laid out here, in pure Rust, so that no
//! Graphviz install is needed to see a cascade.
//!
//! The model is built from the cascade with one small function per
//! [`Effect`] variant: a new kind of effect adds a node kind (and perhaps
//! an edge kind) and one such function; both renderings and the legend
//! follow from the kinds.
//!
//! The SVG layout is layered, top to bottom, and deterministic: the nodes
//! are in causal order (a step, then what it sets off), one node a row,
//! so a red line sits below the step that triggers it and above the step
//! that is its response. Events stand in the left column; each channel's
//! commitments in a column of their own, on a labelled background. Edges
//! run in a gutter between the columns, each in a lane of its own, so no
//! edge crosses a node. Labels are wrapped at [`WRAP`] characters and
//! their width is estimated with a conservative table of DejaVu Sans
//! advances, so the glyphs a viewer draws fit their boxes.

use super::structured::short;
use super::whatif::{Cascade, Effect, Note, Step, Why};

/// Characters per label line: narrow boxes keep the graph taller than wide.
pub const WRAP: usize = 28;

/// What a node stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A step of the cascade: an event.
    Event,
    /// A red line that fires, with its issuer.
    RedLine,
    /// An assurance that lapses under every reading still open.
    Lapse,
    /// An assurance that lapses under some readings only.
    PartialLapse,
    /// An assurance the act would breach.
    Breach,
    /// A guarantor's undertaking that a breach calls on, with the guarantor.
    Guarantee,
    /// A proviso of an assurance the act would fulfil (a claim until found).
    Fulfilment,
}

/// What an edge stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    /// The act meets a red line's trigger.
    Triggers,
    /// A red line's declared response: a later step.
    Responds,
    /// The act lapses an assurance.
    Lapses,
    /// The act breaches an assurance.
    Breaches,
    /// A breach calls on a guarantor.
    Invokes,
    /// The act would fulfil a proviso.
    Fulfils,
    /// A red line that already fired is met again: the cycle is cut.
    Cut,
}

/// One node: its label is already wrapped, one entry a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Unique in the graph, usable as a DOT and an XML id.
    pub id: String,
    /// What it stands for.
    pub kind: NodeKind,
    /// The label, wrapped.
    pub lines: Vec<String>,
    /// The channel of the commitment, hex (none for an event).
    pub channel: Option<String>,
    /// The commitment, hex (none for an event).
    pub commitment: Option<String>,
    /// The step it belongs to.
    pub step: usize,
}

/// One edge between two nodes' ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The node it leaves.
    pub from: String,
    /// The node it points at.
    pub to: String,
    /// What it stands for.
    pub kind: EdgeKind,
    /// Its label, wrapped (only where the nodes do not say it).
    pub label: Vec<String>,
}

/// The commitments of one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// The channel, hex.
    pub channel: String,
    /// Its nodes' ids, in order.
    pub nodes: Vec<String>,
}

/// The neutral graph of a cascade.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Graph {
    /// In causal order: each step, then what it sets off.
    pub nodes: Vec<Node>,
    /// In the order they were found.
    pub edges: Vec<Edge>,
    /// One per channel, in order of first appearance.
    pub clusters: Vec<Cluster>,
}

/// Words in lines of at most `width` characters; a word longer than a line
/// (a 64-hex id) is broken hard, so no line ever overflows its box.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        for piece in pieces(word, width) {
            let fits = line.chars().count() + 1 + piece.chars().count() <= width;
            if line.is_empty() {
                line = piece;
            } else if fits {
                line.push(' ');
                line.push_str(&piece);
            } else {
                lines.push(std::mem::replace(&mut line, piece));
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A word in chunks of at most `width` characters.
fn pieces(word: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    chars.chunks(width).map(|c| c.iter().collect()).collect()
}

/// Several texts, each wrapped, one after the other.
fn wrapped(texts: &[&str]) -> Vec<String> {
    texts.iter().flat_map(|t| wrap(t, WRAP)).collect()
}

impl Graph {
    /// The graph of `cascade`: its steps and their effects in order, then
    /// the cut cycles (which point back at red lines already placed).
    pub fn of(cascade: &Cascade) -> Graph {
        let mut g = Graph::default();
        for s in &cascade.steps {
            g.event(s);
            for (i, e) in s.effects.iter().enumerate() {
                g.effect(s, i, e);
            }
        }
        for s in &cascade.steps {
            for note in &s.notes {
                g.note(s, note);
            }
        }
        g
    }

    /// The node of `id`, if any.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    fn event(&mut self, s: &Step) {
        let how = match (s.caused_by, &s.report) {
            (Some(c), _) => format!("step {}, response to step {c}", s.n),
            (None, Some(r)) => format!("step {}, reported {}", s.n, short(r)),
            (None, None) => format!("step {}, hypothetical", s.n),
        };
        let mut lines = wrapped(&[&how, &s.event]);
        let cut = s.notes.iter().any(|n| n.why == Why::CycleCut);
        if s.effects.is_empty() && !cut {
            lines.push("nothing follows".into());
        }
        self.nodes.push(Node {
            id: step_id(s.n),
            kind: NodeKind::Event,
            lines,
            channel: None,
            commitment: None,
            step: s.n,
        });
    }

    /// One effect of step `s`: one function per variant.
    fn effect(&mut self, s: &Step, i: usize, e: &Effect) {
        let id = format!("s{}e{i}", s.n);
        match e {
            Effect::Fires { .. } => self.fires(s, id, e),
            Effect::Lapses { .. } => self.lapses(s, id, e),
            Effect::Breach { .. } => self.breach(s, id, e),
            Effect::Guarantee { .. } => self.guarantee(s, id, e),
            Effect::Fulfils { .. } => self.fulfils(s, id, e),
        }
    }

    fn fires(&mut self, s: &Step, id: String, e: &Effect) {
        let Effect::Fires {
            red_line,
            channel,
            issuer,
            wording,
            response_step,
            ..
        } = e
        else {
            return;
        };
        let head = format!("red line {}", short(red_line));
        let lines = wrapped(&[&head, issuer, wording]);
        self.commitment(s, &id, NodeKind::RedLine, lines, channel, red_line);
        self.edge(&step_id(s.n), &id, EdgeKind::Triggers, Vec::new());
        self.edge(
            &id,
            &step_id(*response_step),
            EdgeKind::Responds,
            Vec::new(),
        );
    }

    fn lapses(&mut self, s: &Step, id: String, e: &Effect) {
        let Effect::Lapses {
            assurance,
            channel,
            issuer,
            wording,
            readings_diverge,
            reading_words,
            ..
        } = e
        else {
            return;
        };
        let head = format!("lapses: assurance {}", short(assurance));
        let (kind, lines) = if *readings_diverge {
            let l = wrapped(&[&head, issuer, wording, reading_words]);
            (NodeKind::PartialLapse, l)
        } else {
            (NodeKind::Lapse, wrapped(&[&head, issuer, wording]))
        };
        self.commitment(s, &id, kind, lines, channel, assurance);
        self.edge(&step_id(s.n), &id, EdgeKind::Lapses, Vec::new());
    }

    fn breach(&mut self, s: &Step, id: String, e: &Effect) {
        let Effect::Breach {
            assurance,
            channel,
            issuer,
            wording,
            in_response_to,
            ..
        } = e
        else {
            return;
        };
        let head = format!("breach: assurance {}", short(assurance));
        let mut lines = wrapped(&[&head, issuer, wording]);
        if let Some(rl) = in_response_to {
            let why = format!(
                "a declared response (red line {}) that is itself a breach",
                short(rl)
            );
            lines.extend(wrap(&why, WRAP));
        }
        self.commitment(s, &id, NodeKind::Breach, lines, channel, assurance);
        self.edge(&step_id(s.n), &id, EdgeKind::Breaches, Vec::new());
    }

    /// The guarantee hangs off the breach that calls on it (in this step)
    /// and points at the guarantor's act, a later step.
    fn guarantee(&mut self, s: &Step, id: String, e: &Effect) {
        let Effect::Guarantee {
            guarantee,
            channel,
            guarantor,
            wording,
            assurance,
            response_step,
            ..
        } = e
        else {
            return;
        };
        let head = format!("guarantee {}", short(guarantee));
        let of = format!("of assurance {}", short(assurance));
        let lines = wrapped(&[&head, guarantor, wording, &of]);
        let breach = self.nodes.iter().find(|n| {
            n.step == s.n && n.kind == NodeKind::Breach && n.commitment.as_ref() == Some(assurance)
        });
        let from = breach.map_or_else(|| step_id(s.n), |n| n.id.clone());
        self.commitment(s, &id, NodeKind::Guarantee, lines, channel, guarantee);
        self.edge(&from, &id, EdgeKind::Invokes, Vec::new());
        let to = step_id(*response_step);
        self.edge(&id, &to, EdgeKind::Responds, Vec::new());
    }

    fn fulfils(&mut self, s: &Step, id: String, e: &Effect) {
        let Effect::Fulfils {
            assurance,
            channel,
            issuer,
            wording,
            proviso,
            proviso_words,
        } = e
        else {
            return;
        };
        let head = format!(
            "fulfils proviso {proviso} of assurance {}",
            short(assurance)
        );
        let lines = wrapped(&[&head, issuer, wording, proviso_words]);
        self.commitment(s, &id, NodeKind::Fulfilment, lines, channel, assurance);
        self.edge(&step_id(s.n), &id, EdgeKind::Fulfils, Vec::new());
    }

    /// A cut cycle points at the red line's (or guarantee's) node where it
    /// first acted.
    fn note(&mut self, s: &Step, note: &Note) {
        if note.why != Why::CycleCut {
            return;
        }
        let fired = self.nodes.iter().find(|n| {
            matches!(n.kind, NodeKind::RedLine | NodeKind::Guarantee)
                && n.commitment.is_some()
                && n.commitment == note.commitment
        });
        if let Some((to, k)) = fired.map(|n| (n.id.clone(), n.step)) {
            let label = wrap(&format!("cut: already acted at step {k}"), WRAP);
            self.edge(&step_id(s.n), &to, EdgeKind::Cut, label);
        }
    }

    /// A commitment's node, in its channel's cluster.
    fn commitment(
        &mut self,
        s: &Step,
        id: &str,
        kind: NodeKind,
        lines: Vec<String>,
        channel: &str,
        commitment: &str,
    ) {
        self.nodes.push(Node {
            id: id.to_string(),
            kind,
            lines,
            channel: Some(channel.to_string()),
            commitment: Some(commitment.to_string()),
            step: s.n,
        });
        match self.clusters.iter_mut().find(|c| c.channel == channel) {
            Some(c) => c.nodes.push(id.to_string()),
            None => self.clusters.push(Cluster {
                channel: channel.to_string(),
                nodes: vec![id.to_string()],
            }),
        }
    }

    fn edge(&mut self, from: &str, to: &str, kind: EdgeKind, label: Vec<String>) {
        self.edges.push(Edge {
            from: from.to_string(),
            to: to.to_string(),
            kind,
            label,
        });
    }
}

fn step_id(n: usize) -> String {
    format!("step{n}")
}

/// How each kind looks, shared by DOT, SVG and the legend.
struct Look {
    fill: &'static str,
    stroke: &'static str,
    dashed: bool,
    legend: &'static str,
}

impl NodeKind {
    /// Every kind, in the legend's order.
    pub const ALL: [NodeKind; 7] = [
        NodeKind::Event,
        NodeKind::RedLine,
        NodeKind::Lapse,
        NodeKind::PartialLapse,
        NodeKind::Breach,
        NodeKind::Guarantee,
        NodeKind::Fulfilment,
    ];

    fn look(self) -> Look {
        let (fill, stroke, dashed, legend) = match self {
            NodeKind::Event => (
                "#ffffff",
                "#333333",
                false,
                "an event: a step of the cascade",
            ),
            NodeKind::RedLine => (
                "#fde2e2",
                "#c0392b",
                false,
                "a red line that fires, with its issuer",
            ),
            NodeKind::Lapse => (
                "#fff4d6",
                "#b7791f",
                false,
                "an assurance lapses: its issuer is released",
            ),
            NodeKind::PartialLapse => (
                "#fffbea",
                "#b7791f",
                true,
                "lapses under some readings only",
            ),
            NodeKind::Breach => (
                "#f8d7da",
                "#7b0000",
                false,
                "an assurance the act would breach",
            ),
            NodeKind::Guarantee => (
                "#e3effd",
                "#1f5fa8",
                false,
                "a guarantor's undertaking the breach calls on",
            ),
            NodeKind::Fulfilment => (
                "#e6f6ea",
                "#2e7d32",
                true,
                "a proviso the act would fulfil: a claim until found",
            ),
        };
        Look {
            fill,
            stroke,
            dashed,
            legend,
        }
    }
}

impl EdgeKind {
    /// Every kind, in the legend's order.
    pub const ALL: [EdgeKind; 7] = [
        EdgeKind::Triggers,
        EdgeKind::Responds,
        EdgeKind::Lapses,
        EdgeKind::Breaches,
        EdgeKind::Invokes,
        EdgeKind::Fulfils,
        EdgeKind::Cut,
    ];

    fn look(self) -> Look {
        let (stroke, dashed, legend) = match self {
            EdgeKind::Triggers => ("#555555", false, "the act meets the red line's trigger"),
            EdgeKind::Responds => (
                "#c0392b",
                false,
                "a declared response (red line or guarantee): a later step",
            ),
            EdgeKind::Lapses => ("#b7791f", false, "the act lapses the assurance"),
            EdgeKind::Breaches => ("#7b0000", false, "the act breaches the assurance"),
            EdgeKind::Invokes => ("#1f5fa8", false, "the breach calls on the guarantor"),
            EdgeKind::Fulfils => ("#2e7d32", true, "the act would fulfil the proviso"),
            EdgeKind::Cut => (
                "#c0392b",
                true,
                "cut cycle: the red line or guarantee already acted",
            ),
        };
        Look {
            fill: "none",
            stroke,
            dashed,
            legend,
        }
    }

    fn name(self) -> &'static str {
        match self {
            EdgeKind::Triggers => "triggers",
            EdgeKind::Responds => "responds",
            EdgeKind::Lapses => "lapses",
            EdgeKind::Breaches => "breaches",
            EdgeKind::Invokes => "invokes",
            EdgeKind::Fulfils => "fulfils",
            EdgeKind::Cut => "cut",
        }
    }
}

/// What a channel's group says.
const CHANNEL_LEGEND: &str = "the commitments of one channel";

impl Cascade {
    /// A Graphviz DOT graph, top to bottom: events as boxes, red lines as
    /// nodes with their issuer, lapses and breaches, one cluster per
    /// channel, cut cycles as dashed edges, and a legend.
    pub fn to_dot(&self) -> String {
        dot::render(&Graph::of(self))
    }

    /// An SVG of the same graph, laid out here (no Graphviz needed).
    pub fn to_svg(&self) -> String {
        svg::render(&Graph::of(self))
    }
}

/// Escapes text for XML or HTML (the web interface uses it too).
pub use svg::escape;

/// The DOT rendering.
mod dot {
    use super::{short, wrap, EdgeKind, Graph, Look, Node, NodeKind, CHANNEL_LEGEND, WRAP};

    /// A DOT string: quotes and backslashes escaped, lines joined by `\n`.
    pub(super) fn label(lines: &[String]) -> String {
        let esc: Vec<String> = lines
            .iter()
            .map(|l| l.replace('\\', "\\\\").replace('"', "\\\""))
            .collect();
        format!("\"{}\"", esc.join("\\n"))
    }

    fn shape(kind: NodeKind) -> &'static str {
        match kind {
            NodeKind::Event => "box",
            NodeKind::RedLine => "box",
            NodeKind::Lapse | NodeKind::PartialLapse => "ellipse",
            NodeKind::Breach => "octagon",
            NodeKind::Guarantee => "house",
            NodeKind::Fulfilment => "note",
        }
    }

    fn node_attrs(kind: NodeKind) -> String {
        let Look {
            fill,
            stroke,
            dashed,
            ..
        } = kind.look();
        let rounded = if matches!(kind, NodeKind::RedLine | NodeKind::Guarantee) {
            "rounded,"
        } else {
            ""
        };
        let dash = if dashed { "dashed," } else { "" };
        let width = if kind == NodeKind::Breach {
            ", penwidth=2"
        } else {
            ""
        };
        format!(
            "shape={}, style=\"{rounded}{dash}filled\", fillcolor=\"{fill}\", color=\"{stroke}\"{width}",
            shape(kind)
        )
    }

    fn node(n: &Node, indent: &str) -> String {
        format!(
            "{indent}{} [{}, label={}];\n",
            n.id,
            node_attrs(n.kind),
            label(&n.lines)
        )
    }

    fn edge_attrs(kind: EdgeKind) -> String {
        let Look { stroke, dashed, .. } = kind.look();
        let style = if dashed { ", style=dashed" } else { "" };
        // A cut edge points back up: it must not pull ranks.
        let back = if kind == EdgeKind::Cut {
            ", constraint=false"
        } else {
            ""
        };
        format!("color=\"{stroke}\", fontcolor=\"{stroke}\"{style}{back}")
    }

    /// The legend, one entry a rank so that it stacks into a column, and
    /// below `after` (the last node) so that it keeps the graph narrow.
    fn legend(after: Option<&str>) -> String {
        let mut out = String::from(
            "  subgraph cluster_legend {\n    label=\"legend\";\n    color=\"#999999\";\n    node [fontsize=10];\n",
        );
        let mut column: Vec<String> = Vec::new();
        for (i, k) in NodeKind::ALL.iter().enumerate() {
            let text = wrap(k.look().legend, WRAP);
            out.push_str(&format!(
                "    legend_node{i} [{}, label={}];\n",
                node_attrs(*k),
                label(&text)
            ));
            column.push(format!("legend_node{i}"));
        }
        out.push_str(&format!(
            "    legend_channel [shape=box, style=filled, fillcolor=\"#eef2f7\", color=\"#8a99ab\", label={}];\n",
            label(&wrap(CHANNEL_LEGEND, WRAP))
        ));
        column.push("legend_channel".into());
        for (i, k) in EdgeKind::ALL.iter().enumerate() {
            let text = wrap(k.look().legend, WRAP);
            out.push_str(&format!(
                "    legend_from{i} [shape=point, width=0.05];\n    legend_to{i} [shape=plaintext, label={}];\n    {{ rank=same; legend_from{i}; legend_to{i}; }}\n    legend_from{i} -> legend_to{i} [{}];\n",
                label(&text),
                edge_attrs(*k).replace(", constraint=false", "")
            ));
            column.push(format!("legend_from{i}"));
        }
        for pair in column.windows(2) {
            out.push_str(&format!("    {} -> {} [style=invis];\n", pair[0], pair[1]));
        }
        out.push_str("  }\n");
        if let Some(last) = after {
            out.push_str(&format!("  {last} -> legend_node0 [style=invis];\n"));
        }
        out
    }

    pub(super) fn render(g: &Graph) -> String {
        let mut out = String::from(
            "digraph whatif {\n  rankdir=TB;\n  newrank=true;\n  nodesep=0.3;\n  ranksep=0.35;\n  graph [fontname=\"DejaVu Sans\", fontsize=11];\n  node [fontname=\"DejaVu Sans\", fontsize=11];\n  edge [fontname=\"DejaVu Sans\", fontsize=10];\n",
        );
        for n in g.nodes.iter().filter(|n| n.channel.is_none()) {
            out.push_str(&node(n, "  "));
        }
        for c in &g.clusters {
            out.push_str(&format!(
                "  subgraph cluster_{} {{\n    label=\"channel {}\";\n    style=filled;\n    fillcolor=\"#eef2f7\";\n    color=\"#8a99ab\";\n",
                short(&c.channel),
                short(&c.channel)
            ));
            for n in c.nodes.iter().filter_map(|id| g.node(id)) {
                out.push_str(&node(n, "    "));
            }
            out.push_str("  }\n");
        }
        for e in &g.edges {
            let l = if e.label.is_empty() {
                String::new()
            } else {
                format!(", label={}", label(&e.label))
            };
            out.push_str(&format!(
                "  {} -> {} [{}{l}];\n",
                e.from,
                e.to,
                edge_attrs(e.kind)
            ));
        }
        out.push_str(&legend(g.nodes.last().map(|n| n.id.as_str())));
        out.push_str("}\n");
        out
    }
}

/// The SVG rendering and its layout.
mod svg {
    use super::{short, wrap, Edge, EdgeKind, Graph, Look, Node, NodeKind, CHANNEL_LEGEND, WRAP};

    /// The font size of labels, px.
    pub(super) const FONT: f64 = 13.0;
    /// The font size of edge labels and the legend, px.
    const SMALL: f64 = 11.0;
    /// One line's height, in ems: DejaVu's ascent and descent (1.164 em)
    /// plus a little leading.
    const LINE: f64 = 1.3;
    /// DejaVu's ascent, in ems, rounded up: where the baseline sits.
    const ASCENT: f64 = 0.93;
    /// Padding inside a box: the sides leave room for rounded or cut
    /// corners (at most `CORNER`), so no glyph reaches one.
    const PAD_X: f64 = 16.0;
    const PAD_Y: f64 = 7.0;
    const CORNER: f64 = 10.0;
    const MARGIN: f64 = 16.0;
    const ROW_GAP: f64 = 18.0;
    /// Space between two edges' vertical lanes.
    const LANE: f64 = 9.0;
    /// A channel group's padding around its nodes, and its label's height.
    const GROUP_PAD: f64 = 10.0;
    const GROUP_LABEL: f64 = 18.0;
    const MIN_WIDTH: f64 = 150.0;

    /// DejaVu Sans advances of ASCII 0x20..=0x7E, in thousandths of an em,
    /// rounded up. Anything else counts as a full em, more than most
    /// glyphs take.
    const ADVANCE: [u16; 95] = [
        318, 401, 460, 838, 637, 951, 780, 275, 391, 391, 500, 838, 318, 361, 318, 337, 637, 637,
        637, 637, 637, 637, 637, 637, 637, 637, 337, 337, 838, 838, 838, 531, 1000, 685, 687, 699,
        771, 632, 576, 775, 752, 295, 295, 656, 558, 863, 749, 788, 604, 788, 695, 635, 611, 732,
        685, 989, 686, 611, 686, 391, 337, 391, 838, 500, 500, 613, 635, 550, 635, 616, 353, 635,
        634, 278, 278, 580, 278, 975, 634, 612, 635, 635, 412, 521, 393, 634, 592, 818, 592, 592,
        525, 637, 337, 637, 838,
    ];

    /// The estimated width of `text` at `size` px: never less than the
    /// glyphs DejaVu Sans draws (kerning only narrows them).
    pub(super) fn text_width(text: &str, size: f64) -> f64 {
        let units: u32 = text
            .chars()
            .map(|c| {
                let i = (c as u32).wrapping_sub(0x20) as usize;
                ADVANCE.get(i).copied().map_or(1000, u32::from)
            })
            .sum();
        f64::from(units) * size / 1000.0
    }

    /// `&`, `<`, `>`, `"` and `'` escaped for XML text and attributes.
    pub fn escape(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&apos;"),
                c => out.push(c),
            }
        }
        out
    }

    /// A box on the page.
    #[derive(Clone, Copy, Debug, Default)]
    struct Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
    }

    impl Rect {
        fn mid_y(&self) -> f64 {
            self.y + self.h / 2.0
        }
        fn bottom(&self) -> f64 {
            self.y + self.h
        }
        fn right(&self) -> f64 {
            self.x + self.w
        }
    }

    /// Where everything goes.
    struct Layout {
        boxes: Vec<Rect>,
        groups: Vec<(String, Rect)>,
        /// Per edge: its lane's x.
        lanes: Vec<f64>,
        /// Where the nodes' columns start (events first).
        columns: Vec<f64>,
        width: f64,
        legend_y: f64,
    }

    /// The column of a node: 0 for events, 1 + its cluster's place else.
    fn column(g: &Graph, n: &Node) -> usize {
        n.channel
            .as_ref()
            .and_then(|ch| g.clusters.iter().position(|c| &c.channel == ch))
            .map_or(0, |i| i + 1)
    }

    fn box_size(lines: &[String]) -> (f64, f64) {
        let widest = lines
            .iter()
            .map(|l| text_width(l, FONT))
            .fold(0.0, f64::max);
        let h = 2.0 * PAD_Y + lines.len().max(1) as f64 * LINE * FONT;
        ((widest + 2.0 * PAD_X).ceil(), h.ceil())
    }

    /// Each column's width: its widest box.
    fn column_widths(g: &Graph) -> Vec<f64> {
        let mut widths = vec![MIN_WIDTH; g.clusters.len() + 1];
        for n in &g.nodes {
            let c = column(g, n);
            widths[c] = widths[c].max(box_size(&n.lines).0);
        }
        widths
    }

    /// Lanes in the gutter: an edge takes the first lane free over its
    /// vertical span, so no two edges' vertical segments overlap.
    fn assign_lanes(spans: &[(f64, f64)]) -> (Vec<usize>, usize) {
        let mut order: Vec<usize> = (0..spans.len()).collect();
        order.sort_by(|a, b| spans[*a].0.total_cmp(&spans[*b].0).then(a.cmp(b)));
        let mut ends: Vec<f64> = Vec::new();
        let mut lane = vec![0; spans.len()];
        for i in order {
            let (top, bottom) = spans[i];
            match ends.iter().position(|e| *e < top) {
                Some(l) => {
                    ends[l] = bottom;
                    lane[i] = l;
                }
                None => {
                    lane[i] = ends.len();
                    ends.push(bottom);
                }
            }
        }
        let count = ends.len();
        (lane, count)
    }

    /// Rows top to bottom, one node each; a channel's first node leaves
    /// room above it for the group's label.
    fn rows(g: &Graph) -> Vec<(f64, f64)> {
        let mut y = MARGIN;
        let mut seen: Vec<usize> = Vec::new();
        let mut out = Vec::new();
        for n in &g.nodes {
            let c = column(g, n);
            if c > 0 && !seen.contains(&c) {
                seen.push(c);
                y += GROUP_LABEL + GROUP_PAD;
            }
            let h = box_size(&n.lines).1;
            out.push((y, h));
            y += h + ROW_GAP;
        }
        out
    }

    fn layout(g: &Graph) -> Layout {
        let widths = column_widths(g);
        let rows = rows(g);
        let index = |id: &str| g.nodes.iter().position(|n| n.id == id);
        let spans: Vec<(f64, f64)> = g
            .edges
            .iter()
            .map(|e| {
                let (a, b) = (index(&e.from), index(&e.to));
                let y = |i: Option<usize>| i.map_or(0.0, |i| rows[i].0 + rows[i].1 / 2.0);
                (y(a).min(y(b)) - LANE, y(a).max(y(b)) + LANE)
            })
            .collect();
        let (lane, count) = assign_lanes(&spans);
        let gutter_x = MARGIN + widths[0];
        let gutter = 2.0 * LANE + count as f64 * LANE + GROUP_PAD;
        let mut columns = vec![MARGIN];
        let mut x = gutter_x + gutter;
        for w in widths.iter().skip(1) {
            columns.push(x + GROUP_PAD);
            x += w + 2.0 * GROUP_PAD + LANE;
        }
        let boxes: Vec<Rect> = g
            .nodes
            .iter()
            .zip(&rows)
            .map(|(n, (y, h))| {
                let c = column(g, n);
                Rect {
                    x: columns[c],
                    y: *y,
                    w: widths[c],
                    h: *h,
                }
            })
            .collect();
        let groups = groups(g, &boxes);
        let bottom = boxes
            .iter()
            .map(Rect::bottom)
            .chain(groups.iter().map(|(_, r)| r.bottom()))
            .fold(MARGIN, f64::max);
        let lanes = lane
            .iter()
            .map(|l| gutter_x + LANE * (1.5 + *l as f64))
            .collect();
        Layout {
            boxes,
            groups,
            lanes,
            columns,
            width: x - LANE + MARGIN,
            legend_y: bottom + ROW_GAP + MARGIN,
        }
    }

    /// Each channel's background: around its nodes, with room for a label.
    fn groups(g: &Graph, boxes: &[Rect]) -> Vec<(String, Rect)> {
        g.clusters
            .iter()
            .filter_map(|c| {
                let mine: Vec<Rect> = g
                    .nodes
                    .iter()
                    .zip(boxes)
                    .filter(|(n, _)| n.channel.as_deref() == Some(c.channel.as_str()))
                    .map(|(_, b)| *b)
                    .collect();
                let first = mine.first()?;
                let top = first.y - GROUP_PAD - GROUP_LABEL;
                let bottom = mine.iter().map(Rect::bottom).fold(top, f64::max) + GROUP_PAD;
                let r = Rect {
                    x: first.x - GROUP_PAD,
                    y: top,
                    w: first.w + 2.0 * GROUP_PAD,
                    h: bottom - top,
                };
                Some((c.channel.clone(), r))
            })
            .collect()
    }

    fn text(x: f64, y: f64, size: f64, anchor: &str, fill: &str, line: &str) -> String {
        format!(
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"{size}\" text-anchor=\"{anchor}\" fill=\"{fill}\">{}</text>\n",
            escape(line)
        )
    }

    /// Lines of text stacked from `top`, each its own `<text>`.
    fn lines(x: f64, top: f64, size: f64, anchor: &str, fill: &str, ls: &[String]) -> String {
        ls.iter()
            .enumerate()
            .map(|(i, l)| {
                let base = top + i as f64 * LINE * size + (LINE - 1.0) * size / 2.0 + ASCENT * size;
                text(x, base, size, anchor, fill, l)
            })
            .collect()
    }

    fn dash(dashed: bool) -> &'static str {
        if dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        }
    }

    /// The outline of a node of `kind` in `r`: a rect, rounded for red
    /// lines and more for lapses, an octagon for breaches.
    fn shape(kind: NodeKind, r: Rect, corner: f64) -> String {
        let Look {
            fill,
            stroke,
            dashed,
            ..
        } = kind.look();
        let style = format!("fill=\"{fill}\" stroke=\"{stroke}\"{}", dash(dashed));
        let rect = |rx: f64, width: f64| {
            format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"{rx}\" ry=\"{rx}\" {style} stroke-width=\"{width}\"/>\n",
                r.x, r.y, r.w, r.h
            )
        };
        match kind {
            NodeKind::Event => rect(0.0, 1.2),
            NodeKind::RedLine | NodeKind::Guarantee => rect(corner * 0.6, 1.8),
            NodeKind::Fulfilment => rect(0.0, 1.5),
            NodeKind::Lapse | NodeKind::PartialLapse => rect(corner, 1.5),
            NodeKind::Breach => {
                let c = corner.min(r.h / 3.0);
                let pts = [
                    (r.x + c, r.y),
                    (r.right() - c, r.y),
                    (r.right(), r.y + c),
                    (r.right(), r.bottom() - c),
                    (r.right() - c, r.bottom()),
                    (r.x + c, r.bottom()),
                    (r.x, r.bottom() - c),
                    (r.x, r.y + c),
                ];
                let p: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                format!(
                    "<polygon points=\"{}\" {style} stroke-width=\"2.5\"/>\n",
                    p.join(" ")
                )
            }
        }
    }

    fn node(n: &Node, r: Rect) -> String {
        let mut out = format!(
            "<g class=\"node {}\" id=\"{}\">\n",
            kind_name(n.kind),
            escape(&n.id)
        );
        out.push_str(&shape(n.kind, r, CORNER));
        let x = r.x + r.w / 2.0;
        out.push_str(&lines(x, r.y + PAD_Y, FONT, "middle", "#111111", &n.lines));
        out.push_str("</g>\n");
        out
    }

    fn kind_name(k: NodeKind) -> &'static str {
        match k {
            NodeKind::Event => "event",
            NodeKind::RedLine => "red-line",
            NodeKind::Lapse => "lapse",
            NodeKind::PartialLapse => "partial-lapse",
            NodeKind::Breach => "breach",
            NodeKind::Guarantee => "guarantee",
            NodeKind::Fulfilment => "fulfilment",
        }
    }

    fn group(channel: &str, r: Rect) -> String {
        let label = format!("channel {}", short(channel));
        format!(
            "<g class=\"channel\" id=\"channel-{}\">\n<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"4\" fill=\"#eef2f7\" stroke=\"#8a99ab\"/>\n{}</g>\n",
            escape(&short(channel)),
            r.x,
            r.y,
            r.w,
            r.h,
            text(r.x + GROUP_PAD, r.y + GROUP_LABEL - 3.0, SMALL, "start", "#44546a", &label)
        )
    }

    /// Where an edge meets a node: the side facing the gutter, spread
    /// along it when several edges meet there.
    fn port(l: &Layout, g: &Graph, node: usize, edge: usize) -> (f64, f64) {
        let r = l.boxes[node];
        let id = &g.nodes[node].id;
        let mine: Vec<usize> = g
            .edges
            .iter()
            .enumerate()
            .filter(|(_, e)| &e.from == id || &e.to == id)
            .map(|(i, _)| i)
            .collect();
        let k = mine.iter().position(|i| *i == edge).unwrap_or(0) as f64;
        let spread = (r.h - 2.0 * CORNER).max(0.0) / (mine.len() as f64 + 1.0);
        let y = r.y + CORNER + spread * (k + 1.0);
        let y = if mine.len() == 1 { r.mid_y() } else { y };
        let x = if r.x < l.columns.get(1).copied().unwrap_or(f64::MAX) {
            r.right()
        } else {
            r.x
        };
        (x, y)
    }

    fn edge(l: &Layout, g: &Graph, i: usize, e: &Edge) -> String {
        let index = |id: &str| g.nodes.iter().position(|n| n.id == id);
        let (Some(a), Some(b)) = (index(&e.from), index(&e.to)) else {
            return String::new();
        };
        let (sx, sy) = port(l, g, a, i);
        let (tx, ty) = port(l, g, b, i);
        let lane = l.lanes[i];
        // The arrow head ends on the box: back off by its length.
        let end = if tx > lane { tx - 1.0 } else { tx + 1.0 };
        let Look { stroke, dashed, .. } = e.kind.look();
        let mut out = format!(
            "<g class=\"edge {}\">\n<path d=\"M {sx:.1} {sy:.1} H {lane:.1} V {ty:.1} H {end:.1}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"1.6\"{} marker-end=\"url(#arrow-{})\"/>\n",
            e.kind.name(),
            dash(dashed),
            e.kind.name()
        );
        if !e.label.is_empty() {
            // Beside the lane, within the row of the edge's start: that
            // row holds no other node right of the gutter.
            let r = l.boxes[a];
            let h = e.label.len() as f64 * LINE * SMALL;
            let top = (sy - h - 2.0).clamp(r.y, (r.bottom() - h).max(r.y));
            out.push_str(&lines(lane + 4.0, top, SMALL, "start", stroke, &e.label));
        }
        out.push_str("</g>\n");
        out
    }

    fn markers() -> String {
        let mut out = String::from("<defs>\n");
        for k in EdgeKind::ALL {
            out.push_str(&format!(
                "<marker id=\"arrow-{}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"{}\"/></marker>\n",
                k.name(),
                k.look().stroke
            ));
        }
        out.push_str("</defs>\n");
        out
    }

    /// The legend's entries: a sample and its wrapped words.
    enum Sample {
        Node(NodeKind),
        Channel,
        Edge(EdgeKind),
    }

    const SAMPLE_W: f64 = 34.0;
    const SAMPLE_H: f64 = 18.0;

    fn entries() -> Vec<(Sample, Vec<String>)> {
        let mut out: Vec<(Sample, Vec<String>)> = NodeKind::ALL
            .iter()
            .map(|k| (Sample::Node(*k), wrap(k.look().legend, WRAP)))
            .collect();
        out.push((Sample::Channel, wrap(CHANNEL_LEGEND, WRAP)));
        out.extend(
            EdgeKind::ALL
                .iter()
                .map(|k| (Sample::Edge(*k), wrap(k.look().legend, WRAP))),
        );
        out
    }

    fn sample(s: &Sample, x: f64, y: f64) -> String {
        let r = Rect {
            x,
            y,
            w: SAMPLE_W,
            h: SAMPLE_H,
        };
        match s {
            Sample::Node(k) => shape(*k, r, 5.0),
            Sample::Channel => format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{SAMPLE_W}\" height=\"{SAMPLE_H}\" rx=\"3\" fill=\"#eef2f7\" stroke=\"#8a99ab\"/>\n"
            ),
            Sample::Edge(k) => {
                let Look { stroke, dashed, .. } = k.look();
                let my = r.mid_y();
                format!(
                    "<path d=\"M {x:.1} {my:.1} H {:.1}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"1.6\"{} marker-end=\"url(#arrow-{})\"/>\n",
                    r.right(),
                    dash(dashed),
                    k.name()
                )
            }
        }
    }

    /// The legend's size: its widest entry, its entries stacked.
    fn legend_size() -> (f64, f64) {
        let es = entries();
        let text_w = es
            .iter()
            .flat_map(|(_, ls)| ls.iter().map(|l| text_width(l, SMALL)))
            .fold(text_width("legend", SMALL), f64::max);
        let w = PAD_X + SAMPLE_W + 8.0 + text_w + PAD_X;
        let h = legend_rows(&es).last().map_or(0.0, |(y, h)| y + h) + PAD_Y;
        (w.ceil(), h.ceil())
    }

    /// Each entry's top (from the legend's top) and height.
    fn legend_rows(es: &[(Sample, Vec<String>)]) -> Vec<(f64, f64)> {
        let mut y = PAD_Y + LINE * SMALL + 4.0;
        es.iter()
            .map(|(_, ls)| {
                let h = (ls.len() as f64 * LINE * SMALL).max(SAMPLE_H);
                let row = (y, h);
                y += h + 5.0;
                row
            })
            .collect()
    }

    fn legend(x: f64, y: f64) -> String {
        let (w, h) = legend_size();
        let es = entries();
        let mut out = format!(
            "<g class=\"legend\" id=\"legend\">\n<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"#fafafa\" stroke=\"#999999\"/>\n"
        );
        out.push_str(&lines(
            x + PAD_X,
            y + PAD_Y,
            SMALL,
            "start",
            "#111111",
            &["legend".into()],
        ));
        for ((s, ls), (top, rh)) in es.iter().zip(legend_rows(&es)) {
            let sy = y + top + (rh - SAMPLE_H) / 2.0;
            out.push_str(&sample(s, x + PAD_X, sy));
            let ty = y + top + (rh - ls.len() as f64 * LINE * SMALL) / 2.0;
            out.push_str(&lines(
                x + PAD_X + SAMPLE_W + 8.0,
                ty,
                SMALL,
                "start",
                "#111111",
                ls,
            ));
        }
        out.push_str("</g>\n");
        out
    }

    pub(super) fn render(g: &Graph) -> String {
        let l = layout(g);
        let (lw, lh) = legend_size();
        let width = l.width.max(lw + 2.0 * MARGIN).ceil();
        let height = (l.legend_y + lh + MARGIN).ceil();
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"{FONT}\">\n<title>what-if cascade</title>\n"
        );
        out.push_str(&markers());
        out.push_str(&format!(
            "<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>\n"
        ));
        for (ch, r) in &l.groups {
            out.push_str(&group(ch, *r));
        }
        for (i, e) in g.edges.iter().enumerate() {
            out.push_str(&edge(&l, g, i, e));
        }
        for (n, r) in g.nodes.iter().zip(&l.boxes) {
            out.push_str(&node(n, *r));
        }
        out.push_str(&legend(MARGIN, l.legend_y));
        out.push_str("</svg>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::commitments::plover::EventType;
    use crate::commitments::structured::{Action, Actor};
    use crate::commitments::whatif::{describe, Origin};

    const RL1: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
    const RL2: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
    const AS1: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";
    const CH1: &str = "01010101010101010101010101010101";
    const CH2: &str = "02020202020202020202020202020202";

    fn step(n: usize, who: &str, whom: &str, caused_by: Option<usize>) -> Step {
        let actor = Actor::Member(who.into());
        let action = Action {
            kind: EventType::Assault,
            modes: Vec::new(),
            target: Some(Actor::Member(whom.into())),
        };
        Step {
            n,
            event: describe(&actor, &action),
            actor,
            action,
            at_ms: None,
            origin: caused_by.map_or(Origin::Hypothetical, |_| Origin::DeclaredResponse),
            caused_by,
            response_of: None,
            report: None,
            place: None,
            effects: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn fires(red_line: &str, channel: &str, issuer: &str, response_step: usize) -> Effect {
        Effect::Fires {
            red_line: red_line.into(),
            channel: channel.into(),
            issuer: issuer.into(),
            wording: format!("if {issuer} is attacked, {issuer} strikes back <hard> & \"fast\""),
            trigger: "ASSAULT by anyone".into(),
            response: "a response".into(),
            response_step,
            response_breaches: Vec::new(),
            reading_words: String::new(),
            readings_diverge: false,
            relations: Vec::new(),
        }
    }

    /// Blue strikes red; red's red line (channel 1) answers; blue's (channel
    /// 2) answers that; red's is met again and the cycle is cut. Blue's
    /// assurance lapses under some readings at step 1.
    fn cycle() -> Cascade {
        let mut s1 = step(1, "blue", "red", None);
        s1.effects.push(fires(RL1, CH1, "red", 2));
        s1.effects.push(Effect::Lapses {
            assurance: AS1.into(),
            channel: CH2.into(),
            issuer: "blue".into(),
            wording: "blue will not strike red first".into(),
            condition: 0,
            condition_words: "unless attacked first by red".into(),
            readings: Vec::new(),
            readings_diverge: true,
            reading_words: "only if red's allies count as red".into(),
            relations: Vec::new(),
            earlier: Vec::new(),
            now_all: false,
        });
        let mut s2 = step(2, "red", "blue", Some(1));
        s2.effects.push(fires(RL2, CH2, "blue", 3));
        let mut s3 = step(3, "blue", "red", Some(2));
        s3.notes.push(Note {
            why: Why::CycleCut,
            commitment: Some(RL1.into()),
            channel: Some(CH1.into()),
            words: "already fired".into(),
        });
        Cascade {
            at_ms: 0,
            steps: vec![s1, s2, s3],
            stubs: 0,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn wrapping_keeps_words_and_breaks_long_ids() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        let id = "f".repeat(64);
        let lines = wrap(&format!("red line {id}"), WRAP);
        assert!(lines.iter().all(|l| l.chars().count() <= WRAP), "{lines:?}");
        assert_eq!(lines.concat().replace(' ', ""), format!("redline{id}"));
        assert!(wrap("   ", 10).is_empty());
        assert_eq!(wrap("é".repeat(5).as_str(), 2), ["éé", "éé", "é"]);
    }

    #[test]
    fn xml_and_dot_are_escaped() {
        assert_eq!(
            svg::escape("<a & 'b' \"c\">"),
            "&lt;a &amp; &apos;b&apos; &quot;c&quot;&gt;"
        );
        assert_eq!(
            dot::label(&["a \"b\" \\".into(), "c".into()]),
            r#""a \"b\" \\\nc""#
        );
        let svg = cycle().to_svg();
        assert!(svg.contains("&lt;hard&gt; &amp; &quot;fast&quot;"), "{svg}");
        assert!(!svg.contains("<hard>"));
    }

    #[test]
    fn output_is_deterministic() {
        assert_eq!(cycle().to_svg(), cycle().to_svg());
        assert_eq!(cycle().to_dot(), cycle().to_dot());
    }

    #[test]
    fn a_cut_cycle_points_at_the_red_line_that_fired() {
        let g = Graph::of(&cycle());
        let cut: Vec<&Edge> = g.edges.iter().filter(|e| e.kind == EdgeKind::Cut).collect();
        assert_eq!(cut.len(), 1);
        assert_eq!(cut[0].from, "step3");
        let to = g.node(&cut[0].to).unwrap();
        assert_eq!(to.commitment.as_deref(), Some(RL1));
        assert_eq!(cut[0].label.concat(), "cut: already acted at step 1");
        let dot = cycle().to_dot();
        assert!(
            dot.contains("step3 -> s1e0 [color=\"#c0392b\", fontcolor=\"#c0392b\", style=dashed, constraint=false, label=\"cut: already acted at step 1\"]"),
            "{dot}"
        );
        assert!(cycle().to_svg().contains("<g class=\"edge cut\">"));
    }

    #[test]
    fn a_red_line_is_a_node_with_its_issuer() {
        let g = Graph::of(&cycle());
        let rl = g.node("s2e0").unwrap();
        assert_eq!(rl.kind, NodeKind::RedLine);
        assert_eq!(rl.lines[0], "red line b2b2b2b2");
        assert_eq!(rl.lines[1], "blue");
        let kinds: Vec<(EdgeKind, &str, &str)> = g
            .edges
            .iter()
            .map(|e| (e.kind, e.from.as_str(), e.to.as_str()))
            .collect();
        assert!(kinds.contains(&(EdgeKind::Triggers, "step2", "s2e0")));
        assert!(kinds.contains(&(EdgeKind::Responds, "s2e0", "step3")));
        assert!(cycle()
            .to_dot()
            .contains("label=\"red line b2b2b2b2\\nblue\\n"));
    }

    #[test]
    fn commitments_are_grouped_by_channel_and_events_are_not() {
        let g = Graph::of(&cycle());
        let groups: Vec<(&str, Vec<&str>)> = g
            .clusters
            .iter()
            .map(|c| {
                (
                    c.channel.as_str(),
                    c.nodes.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(groups, [(CH1, vec!["s1e0"]), (CH2, vec!["s1e1", "s2e0"])]);
        assert!(g
            .nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Event)
            .all(|n| n.channel.is_none()));
        assert_eq!(g.node("s1e1").unwrap().kind, NodeKind::PartialLapse);
        let dot = cycle().to_dot();
        assert!(
            dot.contains("subgraph cluster_01010101 {\n    label=\"channel 01010101\";"),
            "{dot}"
        );
        assert!(dot.contains("subgraph cluster_02020202 {"));
        assert!(dot.contains("subgraph cluster_legend {"));
        assert!(dot.contains("lapses under some readings\\nonly"), "{dot}");
        let svg = cycle().to_svg();
        assert!(svg.contains("id=\"channel-01010101\"") && svg.contains("id=\"channel-02020202\""));
        assert!(svg.contains(">channel 02020202</text>"));
    }

    #[test]
    fn the_svg_is_laid_out_top_to_bottom() {
        let svg = cycle().to_svg();
        let y = |id: &str| {
            let at = svg.find(&format!("id=\"{id}\"")).unwrap();
            let rest = &svg[at..];
            let y = rest.split("y=\"").nth(1).unwrap();
            y[..y.find('"').unwrap()].parse::<f64>().unwrap()
        };
        assert!(y("step1") < y("s1e0") && y("s1e0") < y("step2"));
        assert!(y("step2") < y("s2e0") && y("s2e0") < y("step3"));
        let dim = |name: &str| {
            let v = svg.split(&format!(" {name}=\"")).nth(1).unwrap();
            v[..v.find('"').unwrap()].parse::<f64>().unwrap()
        };
        assert!(
            dim("height") > dim("width"),
            "{}x{}",
            dim("width"),
            dim("height")
        );
        assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    }

    /// Red breaches blue's assurance, which the mediator guarantees; the
    /// guarantor's strike (step 2) would fulfil a proviso of it.
    fn guaranteed() -> Cascade {
        let mut s1 = step(1, "red", "blue", None);
        s1.effects.push(Effect::Breach {
            assurance: AS1.into(),
            channel: CH1.into(),
            issuer: "red".into(),
            wording: "red will not strike blue".into(),
            undertaking: "no ASSAULT against blue".into(),
            reading_words: String::new(),
            under_all: true,
            in_response_to: None,
        });
        s1.effects.push(Effect::Guarantee {
            guarantee: RL2.into(),
            channel: CH1.into(),
            guarantor: "mediator".into(),
            wording: "the mediator answers a breach".into(),
            assurance: AS1.into(),
            response: "mediator SANCTION red".into(),
            response_step: 2,
        });
        let mut s2 = step(2, "mediator", "red", Some(1));
        s2.effects.push(Effect::Fulfils {
            assurance: AS1.into(),
            channel: CH1.into(),
            issuer: "red".into(),
            wording: "red will not strike blue".into(),
            proviso: 1,
            proviso_words: "provided the mediator acts".into(),
        });
        Cascade {
            at_ms: 0,
            steps: vec![s1, s2],
            stubs: 0,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn a_guarantee_hangs_off_the_breach_and_points_at_the_guarantors_act() {
        let g = Graph::of(&guaranteed());
        let node = g.node("s1e1").unwrap();
        assert_eq!(node.kind, NodeKind::Guarantee);
        assert_eq!(node.lines[..2], ["guarantee b2b2b2b2", "mediator"]);
        let f = g.node("s2e0").unwrap();
        assert_eq!(f.kind, NodeKind::Fulfilment);
        assert_eq!(f.lines[0], "fulfils proviso 1 of");
        let kinds: Vec<(EdgeKind, &str, &str)> = g
            .edges
            .iter()
            .map(|e| (e.kind, e.from.as_str(), e.to.as_str()))
            .collect();
        assert!(kinds.contains(&(EdgeKind::Breaches, "step1", "s1e0")));
        assert!(kinds.contains(&(EdgeKind::Invokes, "s1e0", "s1e1")));
        assert!(kinds.contains(&(EdgeKind::Responds, "s1e1", "step2")));
        assert!(kinds.contains(&(EdgeKind::Fulfils, "step2", "s2e0")));
        let svg = guaranteed().to_svg();
        assert!(svg.contains("class=\"node guarantee\"") && svg.contains("class=\"edge invokes\""));
        assert!(guaranteed().to_dot().contains("s1e1 [shape=house"));
    }

    #[test]
    fn a_guarantee_met_again_is_a_cut_cycle_pointing_at_it() {
        let mut c = guaranteed();
        c.steps[1].notes.push(Note {
            why: Why::CycleCut,
            commitment: Some(RL2.into()),
            channel: Some(CH1.into()),
            words: "already acted".into(),
        });
        let g = Graph::of(&c);
        let cut: Vec<(&str, &str)> = g
            .edges
            .iter()
            .filter(|e| e.kind == EdgeKind::Cut)
            .map(|e| (e.from.as_str(), e.to.as_str()))
            .collect();
        assert_eq!(cut, [("step2", "s1e1")]);
    }

    #[test]
    fn the_width_estimate_covers_every_ascii_glyph() {
        // The widest DejaVu Sans glyphs: W (0.989 em) and m (0.975 em).
        assert!(svg::text_width("W", 1000.0) >= 988.0);
        assert!(svg::text_width("Wé", 1000.0) >= 988.0 + 615.0);
    }
}
