//! Offline checks of `template.yaml` and `statemachines/*.asl.json` that
//! cfn-lint and `sam validate` do not make: every transition target exists,
//! every substitution is defined, every Task state has its timeout, retriers
//! and envelope, and the saved Logs Insights queries use only fields that
//! `common` writes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use serde_norway::Value as Yaml;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn template() -> Yaml {
    let text = std::fs::read_to_string(format!("{ROOT}/template.yaml"))
        .unwrap_or_else(|e| panic!("template.yaml: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("template.yaml: {e}"))
}

fn resources(template: &Yaml) -> Vec<(String, &Yaml)> {
    template["Resources"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v))
                .collect()
        })
        .unwrap_or_default()
}

/// State machines: (resource name, ASL file, substitution names).
fn state_machines(template: &Yaml) -> Vec<(String, String, BTreeSet<String>)> {
    resources(template)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::StateMachine"))
        .map(|(name, r)| {
            let uri = r["Properties"]["DefinitionUri"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let subs = r["Properties"]["DefinitionSubstitutions"]
                .as_mapping()
                .map(|m| {
                    m.keys()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (name, uri, subs)
        })
        .collect()
}

fn placeholders(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        if let Some(end) = after.find('}') {
            found.insert(after[..end].to_owned());
            rest = &after[end..];
        } else {
            break;
        }
    }
    found
}

fn targets(state: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["Next", "Default"] {
        if let Some(t) = state[key].as_str() {
            out.push(t.to_owned());
        }
    }
    for list in ["Choices", "Catch"] {
        for item in state[list].as_array().into_iter().flatten() {
            if let Some(t) = item["Next"].as_str() {
                out.push(t.to_owned());
            }
        }
    }
    out
}

#[test]
fn state_machines_are_complete_and_well_wired() {
    let template = template();
    let machines = state_machines(&template);
    assert_eq!(machines.len(), 2, "invoice and backup");
    for (name, uri, subs) in machines {
        let text = std::fs::read_to_string(format!("{ROOT}/{uri}"))
            .unwrap_or_else(|e| panic!("{uri}: {e}"));
        let asl: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{uri} is not JSON: {e}"));
        let used = placeholders(&text);
        assert_eq!(
            used, subs,
            "{name}: substitutions used in {uri} and defined in the template differ"
        );

        let states = asl["States"]
            .as_object()
            .unwrap_or_else(|| panic!("{uri}: no States"));
        let start = asl["StartAt"].as_str().unwrap_or_default();
        assert!(
            states.contains_key(start),
            "{uri}: StartAt `{start}` missing"
        );

        let mut reachable = BTreeSet::from([start.to_owned()]);
        let mut queue = vec![start.to_owned()];
        while let Some(state) = queue.pop() {
            for target in targets(&states[&state]) {
                assert!(
                    states.contains_key(&target),
                    "{uri}: `{state}` goes to missing state `{target}`"
                );
                if reachable.insert(target.clone()) {
                    queue.push(target);
                }
            }
        }
        let all: BTreeSet<String> = states.keys().cloned().collect();
        assert_eq!(reachable, all, "{uri}: unreachable states");

        for (state_name, state) in states {
            let ends = state["End"] == true
                || matches!(state["Type"].as_str(), Some("Succeed" | "Fail" | "Choice"));
            assert!(
                ends || state["Next"].is_string(),
                "{uri}: `{state_name}` has no way out"
            );
            if state["Type"] != "Task" {
                continue;
            }
            assert!(
                state["TimeoutSeconds"].is_u64(),
                "{uri}: `{state_name}` has no TimeoutSeconds"
            );
            let retriers = state["Retry"].as_array().cloned().unwrap_or_default();
            let retries = |error: &str| {
                retriers.iter().find(|r| {
                    r["ErrorEquals"]
                        .as_array()
                        .is_some_and(|e| e.iter().any(|x| x == error))
                })
            };
            let task = retries("Task.Retryable")
                .unwrap_or_else(|| panic!("{uri}: `{state_name}` does not retry Task.Retryable"));
            assert_eq!(task["JitterStrategy"], "FULL", "{uri}: `{state_name}`");
            assert!(task["BackoffRate"].as_f64().is_some_and(|b| b > 1.0));
            for error in [
                "Lambda.ServiceException",
                "Lambda.AWSLambdaException",
                "Lambda.SdkClientException",
                "Lambda.TooManyRequestsException",
            ] {
                assert!(
                    retries(error).is_some(),
                    "{uri}: `{state_name}` does not retry {error}"
                );
            }
            let payload = &state["Parameters"]["Payload"];
            for key in [
                "correlation_id.$",
                "execution_id.$",
                "state_name.$",
                "retry_count.$",
            ] {
                assert!(
                    payload.get(key).is_some(),
                    "{uri}: `{state_name}` payload lacks {key}"
                );
            }
            assert_eq!(payload["execution_id.$"], "$$.Execution.Id");
            assert_eq!(payload["state_name.$"], "$$.State.Name");
            assert_eq!(payload["retry_count.$"], "$$.State.RetryCount");
            assert!(payload.get("input").is_some() || payload.get("input.$").is_some());
            let waits = state["Resource"]
                .as_str()
                .is_some_and(|r| r.ends_with(".waitForTaskToken"));
            if waits {
                assert_eq!(payload["task_token.$"], "$$.Task.Token");
                assert!(
                    state["HeartbeatSeconds"].is_u64(),
                    "{uri}: `{state_name}` has no HeartbeatSeconds"
                );
            }
        }
    }
}

#[test]
fn invalid_input_reaches_the_failure_notification() {
    let text = std::fs::read_to_string(format!("{ROOT}/statemachines/invoice.asl.json"))
        .unwrap_or_default();
    let asl: Value = serde_json::from_str(&text).unwrap_or_default();
    let render = &asl["States"]["Render and store invoice"];
    let catch = render["Catch"]
        .as_array()
        .and_then(|c| {
            c.iter()
                .find(|c| c["ErrorEquals"][0] == "Task.InvalidInput")
        })
        .unwrap_or_else(|| panic!("Task.InvalidInput is not caught"));
    let notify = catch["Next"].as_str().unwrap_or_default();
    assert_eq!(
        asl["States"][notify]["Parameters"]["Payload"]["input"]["kind"],
        "invoice_failed"
    );
    let fail = asl["States"][notify]["Next"].as_str().unwrap_or_default();
    assert_eq!(asl["States"][fail]["Type"], "Fail");
    assert_eq!(asl["States"][fail]["CausePath"], "$.error.Cause");
}

/// Identifiers a Logs Insights query refers to as fields.
fn query_fields(query: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &[
        "fields", "filter", "stats", "sort", "limit", "by", "as", "and", "or", "not", "asc",
        "desc", "count", "sum", "avg", "min", "max", "pct", "like", "in", "display", "parse",
    ];
    let mut text = String::new();
    let mut in_string = false;
    for c in query.chars() {
        if c == '"' {
            in_string = !in_string;
            text.push(' ');
        } else if !in_string {
            text.push(c);
        }
    }
    let tokens: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '@'))
        .filter(|t| !t.is_empty())
        .collect();
    let aliases: BTreeSet<&str> = tokens
        .windows(2)
        .filter(|w| w[0] == "as")
        .map(|w| w[1])
        .collect();
    tokens
        .into_iter()
        .filter(|t| !KEYWORDS.contains(t) && !aliases.contains(t) && !t.starts_with('@'))
        .filter(|t| !t.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_owned)
        .collect()
}

