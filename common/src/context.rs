//! What a handler knows about the invocation it serves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;

use crate::aws::LazyConfig;

use crate::correlation::CorrelationId;
use crate::envelope::StepContext;

/// Handed to every handler call: the correlation ID (for S3 metadata, SQS
/// attributes and anything else leaving the task), the Step Functions
/// context, the time budget and the shared AWS configuration.
#[derive(Debug, Clone)]
pub struct TaskContext {
    correlation_id: CorrelationId,
    step: StepContext,
    request_id: String,
    function_arn: String,
    guard_at: Instant,
    aws: Arc<LazyConfig>,
}

impl TaskContext {
    pub(crate) fn new(
        correlation_id: CorrelationId,
        step: StepContext,
        lambda: &lambda_runtime::Context,
        guard_at: Instant,
        aws: Arc<LazyConfig>,
    ) -> Self {
        Self {
            correlation_id,
            step,
            request_id: lambda.request_id.clone(),
            function_arn: lambda.invoked_function_arn.clone(),
            guard_at,
            aws,
        }
    }

    /// A context for calling a handler directly, in unit tests or scripts:
    /// `budget` is the time until the deadline guard would fire.
    pub fn standalone(correlation_id: CorrelationId, budget: Duration, aws: SdkConfig) -> Self {
        Self {
            correlation_id,
            step: StepContext::default(),
            request_id: "standalone".to_owned(),
            function_arn: String::new(),
            guard_at: Instant::now() + budget,
            aws: Arc::new(LazyConfig::loaded(aws)),
        }
    }

    /// Sets the Step Functions context (for tests of envelope-driven code).
    #[must_use]
    pub fn with_step(mut self, step: StepContext) -> Self {
        self.step = step;
        self
    }

    /// The invocation's correlation ID.
    pub fn correlation_id(&self) -> &str {
        self.correlation_id.as_str()
    }

    /// `$$.Execution.Id`, when the envelope carried it.
    pub fn execution_id(&self) -> Option<&str> {
        self.step.execution_id.as_deref()
    }

    /// `$$.State.Name`, when the envelope carried it.
    pub fn state_name(&self) -> Option<&str> {
        self.step.state_name.as_deref()
    }

    /// `$$.State.RetryCount`; 0 on a first attempt or a bare input.
    pub fn retry_count(&self) -> u32 {
        self.step.retry_count
    }

    /// `$$.Task.Token`, for `.waitForTaskToken` states.
    pub fn task_token(&self) -> Option<&str> {
        self.step.task_token.as_deref()
    }

    /// The Lambda request ID.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The invoked function's ARN.
    pub fn function_arn(&self) -> &str {
        &self.function_arn
    }

    /// When the deadline guard fires and the handler's future is dropped.
    /// Long-running work should stop starting new steps well before this.
    pub fn guard_deadline(&self) -> Instant {
        self.guard_at
    }

    /// Time left until the deadline guard fires.
    pub fn remaining(&self) -> Duration {
        self.guard_at.saturating_duration_since(Instant::now())
    }

    /// The process's AWS configuration, loaded by the first call in the
    /// process (then shared): build clients once, at cold start, where you
    /// can; this is for handlers that only sometimes need one.
    pub async fn aws(&self) -> &SdkConfig {
        self.aws.get().await
    }
}
