//! A local stack for a SAM template: its state machines run in moto's Step
//! Functions engine against the real task binaries, behind one local
//! endpoint that serves the Lambda Invoke API and passes every other AWS
//! request to the moto server (S3, SQS, Step Functions, CloudWatch Logs).
//!
//! No Docker and no AWS account: [`stack::Stack::start`] starts moto and the
//! endpoint on 127.0.0.1 and provisions what [`template`] reads from the
//! template; [`functions`] runs each function as Lambda would (Runtime API,
//! warm reuse, timeouts); [`logs`] ships their output to CloudWatch Logs.

pub mod clients;
pub mod console;
pub mod faults;
pub mod functions;
pub mod gateway;
pub mod insights;
pub mod lambda_api;
pub mod log_levels;
pub mod logs;
pub mod moto;
pub mod process_memory;
pub mod provision;
pub mod queue;
pub mod runtime_api;
pub mod stack;
pub mod template;
pub mod trail;
pub mod workflow;