#[test]
fn saved_queries_use_only_fields_common_writes() {
    let template = template();
    let mut queries: BTreeMap<String, String> = BTreeMap::new();
    for (name, resource) in resources(&template) {
        if resource["Type"].as_str() == Some("AWS::Logs::QueryDefinition") {
            let query = resource["Properties"]["QueryString"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            queries.insert(name, query);
        }
    }
    assert!(queries.len() >= 5, "{queries:?}");
    let mut used = BTreeSet::new();
    for (name, query) in &queries {
        for field in query_fields(query) {
            assert!(
                common::logging::LOG_FIELDS.contains(&field.as_str()),
                "query {name} uses `{field}`, which common never writes"
            );
            used.insert(field);
        }
    }
    for needed in [
        "correlation_id",
        "error_type",
        "duration_ms",
        "cold_start",
        "retry_count",
    ] {
        assert!(used.contains(needed), "no saved query uses {needed}");
    }
    assert!(
        query_fields("filter bogus_field = 1").contains("bogus_field"),
        "the checker sees fields"
    );
}

#[test]
fn functions_are_built_by_cargo_lambda_from_one_workspace() {
    let template = template();
    let mut binaries = BTreeSet::new();
    for (name, resource) in resources(&template) {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        assert_eq!(
            resource["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{name}"
        );
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_default();
        assert!(
            std::path::Path::new(&format!("{ROOT}/tasks/{binary}/src/main.rs")).exists(),
            "{name} builds `{binary}`, which is not a task crate"
        );
        binaries.insert(binary.to_owned());
        let props = &resource["Properties"];
        assert!(
            props["Timeout"].as_u64().is_some() && props["MemorySize"].as_u64().is_some(),
            "{name}"
        );
        assert!(
            matches!(props["LoggingConfig"]["LogGroup"], Yaml::Tagged(_)),
            "{name} logs to its own log group"
        );
    }
    assert_eq!(
        binaries,
        BTreeSet::from(["backup".into(), "invoice".into(), "notify".into()])
    );
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["CodeUri"].as_str(), Some("./"));
    assert_eq!(globals["LoggingConfig"]["LogFormat"].as_str(), Some("JSON"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
}

#[test]
fn no_wildcard_actions_in_any_policy() {
    let text = std::fs::read_to_string(format!("{ROOT}/template.yaml")).unwrap_or_default();
    let template = template();
    let mut checked = 0;
    fn walk(value: &Yaml, path: &str, checked: &mut usize, deny_ok: bool) {
        match value {
            Yaml::Mapping(map) => {
                let deny = map.get("Effect").and_then(Yaml::as_str) == Some("Deny");
                if let Some(action) = map.get("Action") {
                    let actions: Vec<&str> = match action {
                        Yaml::String(s) => vec![s.as_str()],
                        Yaml::Sequence(items) => items.iter().filter_map(Yaml::as_str).collect(),
                        _ => vec![],
                    };
                    for a in actions {
                        *checked += 1;
                        // TLS-only Deny statements name every action on purpose.
                        if !(deny || deny_ok) {
                            assert!(!a.contains('*'), "{path}: wildcard action `{a}`");
                        }
                    }
                }
                for (k, v) in map {
                    walk(
                        v,
                        &format!("{path}.{}", k.as_str().unwrap_or("?")),
                        checked,
                        deny_ok,
                    );
                }
            }
            Yaml::Sequence(items) => items.iter().for_each(|v| walk(v, path, checked, deny_ok)),
            Yaml::Tagged(tagged) => walk(&tagged.value, path, checked, deny_ok),
            _ => {}
        }
    }
    walk(&template["Resources"], "Resources", &mut checked, false);
    assert!(checked > 10, "policies were found ({checked} actions)");
    assert!(!text.contains("Action: \"*\""));
}
