//! Reads a SAM template into what the local stack creates and runs.
//!
//! The template stays the single source: names, environment, timeouts, memory,
//! logging config, queue attributes and state machine definitions all come
//! from it, with the intrinsics it uses (`Ref`, `Fn::GetAtt`, `Fn::Sub`,
//! `Fn::Join`, `Fn::Split`, `Fn::Select`, `Fn::If` and its conditions)
//! resolved to local names and ARNs. Resources the local stack has no use for
//! (IAM, alarms, topics) are read only as far as something refers to them.

mod intrinsics;
mod resolver;
mod resources;
mod yaml;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use serde_norway::Value as Yaml;

use resolver::Resolver;
use resources::queue_attributes;

use crate::log_levels::{Level, LogFormat};

/// Where the stack lives: the pseudo parameters and the endpoint queue URLs
/// point at.
#[derive(Debug, Clone)]
pub struct Placement {
    /// `AWS::StackName`; prefixes every generated name.
    pub stack_name: String,
    /// `AWS::Region`.
    pub region: String,
    /// `AWS::AccountId` (moto's default account).
    pub account: String,
    /// Base URL of the local endpoint, e.g. `http://127.0.0.1:4566`.
    pub endpoint: String,
}

/// A Lambda function as the template declares it.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// Logical ID in the template.
    pub logical_id: String,
    /// Function name (`Ref`).
    pub name: String,
    /// Function ARN (`Fn::GetAtt …Arn`).
    pub arn: String,
    /// Binary name from `Metadata.BuildProperties.Binary`.
    pub binary: String,
    /// `Timeout` (default 3 s, as Lambda's).
    pub timeout: Duration,
    /// `MemorySize` in MB (default 128).
    pub memory_mb: u32,
    /// Globals and function `Environment.Variables`, resolved.
    pub environment: BTreeMap<String, String>,
    /// `LoggingConfig`, with Lambda's defaults.
    pub logging: LoggingConfig,
    /// `Runtime` (`provided.al2023`).
    pub runtime: String,
    /// `Handler` (`bootstrap` for custom runtimes).
    pub handler: String,
    /// `Architectures` (default `x86_64`, as Lambda's).
    pub architectures: Vec<String>,
    /// `Description`.
    pub description: String,
    /// `Tracing` as `TracingConfig.Mode`: `Active` or `PassThrough`.
    pub tracing: String,
    /// `EphemeralStorage.Size` in MB (default 512).
    pub ephemeral_storage_mb: u32,
    /// The execution role's ARN (SAM creates `<LogicalId>Role`).
    pub role_arn: String,
}

/// A function's `LoggingConfig` as Lambda applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggingConfig {
    /// `LogFormat` (default `Text`).
    pub format: LogFormat,
    /// `ApplicationLogLevel`: JSON only, INFO unless set.
    pub application_level: Option<Level>,
    /// `SystemLogLevel`: JSON only, INFO unless set.
    pub system_level: Option<Level>,
    /// `LogGroup`, or Lambda's default `/aws/lambda/<name>`.
    pub group: String,
}

/// A Step Functions state machine with its definition substituted.
#[derive(Debug, Clone)]
pub struct StateMachineSpec {
    /// Logical ID in the template.
    pub logical_id: String,
    /// State machine name.
    pub name: String,
    /// State machine ARN (`Ref`).
    pub arn: String,
    /// The ASL definition after `DefinitionSubstitutions`.
    pub definition: String,
    /// `DefinitionSubstitutions`, resolved.
    pub substitutions: BTreeMap<String, String>,
    /// `Type`: `STANDARD` or `EXPRESS`.
    pub kind: String,
    /// A role ARN to create it with (moto requires one, checks nothing).
    pub role_arn: String,
}

impl StateMachineSpec {
    /// Runs the definition in `path` instead of the template's (with the
    /// template's substitutions): trying a definition without editing the
    /// template, or keeping an older one under test.
    pub fn replace_definition(&mut self, path: &Path) -> Result<()> {
        let text = resources::read_definition(path)
            .with_context(|| format!("{}: the definition to run instead", self.logical_id))?;
        self.definition = resources::substitute(&text, &self.substitutions);
        Ok(())
    }
}

/// An S3 bucket.
#[derive(Debug, Clone)]
pub struct BucketSpec {
    /// Logical ID in the template.
    pub logical_id: String,
    /// Bucket name (`Ref`).
    pub name: String,
    /// Whether `VersioningConfiguration.Status` is `Enabled`.
    pub versioned: bool,
}

