//! Offline checks of `template.yaml`, `statemachines/*.asl.json` and the
//! JSONPath workflow fixture that
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
    let mut machines = state_machines(&template);
    assert_eq!(machines.len(), 3, "invoice, backup and batched backup");
    // The JSONPath invoice workflow the tests keep (JSONPath stays proven)
    // runs with the JSONata one's substitutions.
    let invoice_subs = machines
        .iter()
        .find(|(name, _, _)| name == "InvoiceStateMachine")
        .map(|(_, _, subs)| subs.clone())
        .unwrap_or_default();
    machines.push((
        "JSONPath invoice fixture".to_owned(),
        "tests/fixtures/jsonpath/invoice.asl.json".to_owned(),
        invoice_subs,
    ));
    for (name, uri, subs) in machines {
        let text = std::fs::read_to_string(format!("{ROOT}/{uri}"))
            .unwrap_or_else(|e| panic!("{uri}: {e}"));
        let asl: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{uri} is not JSON: {e}"));
        let used = placeholders(&text);
        if name.ends_with("fixture") {
            assert!(
                used.is_subset(&subs),
                "{name}: {uri} uses substitutions the template does not define"
            );
        } else {
            assert_eq!(
                used, subs,
                "{name}: substitutions used in {uri} and defined in the template differ"
            );
        }

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
            let envelope = Envelope::of(state, &asl);
            for key in [
                "correlation_id",
                "execution_id",
                "state_name",
                "retry_count",
            ] {
                assert!(
                    envelope.has(key),
                    "{uri}: `{state_name}` payload lacks {key}"
                );
            }
            assert_eq!(envelope.source("execution_id"), "Execution.Id");
            assert_eq!(envelope.source("state_name"), "State.Name");
            assert_eq!(envelope.source("retry_count"), "State.RetryCount");
            assert!(envelope.has("input"), "{uri}: `{state_name}` has no input");
            let waits = state["Resource"]
                .as_str()
                .is_some_and(|r| r.ends_with(".waitForTaskToken"));
            if waits {
                assert_eq!(envelope.source("task_token"), "Task.Token");
                assert!(
                    state["HeartbeatSeconds"].is_u64(),
                    "{uri}: `{state_name}` has no HeartbeatSeconds"
                );
            }
        }
    }
}

/// The envelope a Task state sends, in either query language: JSONPath
/// `Parameters.Payload` (`"key.$": "$$.Execution.Id"`) or JSONata
/// `Arguments.Payload` (`"key": "{% $states.context.Execution.Id %}"`).
struct Envelope<'a> {
    payload: &'a Value,
    jsonata: bool,
}

impl<'a> Envelope<'a> {
    fn of(state: &'a Value, machine: &Value) -> Self {
        let language = state["QueryLanguage"]
            .as_str()
            .or(machine["QueryLanguage"].as_str())
            .unwrap_or("JSONPath");
        let jsonata = language == "JSONata";
        let payload = if jsonata {
            &state["Arguments"]["Payload"]
        } else {
            &state["Parameters"]["Payload"]
        };
        Self { payload, jsonata }
    }

    fn value(&self, key: &str) -> Option<&'a Value> {
        if self.jsonata {
            self.payload.get(key)
        } else {
            self.payload
                .get(format!("{key}.$"))
                .or_else(|| self.payload.get(key))
        }
    }

    fn has(&self, key: &str) -> bool {
        self.value(key).is_some()
    }

    /// The context-object field a key is read from (`Execution.Id`).
    fn source(&self, key: &str) -> String {
        let text = self.value(key).and_then(Value::as_str).unwrap_or_default();
        let field = if self.jsonata {
            text.strip_prefix("{% $states.context.")
                .and_then(|t| t.strip_suffix(" %}"))
        } else {
            text.strip_prefix("$$.")
        };
        field.unwrap_or(text).to_owned()
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
        asl["States"][notify]["Arguments"]["Payload"]["input"]["kind"],
        "invoice_failed"
    );
    assert_eq!(
        catch["Assign"]["error"], "{% $states.errorOutput %}",
        "the caught error is kept for the notification and the Fail state"
    );
    let fail = asl["States"][notify]["Next"].as_str().unwrap_or_default();
    assert_eq!(asl["States"][fail]["Type"], "Fail");
    assert_eq!(asl["States"][fail]["Cause"], "{% $error.Cause %}");
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
                sfn_task::logging::LOG_FIELDS.contains(&field.as_str()),
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

