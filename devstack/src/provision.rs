//! Creates the template's buckets, queues, log groups and state machines in
//! the emulated services. Every step is idempotent, so provisioning an
//! already provisioned stack changes nothing but state machine definitions.

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use aws_sdk_sfn::types::StateMachineType;
use aws_sdk_sqs::types::QueueAttributeName;

use crate::logs::Shipper;
use crate::template::StackSpec;

/// Creates everything `spec` declares that the local stack emulates.
pub async fn provision(aws: &SdkConfig, spec: &StackSpec, shipper: &Shipper) -> Result<()> {
    let s3 = crate::clients::s3(aws);
    for bucket in &spec.buckets {
        create_bucket(&s3, &bucket.name, spec.placement.region.as_str()).await?;
        if bucket.versioned {
            s3.put_bucket_versioning()
                .bucket(&bucket.name)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .with_context(|| format!("enabling versioning on {}", bucket.name))?;
        }
    }

    let sqs = aws_sdk_sqs::Client::new(aws);
    for queue in &spec.queues {
        let mut create = sqs.create_queue().queue_name(&queue.name);
        for (key, value) in &queue.attributes {
            create = create.attributes(QueueAttributeName::from(key.as_str()), value);
        }
        create
            .send()
            .await
            .with_context(|| format!("creating queue {}", queue.name))?;
    }

    for group in &spec.log_groups {
        shipper.ensure_group(group).await?;
    }

    let sfn = aws_sdk_sfn::Client::new(aws);
    for machine in &spec.state_machines {
        let created = sfn
            .create_state_machine()
            .name(&machine.name)
            .definition(&machine.definition)
            .role_arn(&machine.role_arn)
            .r#type(StateMachineType::from(machine.kind.as_str()))
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_state_machine_already_exists()) =>
            {
                sfn.update_state_machine()
                    .state_machine_arn(&machine.arn)
                    .definition(&machine.definition)
                    .send()
                    .await
                    .with_context(|| format!("updating state machine {}", machine.name))?;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("creating state machine {}", machine.name)));
            }
        }
    }
    Ok(())
}

/// Creates a bucket unless this account already owns it.
pub async fn create_bucket(s3: &aws_sdk_s3::Client, name: &str, region: &str) -> Result<()> {
    let mut create = s3.create_bucket().bucket(name);
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                .build(),
        );
    }
    match create.send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
        {
            Ok(())
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("creating bucket {name}"))),
    }
}