/// An SQS queue.
#[derive(Debug, Clone)]
pub struct QueueSpec {
    /// Logical ID in the template.
    pub logical_id: String,
    /// Queue name (`Fn::GetAtt …QueueName`).
    pub name: String,
    /// Queue URL (`Ref`).
    pub url: String,
    /// Attributes for `CreateQueue`, resolved (RedrivePolicy as JSON text).
    pub attributes: BTreeMap<String, String>,
}

/// Everything the local stack creates, in the template's order.
#[derive(Debug, Clone)]
pub struct StackSpec {
    /// Where it lives.
    pub placement: Placement,
    /// Lambda functions.
    pub functions: Vec<FunctionSpec>,
    /// State machines.
    pub state_machines: Vec<StateMachineSpec>,
    /// S3 buckets.
    pub buckets: Vec<BucketSpec>,
    /// SQS queues.
    pub queues: Vec<QueueSpec>,
    /// CloudWatch log group names (declared ones and the functions').
    pub log_groups: Vec<String>,
    /// Saved Logs Insights queries (`AWS::Logs::QueryDefinition`).
    pub saved_queries: Vec<SavedQuery>,
}

/// One `AWS::Logs::QueryDefinition`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedQuery {
    /// Logical ID in the template.
    pub logical_id: String,
    /// `Name` (as the console lists it).
    pub name: String,
    /// `QueryString`.
    pub query: String,
    /// `LogGroupNames` (empty: the user picks).
    pub log_groups: Vec<String>,
}

impl StackSpec {
    /// Reads `path` and resolves it for `placement`, with parameter
    /// overrides as `sam deploy --parameter-overrides` takes them.
    pub fn load(
        path: &Path,
        placement: Placement,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let template: Yaml =
            serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_yaml(&template, &base, placement, overrides)
    }

