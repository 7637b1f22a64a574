//! Reads a SAM template into what the local stack creates and runs.
//!
//! The template stays the single source: names, environment, timeouts, memory,
//! logging config, queue attributes and state machine definitions all come
//! from it, with the intrinsics it uses (`Ref`, `Fn::GetAtt`, `Fn::Sub`,
//! `Fn::Join`, `Fn::Split`, `Fn::Select`, `Fn::If` and its conditions)
//! resolved to local names and ARNs. Resources the local stack has no use for
//! (IAM, alarms, topics) are read only as far as something refers to them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};
use serde_norway::Value as Yaml;

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
    /// `LoggingConfig.LogFormat` (`Text` or `JSON`).
    pub log_format: String,
    /// `LoggingConfig.ApplicationLogLevel`, if set.
    pub log_level: Option<String>,
    /// `LoggingConfig.LogGroup`, or Lambda's default `/aws/lambda/<name>`.
    pub log_group: String,
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
    /// `Type`: `STANDARD` or `EXPRESS`.
    pub kind: String,
    /// A role ARN to create it with (moto requires one, checks nothing).
    pub role_arn: String,
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
        };
        for (id, resource) in &resolver.resources {
            let props = resolver.properties_of(id)?;
            match resource.kind.as_str() {
                "AWS::Serverless::Function" => {
                    let function = resolver.function(id, resource, &props)?;
                    spec.log_groups.push(function.log_group.clone());
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
                _ => {}
            }
        }
        spec.log_groups.sort();
        spec.log_groups.dedup();
        Ok(spec)
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

fn queue_attributes(props: &Value) -> Result<BTreeMap<String, String>> {
    const PASSED_ON: &[&str] = &[
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "DelaySeconds",
        "FifoQueue",
        "FifoThroughputLimit",
        "KmsMasterKeyId",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout",
    ];
    let mut attributes = BTreeMap::new();
    for key in PASSED_ON {
        if let Some(value) = props.get(*key) {
            attributes.insert((*key).to_owned(), scalar(value)?);
        }
    }
    if let Some(policy) = props.get("RedrivePolicy") {
        attributes.insert("RedrivePolicy".to_owned(), policy.to_string());
    }
    Ok(attributes)
}

/// One resource: its type and the names other resources see.
#[derive(Debug, Clone)]
struct Resource {
    kind: String,
    /// What `Ref` gives.
    reference: String,
    /// The physical name.
    name: String,
    /// `Fn::GetAtt` attributes.
    attributes: HashMap<String, String>,
}

/// Resolves intrinsics against parameters, conditions and the local names of
/// every resource.
#[derive(Debug)]
struct Resolver {
    placement: Placement,
    parameters: HashMap<String, Value>,
    conditions: HashMap<String, Yaml>,
    /// Logical ID → resource, in template order.
    resources: Vec<(String, Resource)>,
    /// Logical ID → its raw definition, with Globals merged for functions.
    raw: HashMap<String, Yaml>,
}

impl Resolver {
    fn new(
        template: &Yaml,
        placement: Placement,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self> {
        let mut resolver = Resolver {
            placement,
            parameters: HashMap::new(),
            conditions: HashMap::new(),
            resources: Vec::new(),
            raw: HashMap::new(),
        };
        resolver.read_parameters(template, overrides)?;
        if let Some(Yaml::Mapping(conditions)) = template.get("Conditions") {
            for (name, body) in conditions {
                resolver
                    .conditions
                    .insert(key_str(name)?.to_owned(), body.clone());
            }
        }
        let Some(Yaml::Mapping(resources)) = template.get("Resources") else {
            bail!("the template has no Resources");
        };
        let function_globals = template
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .cloned();
        // Names first: they only depend on parameters and pseudo parameters,
        // and everything else may refer to them.
        for (id, body) in resources {
            let id = key_str(id)?.to_owned();
            let kind = body
                .get("Type")
                .and_then(Yaml::as_str)
                .ok_or_else(|| anyhow!("resource {id} has no Type"))?
                .to_owned();
            let mut body = body.clone();
            if kind == "AWS::Serverless::Function"
                && let Some(globals) = &function_globals
            {
                merge_globals(&mut body, globals);
            }
            let resource = resolver.name_resource(&id, &kind, &body)?;
            resolver.raw.insert(id.clone(), body);
            resolver.resources.push((id, resource));
        }
        Ok(resolver)
    }

    fn read_parameters(
        &mut self,
        template: &Yaml,
        overrides: &BTreeMap<String, String>,
    ) -> Result<()> {
        if let Some(Yaml::Mapping(parameters)) = template.get("Parameters") {
            for (name, body) in parameters {
                let name = key_str(name)?.to_owned();
                let given = match overrides.get(&name) {
                    Some(value) => Some(value.clone()),
                    None => body.get("Default").map(yaml_scalar).transpose()?,
                };
                let Some(given) = given else {
                    bail!("parameter {name} has no Default: pass --parameter {name}=VALUE");
                };
                let kind = body.get("Type").and_then(Yaml::as_str).unwrap_or("String");
                let value = if kind == "CommaDelimitedList" || kind.starts_with("List<") {
                    Value::Array(
                        given
                            .split(',')
                            .map(|s| Value::String(s.trim().to_owned()))
                            .collect(),
                    )
                } else {
                    Value::String(given)
                };
                self.parameters.insert(name, value);
            }
        }
        for name in overrides.keys() {
            if !self.parameters.contains_key(name) {
                bail!("--parameter {name}: the template declares no such parameter");
            }
        }
        Ok(())
    }

    /// Physical name, `Ref` value and attributes of one resource, as
    /// CloudFormation would give them (generated names are deterministic
    /// here: `<stack>-<LogicalId>`).
    fn name_resource(&self, id: &str, kind: &str, body: &Yaml) -> Result<Resource> {
        let Placement {
            stack_name,
            region,
            account,
            endpoint,
        } = &self.placement;
        let explicit = |key: &str| -> Result<Option<String>> {
            match body.get("Properties").and_then(|p| p.get(key)) {
                Some(value) => Ok(Some(scalar(&self.eval(value)?)?)),
                None => Ok(None),
            }
        };
        let generated = format!("{stack_name}-{id}");
        let mut attributes = HashMap::new();
        let (reference, name) = match kind {
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => {
                let name = explicit("FunctionName")?.unwrap_or(generated);
                let arn = format!("arn:aws:lambda:{region}:{account}:function:{name}");
                attributes.insert("Arn".to_owned(), arn);
                (name.clone(), name)
            }
            "AWS::S3::Bucket" => {
                let name = explicit("BucketName")?.unwrap_or_else(|| generated.to_lowercase());
                attributes.insert("Arn".to_owned(), format!("arn:aws:s3:::{name}"));
                attributes.insert("DomainName".to_owned(), format!("{name}.s3.amazonaws.com"));
                (name.clone(), name)
            }
            "AWS::SQS::Queue" => {
                let fifo = body
                    .get("Properties")
                    .and_then(|p| p.get("FifoQueue"))
                    .is_some_and(|v| yaml_scalar(v).is_ok_and(|s| s == "true"));
                let name = explicit("QueueName")?.unwrap_or_else(|| {
                    if fifo {
                        format!("{generated}.fifo")
                    } else {
                        generated
                    }
                });
                let url = format!("{endpoint}/{account}/{name}");
                attributes.insert(
                    "Arn".to_owned(),
                    format!("arn:aws:sqs:{region}:{account}:{name}"),
                );
                attributes.insert("QueueName".to_owned(), name.clone());
                attributes.insert("QueueUrl".to_owned(), url.clone());
                (url, name)
            }
            "AWS::Logs::LogGroup" => {
                let name = explicit("LogGroupName")?.unwrap_or(generated);
                attributes.insert(
                    "Arn".to_owned(),
                    format!("arn:aws:logs:{region}:{account}:log-group:{name}:*"),
                );
                (name.clone(), name)
            }
            "AWS::Serverless::StateMachine" | "AWS::StepFunctions::StateMachine" => {
                let key = if kind == "AWS::Serverless::StateMachine" {
                    "Name"
                } else {
                    "StateMachineName"
                };
                let name = explicit(key)?.unwrap_or(generated);
                let arn = format!("arn:aws:states:{region}:{account}:stateMachine:{name}");
                attributes.insert("Name".to_owned(), name.clone());
                attributes.insert("Arn".to_owned(), arn.clone());
                (arn, name)
            }
            "AWS::SNS::Topic" => {
                let name = explicit("TopicName")?.unwrap_or(generated);
                let arn = format!("arn:aws:sns:{region}:{account}:{name}");
                attributes.insert("TopicName".to_owned(), name.clone());
                (arn, name)
            }
            _ => (id.to_owned(), id.to_owned()),
        };
        Ok(Resource {
            kind: kind.to_owned(),
            reference,
            name,
            attributes,
        })
    }

    fn resource(&self, id: &str) -> Option<&Resource> {
        self.resources.iter().find(|(i, _)| i == id).map(|(_, r)| r)
    }

    /// The resolved `Properties` of one resource.
    fn properties_of(&self, id: &str) -> Result<Value> {
        match self.raw.get(id).and_then(|body| body.get("Properties")) {
            Some(props) => self
                .eval(props)
                .with_context(|| format!("resolving {id}.Properties")),
            None => Ok(Value::Object(Map::new())),
        }
    }

    fn function(&self, id: &str, resource: &Resource, props: &Value) -> Result<FunctionSpec> {
        let raw = &self.raw[id];
        let binary = raw
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Yaml::as_str)
            .ok_or_else(|| anyhow!("function {id} has no Metadata.BuildProperties.Binary"))?
            .to_owned();
        let number = |key: &str, default: u64| -> Result<u64> {
            match props.get(key) {
                Some(value) => scalar(value)?
                    .parse()
                    .with_context(|| format!("{id}.{key} is not a number")),
                None => Ok(default),
            }
        };
        let mut environment = BTreeMap::new();
        if let Some(Value::Object(vars)) = props.pointer("/Environment/Variables") {
            for (key, value) in vars {
                environment.insert(key.clone(), scalar(value)?);
            }
        }
        let logging = props.get("LoggingConfig");
        let text_of = |key: &str| logging.and_then(|l| l.get(key)).map(scalar).transpose();
        Ok(FunctionSpec {
            logical_id: id.to_owned(),
            name: resource.name.clone(),
            arn: resource.attributes["Arn"].clone(),
            binary,
            timeout: Duration::from_secs(number("Timeout", 3)?),
            memory_mb: u32::try_from(number("MemorySize", 128)?)
                .with_context(|| format!("{id}.MemorySize is too large"))?,
            environment,
            log_format: text_of("LogFormat")?.unwrap_or_else(|| "Text".to_owned()),
            log_level: text_of("ApplicationLogLevel")?,
            log_group: text_of("LogGroup")?
                .unwrap_or_else(|| format!("/aws/lambda/{}", resource.name)),
        })
    }

    fn state_machine(
        &self,
        id: &str,
        resource: &Resource,
        props: &Value,
        base: &Path,
    ) -> Result<StateMachineSpec> {
        let mut definition = match (props.get("DefinitionUri"), props.get("Definition")) {
            (Some(Value::String(uri)), _) => {
                let path: PathBuf = base.join(uri);
                std::fs::read_to_string(&path)
                    .with_context(|| format!("{id}.DefinitionUri: reading {}", path.display()))?
            }
            (_, Some(definition)) => definition.to_string(),
            _ => bail!("state machine {id} has neither a DefinitionUri file nor a Definition"),
        };
        if let Some(Value::Object(substitutions)) = props.get("DefinitionSubstitutions") {
            for (key, value) in substitutions {
                definition = definition.replace(&format!("${{{key}}}"), &scalar(value)?);
            }
        }
        let Placement {
            stack_name,
            account,
            ..
        } = &self.placement;
        Ok(StateMachineSpec {
            logical_id: id.to_owned(),
            name: resource.name.clone(),
            arn: resource.reference.clone(),
            definition,
            kind: props
                .get("Type")
                .map(scalar)
                .transpose()?
                .unwrap_or_else(|| "STANDARD".to_owned()),
            role_arn: format!("arn:aws:iam::{account}:role/{stack_name}-{id}Role"),
        })
    }

    /// Evaluates a template value: intrinsics resolved, plain YAML as JSON.
    fn eval(&self, value: &Yaml) -> Result<Value> {
        match value {
            Yaml::Null => Ok(Value::Null),
            Yaml::Bool(b) => Ok(Value::Bool(*b)),
            Yaml::Number(n) => Ok(serde_json::to_value(n)?),
            Yaml::String(s) => Ok(Value::String(s.clone())),
            Yaml::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    // `Fn::If` with `AWS::NoValue` drops list items.
                    match self.eval(item)? {
                        Value::Null if is_no_value(item) => {}
                        v => out.push(v),
                    }
                }
                Ok(Value::Array(out))
            }
            Yaml::Mapping(map) => {
                if map.len() == 1
                    && let Some((key, arg)) = map.iter().next()
                    && let Some(name) = key.as_str()
                    && (name == "Ref" || name.starts_with("Fn::"))
                {
                    return self.intrinsic(name.trim_start_matches("Fn::"), arg);
                }
                let mut out = Map::new();
                for (key, item) in map {
                    if is_no_value(item) {
                        continue;
                    }
                    out.insert(key_str(key)?.to_owned(), self.eval(item)?);
                }
                Ok(Value::Object(out))
            }
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let name = tag.trim_start_matches('!');
                self.intrinsic(name, &tagged.value)
            }
        }
    }

    fn intrinsic(&self, name: &str, arg: &Yaml) -> Result<Value> {
        match name {
            "Ref" => self.reference(yaml_str(arg)?),
            "GetAtt" => {
                let (id, attribute) = match arg {
                    Yaml::Sequence(parts) if parts.len() == 2 => (
                        yaml_str(&parts[0])?.to_owned(),
                        yaml_str(&parts[1])?.to_owned(),
                    ),
                    _ => {
                        let text = yaml_str(arg)?;
                        let (id, attribute) = text.split_once('.').ok_or_else(|| {
                            anyhow!("Fn::GetAtt {text}: expected Resource.Attribute")
                        })?;
                        (id.to_owned(), attribute.to_owned())
                    }
                };
                Ok(Value::String(self.attribute(&id, &attribute)?))
            }
            "Sub" => {
                let (text, vars) = match arg {
                    Yaml::Sequence(parts) if parts.len() == 2 => {
                        let mut vars = HashMap::new();
                        if let Yaml::Mapping(map) = &parts[1] {
                            for (k, v) in map {
                                vars.insert(key_str(k)?.to_owned(), scalar(&self.eval(v)?)?);
                            }
                        }
                        (yaml_str(&parts[0])?, vars)
                    }
                    _ => (yaml_str(arg)?, HashMap::new()),
                };
                Ok(Value::String(self.substitute(text, &vars)?))
            }
            "Join" => {
                let parts = yaml_seq(arg, 2, "Fn::Join")?;
                let delimiter = yaml_str(&parts[0])?;
                let items = match self.eval(&parts[1])? {
                    Value::Array(items) => items,
                    other => bail!("Fn::Join: expected a list, got {other}"),
                };
                let items: Result<Vec<String>> = items.iter().map(scalar).collect();
                Ok(Value::String(items?.join(delimiter)))
            }
            "Split" => {
                let parts = yaml_seq(arg, 2, "Fn::Split")?;
                let delimiter = yaml_str(&parts[0])?;
                let text = scalar(&self.eval(&parts[1])?)?;
                Ok(Value::Array(
                    text.split(delimiter)
                        .map(|s| Value::String(s.to_owned()))
                        .collect(),
                ))
            }
            "Select" => {
                let parts = yaml_seq(arg, 2, "Fn::Select")?;
                let index: usize = scalar(&self.eval(&parts[0])?)?.parse()?;
                match self.eval(&parts[1])? {
                    Value::Array(items) => items
                        .get(index)
                        .cloned()
                        .ok_or_else(|| anyhow!("Fn::Select: index {index} out of range")),
                    other => bail!("Fn::Select: expected a list, got {other}"),
                }
            }
            "If" => {
                let parts = yaml_seq(arg, 3, "Fn::If")?;
                if self.condition(yaml_str(&parts[0])?)? {
                    self.eval(&parts[1])
                } else {
                    self.eval(&parts[2])
                }
            }
            "Equals" | "Not" | "And" | "Or" | "Condition" => {
                Ok(Value::Bool(self.truth(name, arg)?))
            }
            other => bail!("intrinsic {other} is not supported by the local stack"),
        }
    }

    fn condition(&self, name: &str) -> Result<bool> {
        let body = self
            .conditions
            .get(name)
            .ok_or_else(|| anyhow!("unknown condition {name}"))?;
        match self.eval(body)? {
            Value::Bool(b) => Ok(b),
            other => bail!("condition {name} is not a boolean: {other}"),
        }
    }

    fn truth(&self, name: &str, arg: &Yaml) -> Result<bool> {
        let as_bool = |v: &Yaml| -> Result<bool> {
            match self.eval(v)? {
                Value::Bool(b) => Ok(b),
                other => bail!("Fn::{name}: expected a condition, got {other}"),
            }
        };
        match name {
            "Equals" => {
                let parts = yaml_seq(arg, 2, "Fn::Equals")?;
                Ok(self.eval(&parts[0])? == self.eval(&parts[1])?)
            }
            "Not" => Ok(!as_bool(&yaml_seq(arg, 1, "Fn::Not")?[0])?),
            "And" => yaml_items(arg)?
                .iter()
                .try_fold(true, |acc, v| Ok(acc && as_bool(v)?)),
            "Or" => yaml_items(arg)?
                .iter()
                .try_fold(false, |acc, v| Ok(acc || as_bool(v)?)),
            _ => self.condition(yaml_str(arg)?),
        }
    }

    fn reference(&self, name: &str) -> Result<Value> {
        if let Some(value) = self.pseudo(name) {
            return Ok(Value::String(value));
        }
        if name == "AWS::NoValue" {
            return Ok(Value::Null);
        }
        if let Some(value) = self.parameters.get(name) {
            return Ok(value.clone());
        }
        self.resource(name)
            .map(|r| Value::String(r.reference.clone()))
            .ok_or_else(|| anyhow!("Ref {name}: no such parameter or resource"))
    }

    fn attribute(&self, id: &str, attribute: &str) -> Result<String> {
        let resource = self
            .resource(id)
            .ok_or_else(|| anyhow!("Fn::GetAtt {id}.{attribute}: no such resource"))?;
        resource.attributes.get(attribute).cloned().ok_or_else(|| {
            anyhow!(
                "Fn::GetAtt {id}.{attribute}: not available locally for {}",
                resource.kind
            )
        })
    }

    fn pseudo(&self, name: &str) -> Option<String> {
        let p = &self.placement;
        Some(match name {
            "AWS::StackName" => p.stack_name.clone(),
            "AWS::Region" => p.region.clone(),
            "AWS::AccountId" => p.account.clone(),
            "AWS::Partition" => "aws".to_owned(),
            "AWS::URLSuffix" => "amazonaws.com".to_owned(),
            "AWS::StackId" => format!(
                "arn:aws:cloudformation:{}:{}:stack/{}/local",
                p.region, p.account, p.stack_name
            ),
            _ => return None,
        })
    }

    /// `Fn::Sub`: `${Name}`, `${Resource.Attribute}`, `${!Literal}`.
    fn substitute(&self, text: &str, vars: &HashMap<String, String>) -> Result<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| anyhow!("Fn::Sub {text:?}: unclosed ${{"))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = vars.get(name) {
                out.push_str(value);
            } else if let Some((id, attribute)) = name.split_once('.')
                && !name.starts_with("AWS::")
            {
                out.push_str(&self.attribute(id, attribute)?);
            } else {
                out.push_str(&scalar(&self.reference(name)?)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// SAM's Globals: the function's own keys win; maps (Environment.Variables,
/// LoggingConfig, Tags) are merged key by key.
fn merge_globals(function: &mut Yaml, globals: &Yaml) {
    let Some(props) = function.get_mut("Properties") else {
        return;
    };
    merge_into(props, globals);
}

fn merge_into(target: &mut Yaml, defaults: &Yaml) {
    let (Yaml::Mapping(target), Yaml::Mapping(defaults)) = (target, defaults) else {
        return;
    };
    for (key, default) in defaults {
        match target.get_mut(key) {
            Some(existing) => {
                if matches!(existing, Yaml::Mapping(_)) && matches!(default, Yaml::Mapping(_)) {
                    merge_into(existing, default);
                }
            }
            None => {
                target.insert(key.clone(), default.clone());
            }
        }
    }
}

fn is_no_value(value: &Yaml) -> bool {
    match value {
        Yaml::Tagged(t) => t.tag == "Ref" && t.value.as_str() == Some("AWS::NoValue"),
        Yaml::Mapping(m) => {
            m.len() == 1 && m.get("Ref").and_then(Yaml::as_str) == Some("AWS::NoValue")
        }
        _ => false,
    }
}

fn key_str(key: &Yaml) -> Result<&str> {
    key.as_str()
        .ok_or_else(|| anyhow!("expected a string key, got {key:?}"))
}

fn yaml_str(value: &Yaml) -> Result<&str> {
    value
        .as_str()
        .ok_or_else(|| anyhow!("expected a string, got {value:?}"))
}

fn yaml_items(value: &Yaml) -> Result<&[Yaml]> {
    match value {
        Yaml::Sequence(items) => Ok(items),
        other => bail!("expected a list, got {other:?}"),
    }
}

fn yaml_seq<'a>(value: &'a Yaml, len: usize, what: &str) -> Result<&'a [Yaml]> {
    let items = yaml_items(value)?;
    if items.len() != len {
        bail!("{what}: expected {len} arguments, got {}", items.len());
    }
    Ok(items)
}