// ---------------------------------------------------------------- IAM review

/// Actions AWS grants only on `Resource: "*"`, each with why. Anything else
/// on `*` in an Allow is a finding.
const STAR_RESOURCE_ONLY: &[(&str, &str)] = &[
    // The policy AWS documents for Step Functions logging: the CloudWatch
    // Logs delivery APIs take no resource ARN.
    (
        "logs:CreateLogDelivery",
        "log delivery API, no resource-level permissions",
    ),
    (
        "logs:GetLogDelivery",
        "log delivery API, no resource-level permissions",
    ),
    (
        "logs:UpdateLogDelivery",
        "log delivery API, no resource-level permissions",
    ),
    (
        "logs:DeleteLogDelivery",
        "log delivery API, no resource-level permissions",
    ),
    (
        "logs:ListLogDeliveries",
        "log delivery API, no resource-level permissions",
    ),
    (
        "logs:PutResourcePolicy",
        "the account's Logs resource policy, which log delivery edits",
    ),
    (
        "logs:DescribeResourcePolicies",
        "lists the account's Logs resource policies",
    ),
    (
        "logs:DescribeLogGroups",
        "account-wide listing, as the log delivery policy requires",
    ),
    // X-Ray (`Tracing: Active`, via AWSXrayWriteOnlyAccess) has no
    // resource-level permissions for sending traces or sampling.
    (
        "xray:PutTraceSegments",
        "X-Ray trace upload takes no resource ARN",
    ),
    (
        "xray:PutTelemetryRecords",
        "X-Ray telemetry takes no resource ARN",
    ),
    (
        "xray:GetSamplingRules",
        "X-Ray sampling takes no resource ARN",
    ),
    (
        "xray:GetSamplingTargets",
        "X-Ray sampling takes no resource ARN",
    ),
    (
        "xray:GetSamplingStatisticSummaries",
        "X-Ray sampling takes no resource ARN",
    ),
];

/// SAM policy templates the template may use, with the actions each
/// expands to (samtranslator's `policy_templates.json`): named actions on
/// the one resource it is given. The expansion is reviewed like an inline
/// statement; any other template is a finding until it is listed here.
/// SAM policy templates reviewed as safe, with the actions they grant. None
/// at the moment: `LambdaInvokePolicy` grants `function:NAME*`, every
/// function whose name starts with NAME, so the state machines grant exactly
/// their functions with their own statements.
const POLICY_TEMPLATES: &[(&str, &[&str])] = &[];

/// Managed policies SAM attaches without the template naming them, as the
/// SAM transform of this template shows (`sam_expanded_roles_pass_the_review`):
/// every function role gets the basic execution role, `Tracing` adds X-Ray
/// writes. Their statements as AWS publishes them, reviewed like inline ones.
const IMPLICIT_MANAGED_POLICIES: &[(&str, &str)] = &[
    (
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        r#"[{Effect: Allow, Resource: "*",
             Action: [logs:CreateLogGroup, logs:CreateLogStream, logs:PutLogEvents]}]"#,
    ),
    (
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
        r#"[{Effect: Allow, Resource: "*",
             Action: [xray:PutTraceSegments, xray:PutTelemetryRecords, xray:GetSamplingRules,
                      xray:GetSamplingTargets, xray:GetSamplingStatisticSummaries]}]"#,
    ),
];

/// Findings accepted for now, each with why; matched by suffix. Kept
/// explicit so that any new finding fails, and checked to still occur so
/// the list cannot go stale.
const ACCEPTED: &[(&str, &str)] = &[(
    "AWSLambdaBasicExecutionRole[0]: `Resource: \"*\"` for [\"logs:CreateLogGroup\", \"logs:CreateLogStream\", \"logs:PutLogEvents\"]",
    "SAM attaches this managed policy to every function role it creates, and \
     there is no switch to leave it out; scoping log writes to each function's \
     own log group needs an explicit role (or a permissions boundary) per function",
)];

