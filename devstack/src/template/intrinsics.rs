//! CloudFormation's intrinsics as the template uses them: `Ref`,
//! `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`, `Fn::Split`, `Fn::Select`, `Fn::If`
//! and the condition functions, resolved to local names and ARNs.

use std::collections::HashMap;

use anyhow::{Result, anyhow, bail};
use serde_json::{Map, Value};
use serde_norway::Value as Yaml;

use super::resolver::Resolver;
use super::yaml::{is_no_value, key_str, scalar, yaml_items, yaml_seq, yaml_str};

impl Resolver {
    /// Evaluates a template value: intrinsics resolved, plain YAML as JSON.
    pub(super) fn eval(&self, value: &Yaml) -> Result<Value> {
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

    pub(super) fn attribute(&self, id: &str, attribute: &str) -> Result<String> {
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
    pub(super) fn substitute(&self, text: &str, vars: &HashMap<String, String>) -> Result<String> {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::template::Placement;

    #[test]
    fn sub_handles_literals_attributes_and_variables() {
        let template: Yaml =
            serde_norway::from_str("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n")
                .unwrap_or(Yaml::Null);
        let placement = Placement {
            stack_name: "demo".to_owned(),
            region: "eu-west-1".to_owned(),
            account: "123456789012".to_owned(),
            endpoint: "http://127.0.0.1:4566".to_owned(),
        };
        let resolver = match Resolver::new(&template, placement, &BTreeMap::new()) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let vars = HashMap::from([("X".to_owned(), "x".to_owned())]);
        let out = resolver.substitute("${!Keep}-${X}-${Q.Arn}-${AWS::Region}", &vars);
        assert_eq!(
            out.ok().as_deref(),
            Some("${Keep}-x-arn:aws:sqs:eu-west-1:123456789012:demo-Q-eu-west-1")
        );
    }
}