fn yaml_scalar(value: &Yaml) -> Result<String> {
    match value {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Bool(b) => Ok(b.to_string()),
        Yaml::Number(n) => Ok(n.to_string()),
        other => bail!("expected a scalar, got {other:?}"),
    }
}

/// A resolved value as CloudFormation passes it on: strings as they are,
/// numbers and booleans as text.
fn scalar(value: &Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => bail!("expected a string, number or boolean, got {other}"),
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
        assert_eq!(invoice.log_format, "JSON");
        assert_eq!(invoice.log_level.as_deref(), Some("INFO"));
        assert_eq!(invoice.log_group, "/aws/lambda/demo-invoice");
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
    fn state_machine_definitions_get_their_substitutions() {
        let spec = load(&[("ApprovalThreshold", "250")]);
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
        assert!(invoice.definition.contains("States.StringToJson('250')"));
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
    fn sub_handles_literals_attributes_and_variables() {
        let template: Yaml =
            serde_norway::from_str("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n")
                .unwrap_or(Yaml::Null);
        let resolver = match Resolver::new(&template, placement(), &BTreeMap::new()) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let vars = HashMap::from([("X".to_owned(), "x".to_owned())]);
        let out = resolver.substitute("${!Keep}-${X}-${Q.Arn}-${AWS::Region}", &vars);
        assert_eq!(
            out.ok().as_deref(),
            Some("${Keep}-x-arn:aws:sqs:eu-west-1:123456789012:demo-Q-eu-west-1")
        );
        assert_eq!(function_name_from("name:prod"), "name");
        assert_eq!(function_name_from("123456789012:function:name"), "name");
    }
}
