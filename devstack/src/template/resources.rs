//! The specs the local stack runs, built from a resource's resolved
//! properties: functions, state machines, queues.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use serde_norway::Value as Yaml;

use super::resolver::{Resolver, Resource};
use super::yaml::scalar;
use super::{FunctionSpec, LoggingConfig, Placement, StateMachineSpec};
use crate::log_levels::{Level, LogFormat};

impl Resolver {
    pub(super) fn function(
        &self,
        id: &str,
        resource: &Resource,
        props: &Value,
    ) -> Result<FunctionSpec> {
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
        let text_of = |value: Option<&Value>| value.map(scalar).transpose();
        let logging = logging_config(id, props.get("LoggingConfig"), &resource.name)?;
        let architectures = match props.get("Architectures") {
            Some(Value::Array(items)) => items.iter().map(scalar).collect::<Result<_>>()?,
            _ => vec!["x86_64".to_owned()],
        };
        let tracing = match text_of(props.get("Tracing"))?.as_deref() {
            Some("Active") => "Active",
            _ => "PassThrough",
        };
        Ok(FunctionSpec {
            logical_id: id.to_owned(),
            name: resource.name.clone(),
            arn: resource.attributes["Arn"].clone(),
            binary,
            timeout: Duration::from_secs(number("Timeout", 3)?),
            memory_mb: u32::try_from(number("MemorySize", 128)?)
                .with_context(|| format!("{id}.MemorySize is too large"))?,
            environment,
            logging,
            runtime: text_of(props.get("Runtime"))?.unwrap_or_default(),
            handler: text_of(props.get("Handler"))?.unwrap_or_default(),
            architectures,
            description: text_of(props.get("Description"))?.unwrap_or_default(),
            tracing: tracing.to_owned(),
            ephemeral_storage_mb: match props.pointer("/EphemeralStorage/Size") {
                Some(size) => scalar(size)?
                    .parse()
                    .with_context(|| format!("{id}.EphemeralStorage.Size is not a number"))?,
                None => 512,
            },
            role_arn: match props.get("Role") {
                Some(role) => scalar(role)?,
                None => format!(
                    "arn:aws:iam::{}:role/{}-{id}Role",
                    self.placement.account, self.placement.stack_name
                ),
            },
        })
    }

    pub(super) fn state_machine(
        &self,
        id: &str,
        resource: &Resource,
        props: &Value,
        base: &Path,
    ) -> Result<StateMachineSpec> {
        let mut definition = match (props.get("DefinitionUri"), props.get("Definition")) {
            (Some(Value::String(uri)), _) => {
                read_definition(&base.join(uri)).with_context(|| format!("{id}.DefinitionUri"))?
            }
            (_, Some(definition)) => definition.to_string(),
            _ => bail!("state machine {id} has neither a DefinitionUri file nor a Definition"),
        };
        let mut substitutions = BTreeMap::new();
        if let Some(Value::Object(given)) = props.get("DefinitionSubstitutions") {
            for (key, value) in given {
                substitutions.insert(key.clone(), scalar(value)?);
            }
        }
        definition = substitute(&definition, &substitutions);
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
            substitutions,
            kind: props
                .get("Type")
                .map(scalar)
                .transpose()?
                .unwrap_or_else(|| "STANDARD".to_owned()),
            role_arn: format!("arn:aws:iam::{account}:role/{stack_name}-{id}Role"),
        })
    }
}

pub(super) fn queue_attributes(props: &Value) -> Result<BTreeMap<String, String>> {
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

/// Lambda's rules for `LoggingConfig`: levels only with the JSON format
/// (Lambda refuses them with Text), both INFO unless set.
fn logging_config(id: &str, config: Option<&Value>, name: &str) -> Result<LoggingConfig> {
    let text = |key: &str| config.and_then(|c| c.get(key)).map(scalar).transpose();
    let format = match text("LogFormat")? {
        Some(format) => LogFormat::parse(&format).with_context(|| format!("{id}.LoggingConfig"))?,
        None => LogFormat::Text,
    };
    let level = |key: &str, allowed: &[Level]| -> Result<Option<Level>> {
        let Some(given) = text(key)? else {
            return Ok((format == LogFormat::Json).then_some(Level::Info));
        };
        if format != LogFormat::Json {
            bail!("{id}.LoggingConfig.{key}: Lambda accepts log levels only with LogFormat JSON");
        }
        match Level::parse(&given) {
            Some(level) if allowed.contains(&level) => Ok(Some(level)),
            _ => bail!("{id}.LoggingConfig.{key}: {given:?} is not one of {allowed:?}"),
        }
    };
    use Level::{Debug, Error, Fatal, Info, Trace, Warn};
    Ok(LoggingConfig {
        format,
        application_level: level(
            "ApplicationLogLevel",
            &[Trace, Debug, Info, Warn, Error, Fatal],
        )?,
        system_level: level("SystemLogLevel", &[Debug, Info, Warn])?,
        group: text("LogGroup")?.unwrap_or_else(|| format!("/aws/lambda/{name}")),
    })
}

/// `DefinitionSubstitutions` applied: every `${Name}` replaced.
pub(super) fn substitute(definition: &str, substitutions: &BTreeMap<String, String>) -> String {
    let mut out = definition.to_owned();
    for (key, value) in substitutions {
        out = out.replace(&format!("${{{key}}}"), value);
    }
    out
}

/// A `DefinitionUri` file as JSON text: `.json`, or YAML (`.yaml`, `.yml`),
/// which SAM accepts too.
pub(super) fn read_definition(path: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    if !yaml {
        return Ok(text);
    }
    let definition: Value = serde_norway::from_str(&text)
        .with_context(|| format!("parsing {} as YAML", path.display()))?;
    Ok(definition.to_string())
}
