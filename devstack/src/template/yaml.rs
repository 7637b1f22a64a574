//! Reading YAML values of a template, and SAM's Globals merge.

use anyhow::{Result, anyhow, bail};
use serde_json::Value;
use serde_norway::Value as Yaml;

/// SAM's Globals: the function's own keys win; maps (Environment.Variables,
/// LoggingConfig, Tags) are merged key by key.
pub(super) fn merge_globals(function: &mut Yaml, globals: &Yaml) {
    let Some(props) = function.get_mut("Properties") else {
        return;
    };
    merge_into(props, globals);
}

pub(super) fn merge_into(target: &mut Yaml, defaults: &Yaml) {
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

pub(super) fn is_no_value(value: &Yaml) -> bool {
    match value {
        Yaml::Tagged(t) => t.tag == "Ref" && t.value.as_str() == Some("AWS::NoValue"),
        Yaml::Mapping(m) => {
            m.len() == 1 && m.get("Ref").and_then(Yaml::as_str) == Some("AWS::NoValue")
        }
        _ => false,
    }
}

pub(super) fn key_str(key: &Yaml) -> Result<&str> {
    key.as_str()
        .ok_or_else(|| anyhow!("expected a string key, got {key:?}"))
}

pub(super) fn yaml_str(value: &Yaml) -> Result<&str> {
    value
        .as_str()
        .ok_or_else(|| anyhow!("expected a string, got {value:?}"))
}

pub(super) fn yaml_items(value: &Yaml) -> Result<&[Yaml]> {
    match value {
        Yaml::Sequence(items) => Ok(items),
        other => bail!("expected a list, got {other:?}"),
    }
}

pub(super) fn yaml_seq<'a>(value: &'a Yaml, len: usize, what: &str) -> Result<&'a [Yaml]> {
    let items = yaml_items(value)?;
    if items.len() != len {
        bail!("{what}: expected {len} arguments, got {}", items.len());
    }
    Ok(items)
}

pub(super) fn yaml_scalar(value: &Yaml) -> Result<String> {
    match value {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Bool(b) => Ok(b.to_string()),
        Yaml::Number(n) => Ok(n.to_string()),
        other => bail!("expected a scalar, got {other:?}"),
    }
}

/// A resolved value as CloudFormation passes it on: strings as they are,
/// numbers and booleans as text.
pub(super) fn scalar(value: &Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => bail!("expected a string, number or boolean, got {other}"),
    }
}