/// Whether a list-or-string value lists `*`.
fn has_star(value: Option<&Yaml>) -> bool {
    value.map(strings).unwrap_or_default().contains(&"*")
}

/// Whether an action pattern matches more than one action.
fn is_wildcard(action: &str) -> bool {
    action.contains('*') || action.contains('?')
}

fn strings(value: &Yaml) -> Vec<&str> {
    match value {
        Yaml::String(s) => vec![s.as_str()],
        Yaml::Sequence(items) => items.iter().filter_map(Yaml::as_str).collect(),
        Yaml::Tagged(tagged) => strings(&tagged.value),
        _ => vec![],
    }
}

/// The wildcards a resource ARN may hold: one bucket's objects (under a
/// fixed prefix or all of them: `.../prefix/*`), one function's versions and
/// aliases (`...:function:NAME:*`), one log group's streams, one state
/// machine's executions (`...:execution:NAME/*`: a Distributed Map's child
/// executions, which the map must describe and stop), and the KMS
/// keys of a service's default encryption when a `kms:ViaService`
/// condition holds them to that service. Anything else (`function:NAME*`,
/// `arn:aws:s3:::*`) grants more than one named thing.
fn reviewed_wildcard(resource: &str, statement: &serde_norway::Mapping) -> bool {
    let s3_objects = resource
        .strip_suffix("/*")
        .is_some_and(|head| !head.contains('*') && !head.ends_with(":::") && !head.ends_with(':'))
        && (resource.contains(":s3:::") || resource.starts_with("${"));
    let function_versions = resource.strip_suffix(":*").is_some_and(|head| {
        !head.contains('*') && (head.contains(":function:") || head.ends_with("Function.Arn}"))
    });
    let log_streams = resource
        .strip_suffix(":*")
        .is_some_and(|head| !head.contains('*') && head.contains(":log-group:"));
    let executions = resource
        .strip_suffix("/*")
        .is_some_and(|head| !head.contains('*') && head.contains(":execution:"));
    let kms_via_service = resource.ends_with(":key/*")
        && !resource.trim_end_matches(":key/*").contains('*')
        && statement
            .get("Condition")
            .and_then(|c| c.get("StringEquals"))
            .and_then(|c| c.get("kms:ViaService"))
            .is_some();
    s3_objects || function_versions || log_streams || executions || kms_via_service
}

/// The one exception to "no wildcard actions": the TLS-only bucket and
/// queue policies deny every action on purpose, but only to requests made
/// without TLS (`Condition: {Bool: {aws:SecureTransport: "false"}}`). A
/// Deny cannot grant anything; without that condition it would still be a
/// finding, since a blanket Deny usually hides a mistake.
fn is_tls_only_deny(statement: &serde_norway::Mapping) -> bool {
    statement.get("Effect").and_then(Yaml::as_str) == Some("Deny")
        && statement
            .get("Condition")
            .and_then(|c| c.get("Bool"))
            .and_then(|b| b.get("aws:SecureTransport"))
            .and_then(Yaml::as_str)
            == Some("false")
}

/// What the review found.
#[derive(Debug, Default)]
struct IamReview {
    /// `path: what`, one per finding.
    findings: Vec<String>,
    /// Actions seen, so a review that found no policies at all fails.
    actions: usize,
}

impl IamReview {
    fn finding(&mut self, path: &str, what: impl std::fmt::Display) {
        self.findings.push(format!("{path}: {what}"));
    }

    /// One statement: wildcard or `Not*` keys, `Resource: "*"` on an Allow
    /// (unless every action exists only on `*`), `Principal: "*"` on an
    /// Allow.
    fn statement(&mut self, map: &serde_norway::Mapping, path: &str) {
        let allow = map.get("Effect").and_then(Yaml::as_str) == Some("Allow");
        for key in ["NotAction", "NotResource", "NotPrincipal"] {
            if map.contains_key(key) {
                self.finding(path, format_args!("`{key}`"));
            }
        }
        let listed = map.get("Action").map(strings).unwrap_or_default();
        self.actions += listed.len();
        for action in &listed {
            if is_wildcard(action) && !is_tls_only_deny(map) {
                self.finding(path, format_args!("wildcard action `{action}`"));
            }
        }
        let star_resource = has_star(map.get("Resource"));
        let only_on_star = |a: &&str| STAR_RESOURCE_ONLY.iter().any(|(only, _)| only == a);
        if allow && star_resource && !listed.iter().all(only_on_star) {
            self.finding(path, format_args!("`Resource: \"*\"` for {listed:?}"));
        }
        if allow {
            for resource in map.get("Resource").map(strings).unwrap_or_default() {
                if resource != "*" && resource.contains('*') && !reviewed_wildcard(resource, map) {
                    self.finding(path, format_args!("wildcard in resource `{resource}`"));
                }
            }
        }
        let principal = map.get("Principal");
        let any_principal = principal.and_then(Yaml::as_str) == Some("*")
            || has_star(principal.and_then(|p| p.get("AWS")));
        if allow && any_principal {
            self.finding(path, "`Principal: \"*\"` on an Allow");
        }
    }

