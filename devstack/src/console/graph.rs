//! A state machine definition drawn as a graph (SVG, laid out by
//! `layout-rs`), with one execution's path on it.
//!
//! Every state is a node, Map and Parallel states' inner states too (named
//! `Map › inner`, entered by an "each item" or "branch N" edge). Edges:
//! `Next` solid, Choice rules blue and labelled with their number, `Default`
//! dashed blue, `Catch` red dashed labelled with the errors it matches,
//! `Retry` a self-loop labelled with its attempts and back-off. Node colours:
//! green succeeded, red failed, blue still running, grey never entered.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use layout::backends::svg::SVGWriter;
use layout::gv::{DotParser, GraphBuilder};
use serde_json::Value;

/// What happened to one state in an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visit {
    /// Entered and left.
    Succeeded,
    /// Where the execution failed.
    Failed,
    /// Entered, not left yet.
    Running,
}

/// Per state name: what happened and how many attempts failed in it.
pub(crate) type Visits = BTreeMap<String, (Visit, usize)>;

/// The DOT text of `definition` with `visits` coloured in.
pub(crate) fn dot(definition: &Value, visits: &Visits) -> String {
    let mut out = String::from("digraph G {\n");
    let mut ids = Ids::default();
    let _ = writeln!(
        out,
        "  start [label=\"Start\", shape=circle, style=filled, fillcolor=\"#101828\", fontcolor=\"#ffffff\"];"
    );
    if let Some(first) = definition["StartAt"].as_str() {
        let target = ids.id("", first);
        let _ = writeln!(out, "  start -> {target};");
    }
    states(&mut out, &mut ids, "", definition, visits);
    out.push_str("}\n");
    out
}

/// The SVG of [`dot`]; `None` if the layout engine refused the graph.
pub(crate) fn svg(definition: &Value, visits: &Visits) -> Option<String> {
    let text = dot(definition, visits);
    let mut parser = DotParser::new(&text);
    let graph = parser.process().ok()?;
    let mut builder = GraphBuilder::new();
    builder.visit_graph(&graph);
    let mut visual = builder.get();
    let mut writer = SVGWriter::new();
    visual.do_it(false, false, false, &mut writer);
    Some(writer.finalize())
}

#[derive(Default)]
struct Ids {
    known: BTreeMap<(String, String), String>,
}

impl Ids {
    fn id(&mut self, scope: &str, name: &str) -> String {
        let next = format!("n{}", self.known.len());
        self.known
            .entry((scope.to_owned(), name.to_owned()))
            .or_insert(next)
            .clone()
    }
}

