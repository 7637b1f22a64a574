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

/// Actions AWS grants only on `Resource: "*"` (Step Functions log delivery:
/// the CloudWatch Logs delivery APIs have no resource-level permissions).
const STAR_RESOURCE_ONLY: &[&str] = &[
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
];

/// SAM policy templates the template may use: each expands to named
/// actions on the one resource it is given.
const POLICY_TEMPLATES: &[&str] = &["LambdaInvokePolicy"];

fn strings(value: &Yaml) -> Vec<&str> {
    match value {
        Yaml::String(s) => vec![s.as_str()],
        Yaml::Sequence(items) => items.iter().filter_map(Yaml::as_str).collect(),
        _ => vec![],
    }
}

/// The TLS-only bucket and queue policies deny every action on purpose, but
/// only for requests without TLS.
fn is_tls_only_deny(statement: &serde_norway::Mapping) -> bool {
    statement.get("Effect").and_then(Yaml::as_str) == Some("Deny")
        && statement
            .get("Condition")
            .and_then(|c| c.get("Bool"))
            .and_then(|b| b.get("aws:SecureTransport"))
            .and_then(Yaml::as_str)
            == Some("false")
}

/// Every IAM finding in `resources`: wildcard or `NotAction` actions,
/// `NotResource`, `Resource: "*"` on an Allow (unless every action only
/// exists on `*`), `Principal: "*"` on an Allow, and managed policies or
/// SAM policy templates not reviewed here.
fn iam_findings(resources: &Yaml) -> (Vec<String>, usize) {
    fn walk(value: &Yaml, path: &str, findings: &mut Vec<String>, actions: &mut usize) {
        match value {
            Yaml::Mapping(map) => {
                if let Some(policies) = map.get("Policies").and_then(Yaml::as_sequence) {
                    for policy in policies {
                        match policy {
                            Yaml::String(name) => {
                                findings.push(format!("{path}: managed policy `{name}`"));
                            }
                            Yaml::Mapping(m) => {
                                for key in m.keys().filter_map(Yaml::as_str) {
                                    let known = key == "Version"
                                        || key == "Statement"
                                        || POLICY_TEMPLATES.contains(&key);
                                    if !known {
                                        findings.push(format!("{path}: policy template `{key}`"));
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                if map.contains_key("Effect") {
                    let allow = map.get("Effect").and_then(Yaml::as_str) == Some("Allow");
                    for key in ["NotAction", "NotResource", "NotPrincipal"] {
                        if map.contains_key(key) {
                            findings.push(format!("{path}: `{key}`"));
                        }
                    }
                    let listed = map.get("Action").map(strings).unwrap_or_default();
                    *actions += listed.len();
                    for action in &listed {
                        if (action.contains('*') || action.contains('?')) && !is_tls_only_deny(map)
                        {
                            findings.push(format!("{path}: wildcard action `{action}`"));
                        }
                    }
                    let star_resource = map
                        .get("Resource")
                        .map(strings)
                        .unwrap_or_default()
                        .contains(&"*");
                    if allow
                        && star_resource
                        && !listed.iter().all(|a| STAR_RESOURCE_ONLY.contains(a))
                    {
                        findings.push(format!("{path}: `Resource: \"*\"` for {listed:?}"));
                    }
                    let principal = map.get("Principal");
                    let any_principal = principal.and_then(Yaml::as_str) == Some("*")
                        || principal
                            .and_then(|p| p.get("AWS"))
                            .map(strings)
                            .unwrap_or_default()
                            .contains(&"*");
                    if allow && any_principal {
                        findings.push(format!("{path}: `Principal: \"*\"` on an Allow"));
                    }
                }
                for (k, v) in map {
                    let key = k.as_str().unwrap_or("?");
                    walk(v, &format!("{path}.{key}"), findings, actions);
                }
            }
            Yaml::Sequence(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, v)| walk(v, &format!("{path}[{i}]"), findings, actions)),
            Yaml::Tagged(tagged) => walk(&tagged.value, path, findings, actions),
            _ => {}
        }
    }
    let mut findings = Vec::new();
    let mut actions = 0;
    walk(resources, "Resources", &mut findings, &mut actions);
    (findings, actions)
}

#[test]
fn iam_review_finds_nothing_in_the_template() {
    let template = template();
    let (findings, actions) = iam_findings(&template["Resources"]);
    assert!(actions > 10, "policies were found ({actions} actions)");
    assert!(findings.is_empty(), "IAM findings: {findings:#?}");
}

#[test]
fn iam_review_catches_what_it_must() {
    let planted: Yaml = serde_norway::from_str(
        r#"
Fn:
  Type: AWS::Serverless::Function
  Properties:
    Policies:
      - AdministratorAccess
      - S3FullAccessPolicy: {BucketName: b}
      - Statement:
          - {Effect: Allow, Action: "s3:*", Resource: "arn:aws:s3:::b/*"}
          - {Effect: Allow, Action: "*", Resource: "arn:aws:s3:::b/*"}
          - {Effect: Allow, Action: ["s3:GetObject", "s3:Get*"], Resource: "arn:aws:s3:::b/*"}
          - {Effect: Allow, Action: "s3:GetObjec?", Resource: "arn:aws:s3:::b/*"}
          - {Effect: Allow, NotAction: "iam:PassRole", Resource: "arn:aws:s3:::b/*"}
          - {Effect: Allow, Action: "s3:GetObject", NotResource: "arn:aws:s3:::b/*"}
          - {Effect: Deny, Action: "s3:*", Resource: "*"}
          - {Effect: Allow, Action: "s3:GetObject", Resource: "*"}
          - {Effect: Allow, Action: ["logs:CreateLogDelivery", "s3:PutObject"], Resource: "*"}
Policy:
  Type: AWS::S3::BucketPolicy
  Properties:
    PolicyDocument:
      Statement:
        - {Effect: Allow, Principal: "*", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/*"}
        - Effect: Deny
          Principal: "*"
          Action: "s3:*"
          Resource: "*"
          Condition: {Bool: {"aws:SecureTransport": "false"}}
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (findings, _) = iam_findings(&planted);
    let expected = [
        "managed policy `AdministratorAccess`",
        "policy template `S3FullAccessPolicy`",
        "wildcard action `s3:*`",
        "wildcard action `*`",
        "wildcard action `s3:Get*`",
        "wildcard action `s3:GetObjec?`",
        "`NotAction`",
        "`NotResource`",
        "`Resource: \"*\"` for [\"s3:GetObject\"]",
        "`Resource: \"*\"` for [\"logs:CreateLogDelivery\", \"s3:PutObject\"]",
        "`Principal: \"*\"` on an Allow",
    ];
    for what in expected {
        assert!(
            findings.iter().any(|f| f.ends_with(what)),
            "not caught: {what}; found {findings:#?}"
        );
    }
    // The planted Deny `s3:*` without the TLS condition is a finding; the
    // TLS-only one is not.
    let denies = findings.iter().filter(|f| f.ends_with("`s3:*`")).count();
    assert_eq!(denies, 2, "{findings:#?}");
    assert_eq!(findings.len(), expected.len() + 1, "{findings:#?}");
}

#[test]
fn every_checkov_skip_gives_its_reason() {
    let template = template();
    let mut skips = 0;
    for (name, resource) in resources(&template) {
        let Some(list) = resource["Metadata"]["checkov"]["skip"].as_sequence() else {
            continue;
        };
        for skip in list {
            skips += 1;
            let id = skip["id"].as_str().unwrap_or_default();
            let comment = skip["comment"].as_str().unwrap_or_default();
            assert!(id.starts_with("CKV"), "{name}: a skip without a check id");
            assert!(
                comment.split_whitespace().count() >= 5,
                "{name}: skip of {id} without a reason"
            );
        }
    }
    assert!(skips > 0, "the template's skips were found");
}