    /// Resolves an already parsed template; `base` is the folder
    /// `DefinitionUri` paths are relative to.
    pub fn from_yaml(
        template: &Yaml,
        base: &Path,
        placement: Placement,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self> {
        let resolver = Resolver::new(template, placement.clone(), overrides)?;
        let mut spec = StackSpec {
            placement,
            functions: Vec::new(),
            state_machines: Vec::new(),
            buckets: Vec::new(),
            queues: Vec::new(),
            log_groups: Vec::new(),
            saved_queries: Vec::new(),
        };
        for (id, resource) in &resolver.resources {
            let props = resolver.properties_of(id)?;
            match resource.kind.as_str() {
                "AWS::Serverless::Function" => {
                    let function = resolver.function(id, resource, &props)?;
                    spec.log_groups.push(function.logging.group.clone());
                    spec.functions.push(function);
                }
                "AWS::Serverless::StateMachine" | "AWS::StepFunctions::StateMachine" => {
                    spec.state_machines
                        .push(resolver.state_machine(id, resource, &props, base)?);
                }
                "AWS::S3::Bucket" => spec.buckets.push(BucketSpec {
                    logical_id: id.clone(),
                    name: resource.name.clone(),
                    versioned: props
                        .pointer("/VersioningConfiguration/Status")
                        .and_then(Value::as_str)
                        == Some("Enabled"),
                }),
                "AWS::SQS::Queue" => spec.queues.push(QueueSpec {
                    logical_id: id.clone(),
                    name: resource.name.clone(),
                    url: resource.reference.clone(),
                    attributes: queue_attributes(&props)?,
                }),
                "AWS::Logs::LogGroup" => spec.log_groups.push(resource.name.clone()),
                "AWS::Logs::QueryDefinition" => spec.saved_queries.push(SavedQuery {
                    logical_id: id.clone(),
                    name: text_property(&props, "Name").unwrap_or_else(|| id.clone()),
                    query: text_property(&props, "QueryString").unwrap_or_default(),
                    log_groups: props
                        .get("LogGroupNames")
                        .and_then(Value::as_array)
                        .map(|names| {
                            names
                                .iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                }),
                _ => {}
            }
        }
        spec.log_groups.sort();
        spec.log_groups.dedup();
        Ok(spec)
    }

    /// The saved query with this logical ID.
    pub fn saved_query(&self, logical_id: &str) -> Option<&SavedQuery> {
        self.saved_queries
            .iter()
            .find(|q| q.logical_id == logical_id)
    }

    /// The function with this name, ARN (any qualifier) or logical ID.
    pub fn function(&self, name_or_arn: &str) -> Option<&FunctionSpec> {
        let name = function_name_from(name_or_arn);
        self.functions
            .iter()
            .find(|f| f.name == name || f.logical_id == name)
    }

    /// The state machine with this logical ID or name.
    pub fn state_machine(&self, id: &str) -> Option<&StateMachineSpec> {
        self.state_machines
            .iter()
            .find(|m| m.logical_id == id || m.name == id)
    }

    /// The bucket with this logical ID.
    pub fn bucket(&self, logical_id: &str) -> Option<&BucketSpec> {
        self.buckets.iter().find(|b| b.logical_id == logical_id)
    }

    /// The queue with this logical ID.
    pub fn queue(&self, logical_id: &str) -> Option<&QueueSpec> {
        self.queues.iter().find(|q| q.logical_id == logical_id)
    }
}

fn text_property(props: &Value, key: &str) -> Option<String> {
    props.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The function name inside what the Invoke API accepts: a name, a full or
/// partial ARN, each with an optional `:qualifier`.
pub fn function_name_from(name_or_arn: &str) -> &str {
    let parts: Vec<&str> = name_or_arn.split(':').collect();
    match parts.iter().position(|p| *p == "function") {
        Some(i) if i + 1 < parts.len() => parts[i + 1],
        // `name:qualifier`
        _ => parts.first().copied().unwrap_or(name_or_arn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement() -> Placement {
        Placement {
            stack_name: "demo".to_owned(),
            region: "eu-west-1".to_owned(),
            account: "123456789012".to_owned(),
            endpoint: "http://127.0.0.1:4566".to_owned(),
        }
    }

    fn load(overrides: &[(&str, &str)]) -> StackSpec {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let overrides = overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        match StackSpec::load(&path, placement(), &overrides) {
            Ok(spec) => spec,
            Err(e) => panic!("template.yaml: {e:#}"),
        }
    }

    #[test]
    fn functions_take_names_environment_and_limits_from_the_template() {
        let spec = load(&[("BackupSourceBuckets", "crm-exports,erp-exports")]);
        let invoice = spec.function("InvoiceFunction").cloned();
        let Some(invoice) = invoice else {
            panic!("no InvoiceFunction")
        };
        assert_eq!(invoice.name, "demo-invoice");
        assert_eq!(invoice.binary, "invoice");
        assert_eq!(invoice.timeout, Duration::from_secs(60));
        assert_eq!(invoice.memory_mb, 512);
        assert_eq!(invoice.logging.format, LogFormat::Json);
        assert_eq!(invoice.logging.application_level, Some(Level::Info));
        assert_eq!(invoice.logging.group, "/aws/lambda/demo-invoice");
        assert_eq!(invoice.runtime, "provided.al2023");
        assert_eq!(invoice.architectures, ["arm64"]);
        assert_eq!(invoice.tracing, "Active");
        assert_eq!(invoice.environment["INVOICE_BUCKET"], "demo-invoicebucket");
        // Globals are merged in, not replaced.
        assert_eq!(
            invoice.environment["METRICS_NAMESPACE"],
            "StepFunctionsTasks"
        );
        assert_eq!(invoice.environment["SENTRY_DSN"], "");

        let backup =
            spec.function("arn:aws:lambda:eu-west-1:123456789012:function:demo-backup:$LATEST");
        assert_eq!(
            backup.map(|b| b.environment["BACKUP_SOURCE_BUCKETS"].as_str()),
            Some("crm-exports,erp-exports")
        );
        let notify = spec.function("demo-notify").map(|f| f.environment.clone());
        assert_eq!(
            notify.map(|e| e["NOTIFY_QUEUE_URL"].clone()).as_deref(),
            Some("http://127.0.0.1:4566/123456789012/demo-NotificationQueue.fifo")
        );
    }

    #[test]
    fn saved_queries_come_with_their_log_groups_resolved() {
        let spec = load(&[]);
        assert_eq!(spec.saved_queries.len(), 5, "{:?}", spec.saved_queries);
        let failures = spec.saved_query("QueryFailures").cloned();
        let Some(failures) = failures else {
            panic!("no QueryFailures")
        };
        assert_eq!(failures.name, "demo/failures by task and error type");
        assert!(failures.query.contains("stats count(*)"), "{failures:?}");
        assert!(
            failures
                .log_groups
                .contains(&"/aws/lambda/demo-invoice".to_owned()),
            "{failures:?}"
        );
        for group in &failures.log_groups {
            assert!(spec.log_groups.contains(group), "{group} is not created");
        }
    }

    #[test]
    fn state_machine_definitions_get_their_substitutions() {
        let spec = load(&[("ApprovalThresholds", "EUR:250,USD:300")]);
        let Some(invoice) = spec.state_machine("InvoiceStateMachine") else {
            panic!("no InvoiceStateMachine")
        };
        assert_eq!(
            invoice.arn,
            "arn:aws:states:eu-west-1:123456789012:stateMachine:demo-invoice"
        );
        assert!(
            !invoice.definition.contains("${"),
            "unsubstituted: {}",
            invoice.definition
        );
        assert!(invoice.definition.contains("function:demo-invoice\""));
        assert!(
            invoice
                .definition
                .contains("$split('EUR:250,USD:300', ',')")
        );
        let definition: Value = match serde_json::from_str(&invoice.definition) {
            Ok(v) => v,
            Err(e) => panic!("definition is not JSON after substitution: {e}"),
        };
        assert!(definition["States"].is_object());
    }

    #[test]
    fn queues_keep_their_attributes_with_references_resolved() {
        let spec = load(&[]);
        let Some(queue) = spec.queue("NotificationQueue") else {
            panic!("no NotificationQueue")
        };
        assert_eq!(queue.name, "demo-NotificationQueue.fifo");
        assert_eq!(queue.attributes["FifoQueue"], "true");
        assert_eq!(queue.attributes["ContentBasedDeduplication"], "false");
        let redrive: Value =
            serde_json::from_str(&queue.attributes["RedrivePolicy"]).unwrap_or_default();
        assert_eq!(
            redrive["deadLetterTargetArn"],
            "arn:aws:sqs:eu-west-1:123456789012:demo-NotificationDeadLetterQueue.fifo"
        );
        assert!(
            spec.log_groups
                .contains(&"/aws/lambda/demo-backup".to_owned())
        );
        assert!(spec.bucket("BackupBucket").is_some_and(|b| b.versioned));
    }

    #[test]
    fn unknown_parameters_and_references_are_errors() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let overrides = BTreeMap::from([("NoSuchParameter".to_owned(), "1".to_owned())]);
        let err = StackSpec::load(&path, placement(), &overrides).err();
        assert!(err.is_some_and(|e| e.to_string().contains("NoSuchParameter")));

        let broken: Yaml = serde_norway::from_str(
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildProperties: {Binary: f}}\n    Properties:\n      Environment: {Variables: {X: !Ref Missing}}\n",
        )
        .unwrap_or(Yaml::Null);
        let err =
            StackSpec::from_yaml(&broken, Path::new("."), placement(), &BTreeMap::new()).err();
        assert!(err.is_some_and(|e| format!("{e:#}").contains("Ref Missing")));
    }

    #[test]
    fn log_levels_need_the_json_format_as_lambda_requires() {
        let with = |logging: &str| -> Result<StackSpec> {
            let template: Yaml = serde_norway::from_str(&format!(
                "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata: {{BuildProperties: {{Binary: f}}}}\n    Properties:\n      LoggingConfig: {logging}\n"
            ))?;
            StackSpec::from_yaml(&template, Path::new("."), placement(), &BTreeMap::new())
        };
        let refused = with("{LogFormat: Text, ApplicationLogLevel: WARN}").err();
        assert!(
            refused.is_some_and(|e| format!("{e:#}").contains("only with LogFormat JSON")),
            "Lambda refuses levels with the text format"
        );
        let json = with("{LogFormat: JSON}").unwrap_or_else(|e| panic!("{e:#}"));
        let logging = &json.functions[0].logging;
        assert_eq!(
            logging.application_level,
            Some(Level::Info),
            "INFO unless set"
        );
        assert_eq!(logging.system_level, Some(Level::Info));
        assert_eq!(logging.group, "/aws/lambda/demo-F");
        let bad = with("{LogFormat: JSON, SystemLogLevel: ERROR}").err();
        assert!(bad.is_some_and(|e| format!("{e:#}").contains("SystemLogLevel")));
    }

    #[test]
    fn function_names_come_out_of_arns() {
        assert_eq!(function_name_from("name:prod"), "name");
        assert_eq!(function_name_from("123456789012:function:name"), "name");
        assert_eq!(
            function_name_from("arn:aws:lambda:eu-west-1:123456789012:function:name:$LATEST"),
            "name"
        );
    }
}