fn states(out: &mut String, ids: &mut Ids, scope: &str, machine: &Value, visits: &Visits) {
    let Some(all) = machine["States"].as_object() else {
        return;
    };
    for (name, state) in all {
        let id = ids.id(scope, name);
        let kind = state["Type"].as_str().unwrap_or("?");
        let shown = if scope.is_empty() {
            name.clone()
        } else {
            format!("{scope} › {name}")
        };
        let (fill, border) = match visits.get(name).map(|v| v.0) {
            Some(Visit::Succeeded) => ("#d1fadf", "#13795b"),
            Some(Visit::Failed) => ("#fee4e2", "#b42318"),
            Some(Visit::Running) => ("#d1e9ff", "#175cd3"),
            None => ("#ffffff", "#98a2b3"),
        };
        let retriers: Vec<String> = state["Retry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                format!(
                    "≤{} ×{}",
                    r["MaxAttempts"].as_u64().unwrap_or(3),
                    r["BackoffRate"].as_f64().unwrap_or(2.0)
                )
            })
            .collect();
        // Retry rules go in the node's second line (a labelled self-loop
        // made the drawing twice as wide); the loop itself marks them.
        let mut text = format!("{shown} ({kind})");
        if !retriers.is_empty() {
            let _ = write!(text, "\nretry {}", shorten(&retriers.join(", "), 40));
            let attempts = visits.get(name).map_or(0, |v| v.1);
            if attempts > 0 {
                let _ = write!(text, " — failed {attempts}×");
            }
        }
        let shape = if kind == "Choice" { "ellipse" } else { "box" };
        let _ = writeln!(
            out,
            "  {id} [label=\"{}\", shape={shape}, style=filled, fillcolor=\"{fill}\", color=\"{border}\"];",
            label(&text)
        );
        if !retriers.is_empty() {
            let _ = writeln!(out, "  {id} -> {id} [style=dotted, color=\"#b54708\"];");
        }
        let taken = |target: &str| visits.contains_key(name) && visits.contains_key(target);
        let edge = |out: &mut String,
                    ids: &mut Ids,
                    target: &str,
                    label_text: &str,
                    style: &str,
                    color: &str| {
            let to = ids.id(scope, target);
            let color = if taken(target) && style != "dashed" && color == "#475467" {
                "#13795b"
            } else {
                color
            };
            let _ = writeln!(
                out,
                "  {id} -> {to} [label=\"{}\", style={style}, color=\"{color}\"];",
                label(label_text)
            );
        };
        if let Some(next) = state["Next"].as_str() {
            edge(out, ids, next, "", "solid", "#475467");
        }
        if let Some(choices) = state["Choices"].as_array() {
            for (i, choice) in choices.iter().enumerate() {
                if let Some(next) = choice["Next"].as_str() {
                    edge(
                        out,
                        ids,
                        next,
                        &format!("rule {}", i + 1),
                        "solid",
                        "#175cd3",
                    );
                }
            }
        }
        if let Some(default) = state["Default"].as_str() {
            edge(out, ids, default, "default", "dashed", "#175cd3");
        }
        for catcher in state["Catch"].as_array().into_iter().flatten() {
            if let Some(next) = catcher["Next"].as_str() {
                edge(
                    out,
                    ids,
                    next,
                    &shorten(&format!("catch {}", errors(catcher)), 40),
                    "dashed",
                    "#b42318",
                );
            }
        }
        let inner = |body: &Value| body.get("StartAt").is_some().then_some(body.clone());
        let mut children: Vec<(String, Value)> = Vec::new();
        if let Some(body) = state
            .get("ItemProcessor")
            .or_else(|| state.get("Iterator"))
            .and_then(inner)
        {
            children.push(("each item".to_owned(), body));
        }
        for (i, branch) in state["Branches"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(body) = inner(branch) {
                children.push((format!("branch {}", i + 1), body));
            }
        }
        for (edge_label, body) in children {
            let child_scope = if scope.is_empty() {
                name.clone()
            } else {
                format!("{scope} › {name}")
            };
            if let Some(first) = body["StartAt"].as_str() {
                let to = ids.id(&child_scope, first);
                let _ = writeln!(
                    out,
                    "  {id} -> {to} [label=\"{}\", style=dashed, color=\"#667085\"];",
                    label(&edge_label)
                );
            }
            states(out, ids, &child_scope, &body, visits);
        }
    }
}

fn errors(rule: &Value) -> String {
    rule["ErrorEquals"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}

/// A DOT label: quotes and backslashes escaped, line breaks as DOT's `\n`
/// (the SVG writer escapes `<&`).
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "'")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn machine() -> Value {
        json!({
            "StartAt": "Price",
            "States": {
                "Price": {"Type": "Task", "Next": "Big?",
                          "Retry": [{"ErrorEquals": ["Task.Retryable"], "MaxAttempts": 5, "BackoffRate": 2}],
                          "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}]},
                "Big?": {"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "Each"}], "Default": "Done"},
                "Each": {"Type": "Map", "ItemProcessor": {"StartAt": "Copy", "States": {"Copy": {"Type": "Task", "End": true}}}, "Next": "Done"},
                "Done": {"Type": "Succeed"},
                "Failed": {"Type": "Fail"}
            }
        })
    }

    #[test]
    fn edges_of_every_kind_are_drawn_distinguishably() {
        let visits: Visits = [
            ("Price".to_owned(), (Visit::Succeeded, 2)),
            ("Big?".to_owned(), (Visit::Succeeded, 0)),
            ("Each".to_owned(), (Visit::Failed, 0)),
        ]
        .into();
        let dot = dot(&machine(), &visits);
        assert!(
            dot.contains("label=\"rule 1\", style=solid, color=\"#175cd3\""),
            "{dot}"
        );
        assert!(dot.contains("label=\"default\", style=dashed"), "{dot}");
        assert!(
            dot.contains("label=\"catch States.ALL\", style=dashed, color=\"#b42318\""),
            "{dot}"
        );
        assert!(
            dot.contains("Price (Task)\\nretry ≤5 ×2 — failed 2×"),
            "{dot}"
        );
        assert!(dot.contains("label=\"Each › Copy (Task)\""), "{dot}");
        assert!(dot.contains("label=\"each item\""), "{dot}");
        // Failed red, never entered grey.
        assert!(
            dot.contains("label=\"Each (Map)\", shape=box, style=filled, fillcolor=\"#fee4e2\""),
            "{dot}"
        );
        assert!(
            dot.contains(
                "label=\"Done (Succeed)\", shape=box, style=filled, fillcolor=\"#ffffff\""
            ),
            "{dot}"
        );
        let svg = svg(&machine(), &visits).unwrap_or_default();
        assert!(svg.contains("<svg") && svg.contains("Each › Copy"), "{svg}");
    }
}