    /// A SAM `Policies` list: managed policy names are findings, policy
    /// templates are expanded if reviewed, inline documents are walked.
    fn sam_policies(&mut self, policies: &[Yaml], path: &str) {
        for policy in policies {
            match policy {
                Yaml::String(name) => self.finding(path, format_args!("managed policy `{name}`")),
                // CloudFormation's own inline policy (`AWS::IAM::Role`): its
                // document is walked like any other.
                Yaml::Mapping(m) if m.contains_key("PolicyDocument") => {}
                Yaml::Mapping(m) => {
                    for key in m.keys().filter_map(Yaml::as_str) {
                        if key == "Version" || key == "Statement" {
                            continue;
                        }
                        match POLICY_TEMPLATES.iter().find(|(name, _)| *name == key) {
                            Some((_, actions)) => {
                                self.actions += actions.len();
                                for action in *actions {
                                    if is_wildcard(action) {
                                        self.finding(
                                            path,
                                            format_args!("wildcard action `{action}` in {key}"),
                                        );
                                    }
                                }
                            }
                            None => self.finding(path, format_args!("policy template `{key}`")),
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// An IAM role's `ManagedPolicyArns`: only the policies SAM attaches by
    /// itself are known (and reviewed through their statements).
    fn managed_arns(&mut self, arns: &[Yaml], path: &str) {
        for arn in arns {
            let Some(arn) = arn.as_str() else {
                self.finding(path, "a managed policy ARN that is not a plain string");
                continue;
            };
            match IMPLICIT_MANAGED_POLICIES
                .iter()
                .find(|(known, _)| *known == arn)
            {
                Some((_, document)) => {
                    let statements: Yaml =
                        serde_norway::from_str(document).unwrap_or_else(|e| panic!("{arn}: {e}"));
                    let name = arn.rsplit('/').next().unwrap_or(arn);
                    self.walk(&statements, &format!("{path}.{name}"));
                }
                None => self.finding(path, format_args!("managed policy `{arn}`")),
            }
        }
    }

    fn walk(&mut self, value: &Yaml, path: &str) {
        match value {
            Yaml::Mapping(map) => {
                if let Some(policies) = map.get("Policies").and_then(Yaml::as_sequence) {
                    self.sam_policies(policies, path);
                }
                if let Some(arns) = map.get("ManagedPolicyArns").and_then(Yaml::as_sequence) {
                    self.managed_arns(arns, path);
                }
                // A function or state machine given a role by ARN: its
                // permissions are outside the template and unreviewed.
                if map.get("Role").is_some_and(Yaml::is_string) {
                    self.finding(path, "a `Role` given as a literal ARN");
                }
                if map.contains_key("Effect") {
                    self.statement(map, path);
                }
                for (k, v) in map {
                    let key = k.as_str().unwrap_or("?");
                    self.walk(v, &format!("{path}.{key}"));
                }
            }
            Yaml::Sequence(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, v)| self.walk(v, &format!("{path}[{i}]"))),
            Yaml::Tagged(tagged) => self.walk(&tagged.value, path),
            _ => {}
        }
    }
}

/// Every IAM finding under `resources` (a template's `Resources`): see
/// [`IamReview::statement`], [`IamReview::sam_policies`] and
/// [`IamReview::managed_arns`].
fn iam_review(resources: &Yaml) -> IamReview {
    let mut review = IamReview::default();
    review.walk(resources, "Resources");
    review
}

#[test]
fn iam_review_finds_nothing_in_the_template() {
    let template = template();
    let review = iam_review(&template["Resources"]);
    assert!(
        review.actions > 10,
        "policies were found ({} actions)",
        review.actions
    );
    assert!(
        review.findings.is_empty(),
        "IAM findings: {:#?}",
        review.findings
    );
}

/// The template as CloudFormation will see it, by the SAM transform of the
/// SAM CLI venv's python named by `SAM_PYTHON` (`make test` sets it and
/// installs the venv), or `None` when a bare `cargo test` leaves it unset.
fn sam_expanded_template() -> Option<Yaml> {
    let python = std::env::var("SAM_PYTHON").ok()?;
    // Local paths are what `sam build` uploads; the transform wants S3 URIs.
    // The managed-policy map is empty: the transform then looks nothing up.
    let script = r#"
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
t = yaml_parse(open(sys.argv[1]).read())
t["Globals"]["Function"]["CodeUri"] = "s3://bucket/code"
for r in t["Resources"].values():
    if r["Type"] == "AWS::Serverless::StateMachine":
        r["Properties"]["DefinitionUri"] = "s3://bucket/definition"
class NoLookups:
    def load(self):
        return {}
print(json.dumps(transform(t, {}, NoLookups())))
"#;
    let output = std::process::Command::new(&python)
        .args(["-c", script, &format!("{ROOT}/template.yaml")])
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}"));
    assert!(
        output.status.success(),
        "the SAM transform failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("the SAM transform's output: {e}"));
    Some(serde_norway::to_value(json).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn sam_expanded_roles_pass_the_review() {
    let Some(expanded) = sam_expanded_template() else {
        eprintln!("skipped: SAM_PYTHON is not set (make test sets it)");
        return;
    };
    let roles = resources(&expanded)
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::IAM::Role"))
        .count();
    assert!(roles >= 5, "the transform made the roles ({roles})");
    let review = iam_review(&expanded["Resources"]);
    assert!(review.actions > 20, "{} actions", review.actions);
    let unaccepted: Vec<&String> = review
        .findings
        .iter()
        .filter(|f| !ACCEPTED.iter().any(|(what, _)| f.ends_with(what)))
        .collect();
    assert!(unaccepted.is_empty(), "IAM findings: {unaccepted:#?}");
    for (what, _) in ACCEPTED {
        assert!(
            review.findings.iter().any(|f| f.ends_with(what)),
            "accepted finding no longer occurs, drop it: {what}"
        );
    }
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
      - LambdaInvokePolicy: {FunctionName: f}
      - Statement:
          - {Effect: Allow, Action: "s3:*", Resource: "arn:aws:s3:::b/*"}
          - {Effect: Allow, Action: "*", Resource: "arn:aws:s3:::b/*"}
          - {Effect: Allow, Action: ["s3:GetObject", "s3:Get*"], Resource: "arn:aws:s3:::b/*"}
          - {Effect: Allow, Action: "s3:GetObjec?", Resource: "arn:aws:s3:::b/*"}
          - {Effect: Allow, NotAction: "iam:PassRole", Resource: "arn:aws:s3:::b/*"}
          - {Effect: Deny, NotAction: "s3:GetObject", Resource: "arn:aws:s3:::b/*"}
          - {Effect: Allow, Action: "s3:GetObject", NotResource: "arn:aws:s3:::b/*"}
          - {Effect: Deny, Action: "sqs:*", Resource: "*"}
          - {Effect: Allow, Action: "s3:GetObject", Resource: "*"}
          - {Effect: Allow, Action: ["logs:CreateLogDelivery", "s3:PutObject"], Resource: "*"}
          - {Effect: Allow, Action: ["xray:PutTraceSegments", "logs:CreateLogDelivery"], Resource: "*"}
          - {Effect: Allow, Action: "lambda:InvokeFunction", Resource: "arn:aws:lambda:eu-west-1:123456789012:function:local-invoice*"}
          - {Effect: Allow, Action: "s3:ListBucket", Resource: "arn:aws:s3:::*"}
          - {Effect: Allow, Action: "kms:Decrypt", Resource: "arn:aws:kms:eu-west-1:123456789012:key/*"}
          - {Effect: Allow, Action: "lambda:InvokeFunction", Resource: ["arn:aws:lambda:eu-west-1:123456789012:function:f", "arn:aws:lambda:eu-west-1:123456789012:function:f:*"]}
          - {Effect: Allow, Action: "states:StopExecution", Resource: "arn:aws:states:eu-west-1:123456789012:execution:*/*"}
          - {Effect: Allow, Action: "states:StopExecution", Resource: "arn:aws:states:eu-west-1:123456789012:execution:m/*"}
Other:
  Type: AWS::Serverless::StateMachine
  Properties:
    Role: arn:aws:iam::123456789012:role/somebody-elses
Role:
  Type: AWS::IAM::Role
  Properties:
    ManagedPolicyArns:
      - arn:aws:iam::aws:policy/AdministratorAccess
      - arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess
    Policies:
      - PolicyName: inline
        PolicyDocument:
          Statement:
            - {Effect: Allow, Action: ["iam:*"], Resource: "arn:aws:iam::123456789012:role/x"}
Policy:
  Type: AWS::S3::BucketPolicy
  Properties:
    PolicyDocument:
      Statement:
        - {Effect: Allow, Principal: "*", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/*"}
        - {Effect: Allow, Principal: {AWS: "*"}, Action: "s3:ListBucket", Resource: "arn:aws:s3:::b"}
        - Effect: Deny
          Principal: "*"
          Action: "*"
          Resource: "*"
        - Effect: Deny
          Principal: "*"
          Action: "s3:*"
          Resource: "*"
          Condition: {Bool: {"aws:SecureTransport": "true"}}
        - Effect: Deny
          Principal: "*"
          Action: "s3:*"
          Resource: "*"
          Condition: {StringNotEquals: {"aws:SecureTransport": "false"}}
        - Effect: Deny
          Principal: "*"
          Action: "s3:*"
          Resource: "*"
          Condition: {Bool: {"aws:SecureTransport": "false"}}
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let review = iam_review(&planted);
    let findings = &review.findings;
    let expected = [
        ("Fn.Properties", "managed policy `AdministratorAccess`"),
        ("Fn.Properties", "policy template `S3FullAccessPolicy`"),
        ("Fn.Properties", "policy template `LambdaInvokePolicy`"),
        (
            "Statement[11]",
            "wildcard in resource `arn:aws:lambda:eu-west-1:123456789012:function:local-invoice*`",
        ),
        ("Statement[12]", "wildcard in resource `arn:aws:s3:::*`"),
        (
            "Statement[15]",
            "wildcard in resource `arn:aws:states:eu-west-1:123456789012:execution:*/*`",
        ),
        (
            "Statement[13]",
            "wildcard in resource `arn:aws:kms:eu-west-1:123456789012:key/*`",
        ),
        ("Statement[0]", "wildcard action `s3:*`"),
        ("Statement[1]", "wildcard action `*`"),
        ("Statement[2]", "wildcard action `s3:Get*`"),
        ("Statement[3]", "wildcard action `s3:GetObjec?`"),
        ("Statement[4]", "`NotAction`"),
        ("Statement[5]", "`NotAction`"),
        ("Statement[6]", "`NotResource`"),
        ("Statement[7]", "wildcard action `sqs:*`"),
        ("Statement[8]", "`Resource: \"*\"` for [\"s3:GetObject\"]"),
        (
            "Statement[9]",
            "`Resource: \"*\"` for [\"logs:CreateLogDelivery\", \"s3:PutObject\"]",
        ),
        ("Other.Properties", "a `Role` given as a literal ARN"),
        (
            "Role.Properties",
            "managed policy `arn:aws:iam::aws:policy/AdministratorAccess`",
        ),
        ("PolicyDocument.Statement[0]", "wildcard action `iam:*`"),
        (
            "Policy.Properties.PolicyDocument.Statement[0]",
            "`Principal: \"*\"` on an Allow",
        ),
        (
            "Policy.Properties.PolicyDocument.Statement[1]",
            "`Principal: \"*\"` on an Allow",
        ),
        (
            "Policy.Properties.PolicyDocument.Statement[2]",
            "wildcard action `*`",
        ),
        (
            "Policy.Properties.PolicyDocument.Statement[3]",
            "wildcard action `s3:*`",
        ),
        (
            "Policy.Properties.PolicyDocument.Statement[4]",
            "wildcard action `s3:*`",
        ),
    ];
    for (path, what) in expected {
        assert!(
            findings
                .iter()
                .any(|f| f.ends_with(what)
                    && f.split(": ").next().is_some_and(|p| p.ends_with(path))),
            "not caught: {path}: {what}; found {findings:#?}"
        );
    }
    // Nothing else: the reviewed LambdaInvokePolicy, the X-Ray and log
    // delivery actions on `*`, one state machine's executions, the known
    // X-Ray managed policy and the TLS-only Deny (Statement[5] of the bucket
    // policy) pass.
    assert_eq!(findings.len(), expected.len(), "{findings:#?}");
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

/// Whether a Task state is a failure notification: what runs when
/// everything else failed, so its own failure ends the execution (and the
/// ExecutionsFailed alarm tells someone).
fn is_failure_notification(state: &Value) -> bool {
    let input = &state["Arguments"]["Payload"]["input"];
    let kind = input["kind"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| {
            input
                .as_str()
                .and_then(|t| t.split("'kind': '").nth(1))
                .and_then(|t| t.split('\'').next())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    kind.ends_with("_failed")
}

#[test]
fn every_task_state_reaches_a_failure_notification_when_it_fails() {
    for uri in [
        "statemachines/invoice.asl.json",
        "statemachines/backup.asl.json",
    ] {
        let text = std::fs::read_to_string(format!("{ROOT}/{uri}")).unwrap_or_default();
        let asl: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{uri}: {e}"));
        let states = asl["States"].as_object().cloned().unwrap_or_default();
        for (name, state) in &states {
            if state["Type"] != "Task" || is_failure_notification(state) {
                continue;
            }
            let catch_all = state["Catch"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| {
                    c["ErrorEquals"]
                        .as_array()
                        .is_some_and(|e| e.iter().any(|x| x == "States.ALL"))
                })
                .unwrap_or_else(|| panic!("{uri}: `{name}` has no Catch for States.ALL"));
            let target = catch_all["Next"].as_str().unwrap_or_default();
            assert!(
                is_failure_notification(&states[target]),
                "{uri}: `{name}` catches into `{target}`, not a failure notification"
            );
            assert_eq!(
                states[target]["Next"]
                    .as_str()
                    .map(|fail| states[fail]["Type"].clone()),
                Some(Value::from("Fail")),
                "{uri}: `{target}` ends in a Fail state"
            );
        }
    }
}

#[test]
fn the_application_log_level_cannot_drop_the_lifecycle_lines() {
    let template = template();
    let allowed = strings(&template["Parameters"]["ApplicationLogLevel"]["AllowedValues"]);
    assert!(
        !allowed.is_empty()
            && allowed
                .iter()
                .all(|l| ["TRACE", "DEBUG", "INFO"].contains(l)),
        "Lambda drops INFO lines at WARN and above: {allowed:?}"
    );
}

#[test]
fn state_machine_roles_invoke_exactly_their_functions() {
    let template = template();
    for (name, resource) in resources(&template) {
        if resource["Type"].as_str() != Some("AWS::Serverless::StateMachine") {
            continue;
        }
        let functions: BTreeSet<String> = resource["Properties"]["DefinitionSubstitutions"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(_, v)| strings(v).first().map(|s| (*s).to_owned()))
            .filter(|s| s.ends_with("Function.Arn"))
            .map(|s| s.trim_end_matches(".Arn").to_owned())
            .collect();
        let mut granted = BTreeSet::new();
        for policy in resource["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                if !strings(&statement["Action"]).contains(&"lambda:InvokeFunction") {
                    continue;
                }
                for target in statement["Resource"].as_sequence().into_iter().flatten() {
                    let text = strings(target).first().copied().unwrap_or_default();
                    let function = text
                        .trim_start_matches("${")
                        .split(['.', '}'])
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let ok = text == format!("{function}.Arn")
                        || text == format!("${{{function}.Arn}}:*");
                    assert!(ok, "{name}: invoke permission on `{text}`");
                    granted.insert(function);
                }
            }
        }
        assert_eq!(
            granted, functions,
            "{name}: invokes exactly the functions it calls"
        );
    }
}
