//! Reading the notification queue as its consumers would: everything on it,
//! or, as an approval portal, the one approval request of a correlation ID,
//! answered to the waiting workflow with its task token.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use serde_json::Value;

/// A received message: its body as JSON and its message attributes.
#[derive(Debug, Clone)]
pub struct Received {
    /// The message body.
    pub body: Value,
    /// String message attributes (name → value).
    pub attributes: std::collections::BTreeMap<String, String>,
    /// The FIFO deduplication ID, if any.
    pub dedup_id: Option<String>,
    /// The receipt handle of this receive.
    pub receipt: Option<String>,
}

fn reduce(message: &Message) -> Received {
    Received {
        body: message
            .body()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null),
        attributes: message
            .message_attributes()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.string_value().map(|s| (k.clone(), s.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
        dedup_id: message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::MessageDeduplicationId))
            .cloned(),
        receipt: message.receipt_handle().map(str::to_owned),
    }
}

async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, visibility: i32) -> Result<Vec<Received>> {
    let answer = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(visibility)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .with_context(|| format!("receiving from {url}"))?;
    Ok(answer.messages().iter().map(reduce).collect())
}

/// Every message on the queue, leaving them there: each is received once
/// (hidden for `hide`), then all are made visible again.
pub async fn peek_all(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    hide: Duration,
) -> Result<Vec<Received>> {
    let visibility = i32::try_from(hide.as_secs()).unwrap_or(i32::MAX).max(1);
    let mut all = Vec::new();
    loop {
        let batch = receive(sqs, url, visibility).await?;
        if batch.is_empty() {
            break;
        }
        all.extend(batch);
    }
    release(sqs, url, &all).await?;
    Ok(all)
}

async fn release(sqs: &aws_sdk_sqs::Client, url: &str, messages: &[Received]) -> Result<()> {
    for receipt in messages.iter().filter_map(|m| m.receipt.as_deref()) {
        sqs.change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .with_context(|| format!("releasing a message on {url}"))?;
    }
    Ok(())
}

/// Removes the first message matching `wanted` from the queue and returns
/// it; every other message is left there.
pub async fn take(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    wanted: impl Fn(&Received) -> bool,
) -> Result<Option<Received>> {
    let mut seen = Vec::new();
    loop {
        let batch = receive(sqs, url, 30).await?;
        if batch.is_empty() {
            break;
        }
        seen.extend(batch);
    }
    let found = seen.iter().position(&wanted).map(|i| seen.remove(i));
    if let Some(receipt) = found.as_ref().and_then(|m| m.receipt.as_deref()) {
        sqs.delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .with_context(|| format!("deleting a message from {url}"))?;
    }
    release(sqs, url, &seen).await?;
    Ok(found)
}

/// Waits (at most `limit`) for the `approval_requested` message of
/// `correlation_id`, takes it off the queue and answers its workflow with
/// `answer` through `SendTaskSuccess`, as an approval portal would.
pub async fn answer_approval(
    sqs: &aws_sdk_sqs::Client,
    sfn: &aws_sdk_sfn::Client,
    url: &str,
    correlation_id: &str,
    answer: &Value,
    limit: Duration,
) -> Result<Received> {
    let message = await_approval(sqs, url, correlation_id, limit).await?;
    sfn.send_task_success()
        .task_token(task_token(&message)?)
        .output(answer.to_string())
        .send()
        .await
        .context("answering the approval with SendTaskSuccess")?;
    Ok(message)
}

/// Takes the approval request of `correlation_id` off the queue at `url`,
/// waiting at most `limit` for it, as a portal does before answering.
pub async fn await_approval(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    correlation_id: &str,
    limit: Duration,
) -> Result<Received> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let mine = take(sqs, url, |m| {
            m.body["kind"] == "approval_requested" && m.body["correlation_id"] == correlation_id
        })
        .await?;
        if let Some(message) = mine {
            return Ok(message);
        }
        if started.elapsed() > limit {
            bail!("no approval request for {correlation_id} arrived within {limit:?}");
        }
        // Polling the queue, as a portal does.
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// A consumer that owns the queue, as a portal or a mailer does: every
/// message is received once, deleted, and kept here. (Receiving a message
/// without consuming it counts towards the queue's `maxReceiveCount`: a
/// reader that keeps peeking sends messages to the dead-letter queue.)
#[derive(Debug)]
pub struct Inbox {
    sqs: aws_sdk_sqs::Client,
    url: String,
    messages: Vec<Received>,
}

impl Inbox {
    /// An inbox for the queue at `url`.
    pub fn new(sqs: aws_sdk_sqs::Client, url: &str) -> Self {
        Self {
            sqs,
            url: url.to_owned(),
            messages: Vec::new(),
        }
    }

    /// Takes everything now on the queue into the inbox.
    pub async fn drain(&mut self) -> Result<()> {
        loop {
            let batch = receive(&self.sqs, &self.url, 30).await?;
            if batch.is_empty() {
                return Ok(());
            }
            for message in batch {
                if let Some(receipt) = message.receipt.as_deref() {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.url)
                        .receipt_handle(receipt)
                        .send()
                        .await
                        .with_context(|| format!("deleting a message from {}", self.url))?;
                }
                self.messages.push(message);
            }
        }
    }

    /// The first message `wanted` matches, waiting at most `limit` for it.
    pub async fn wait_for(
        &mut self,
        wanted: impl Fn(&Received) -> bool,
        limit: Duration,
    ) -> Result<Received> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            if let Some(found) = self.messages.iter().find(|m| wanted(m)) {
                return Ok(found.clone());
            }
            if started.elapsed() > limit {
                bail!("no such message arrived within {limit:?}");
            }
            // Polling the queue, as a consumer does.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
            self.drain().await?;
        }
    }

    /// The approval request of `correlation_id`, waiting at most `limit`.
    pub async fn approval(&mut self, correlation_id: &str, limit: Duration) -> Result<Received> {
        self.wait_for(
            |m| {
                m.body["kind"] == "approval_requested" && m.body["correlation_id"] == correlation_id
            },
            limit,
        )
        .await
        .with_context(|| format!("the approval request of {correlation_id}"))
    }

    /// Every message taken so far, oldest first.
    pub fn messages(&self) -> &[Received] {
        &self.messages
    }
}

/// The task token an approval request carries.
pub fn task_token(request: &Received) -> Result<&str> {
    request.body["task_token"]
        .as_str()
        .context("the approval request has no task_token")
}
