//! Names every resource as CloudFormation would (deterministically here:
//! `<stack>-<LogicalId>`) and reads parameters, conditions and Globals: what
//! the intrinsics and the resource specs are resolved against.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};
use serde_norway::Value as Yaml;

use super::Placement;
use super::yaml::{key_str, merge_globals, scalar, yaml_scalar};

/// One resource: its type and the names other resources see.
#[derive(Debug, Clone)]
pub(super) struct Resource {
    pub(super) kind: String,
    /// What `Ref` gives.
    pub(super) reference: String,
    /// The physical name.
    pub(super) name: String,
    /// `Fn::GetAtt` attributes.
    pub(super) attributes: HashMap<String, String>,
}

/// Resolves intrinsics against parameters, conditions and the local names of
/// every resource.
#[derive(Debug)]
pub(super) struct Resolver {
    pub(super) placement: Placement,
    pub(super) parameters: HashMap<String, Value>,
    pub(super) conditions: HashMap<String, Yaml>,
    /// Logical ID → resource, in template order.
    pub(super) resources: Vec<(String, Resource)>,
    /// Logical ID → its raw definition, with Globals merged for functions.
    pub(super) raw: HashMap<String, Yaml>,
}

impl Resolver {
    pub(super) fn new(
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

    pub(super) fn resource(&self, id: &str) -> Option<&Resource> {
        self.resources.iter().find(|(i, _)| i == id).map(|(_, r)| r)
    }

    /// The resolved `Properties` of one resource.
    pub(super) fn properties_of(&self, id: &str) -> Result<Value> {
        match self.raw.get(id).and_then(|body| body.get("Properties")) {
            Some(props) => self
                .eval(props)
                .with_context(|| format!("resolving {id}.Properties")),
            None => Ok(Value::Object(Map::new())),
        }
    }
}
