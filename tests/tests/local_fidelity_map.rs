//! The rows of `docs/local-fidelity.md` about Distributed Map states: the S3
//! prefix `ItemReader` and `ItemBatcher`, on the local stack (as AWS runs
//! them) and on moto as released (as the table says it does).

use serde_json::{Value, json};
use tests::fidelity::{Case, Expect, Outcome, check, jsonata, jsonpath, run};
use tests::local_stack::{Builder, LocalStack};

/// A Distributed Map over `$.items` (`Items` in JSONata) whose children
/// return their input, with `extra` fields.
fn distributed(language: &str, extra: Value) -> Value {
    let mut state = json!({
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Child",
            "States": {"Child": {"Type": "Pass", "End": true}}
        },
        "End": true
    });
    if language == "JSONata" {
        state["Items"] = json!("{% $states.input.items %}");
    } else {
        state["ItemsPath"] = json!("$.items");
    }
    if let (Some(state), Some(extra)) = (state.as_object_mut(), extra.as_object()) {
        state.extend(extra.clone());
    }
    if language == "JSONata" {
        jsonata(json!({"M": state}), "M")
    } else {
        jsonpath(json!({"M": state}), "M")
    }
}

/// What moto as released does with any `ItemBatcher`: its parser has no
/// such field.
const MOTO_REFUSES: Expect = Expect::NotCreated("ItemBatcher");

fn letters() -> Value {
    json!({"items": ["a", "b", "c", "d", "e"], "who": "ops", "n": 2})
}

#[tokio::test]
async fn item_batcher_batches_as_on_aws() {
    check(vec![
        Case {
            name: "MaxItemsPerBatch, BatchInput with paths, ItemSelector before batching",
            definition: distributed(
                "JSONPath",
                json!({
                    "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
                    "ItemBatcher": {
                        "MaxItemsPerBatch": 2,
                        "BatchInput": {"who.$": "$.who", "fixed": [1, {"deep": true}]}
                    }
                }),
            ),
            input: letters(),
            aws: Expect::Output(json!([
                {"BatchInput": {"who": "ops", "fixed": [1, {"deep": true}]},
                 "Items": [{"v": "a", "i": 0}, {"v": "b", "i": 1}]},
                {"BatchInput": {"who": "ops", "fixed": [1, {"deep": true}]},
                 "Items": [{"v": "c", "i": 2}, {"v": "d", "i": 3}]},
                {"BatchInput": {"who": "ops", "fixed": [1, {"deep": true}]},
                 "Items": [{"v": "e", "i": 4}]}
            ])),
            moto: MOTO_REFUSES,
        },
        Case {
            name: "MaxItemsPerBatchPath reads the state input, BatchInput a variable",
            definition: jsonpath(
                json!({
                    "Remember": {"Type": "Pass", "Assign": {"run": {"id": 7}}, "Next": "M"},
                    "M": distributed(
                        "JSONPath",
                        json!({"ItemBatcher": {
                            "MaxItemsPerBatchPath": "$.n",
                            "BatchInput": {"run.$": "$run.id"}
                        }}),
                    )["States"]["M"]
                }),
                "Remember",
            ),
            input: letters(),
            aws: Expect::Output(json!([
                {"BatchInput": {"run": 7}, "Items": ["a", "b"]},
                {"BatchInput": {"run": 7}, "Items": ["c", "d"]},
                {"BatchInput": {"run": 7}, "Items": ["e"]}
            ])),
            moto: MOTO_REFUSES,
        },
        Case {
            name: "JSONata: MaxItemsPerBatch and BatchInput as expressions",
            definition: distributed(
                "JSONata",
                json!({"ItemBatcher": {
                    "MaxItemsPerBatch": "{% $states.input.n + 1 %}",
                    "BatchInput": {"who": "{% $uppercase($states.input.who) %}"}
                }}),
            ),
            input: letters(),
            aws: Expect::Output(json!([
                {"BatchInput": {"who": "OPS"}, "Items": ["a", "b", "c"]},
                {"BatchInput": {"who": "OPS"}, "Items": ["d", "e"]}
            ])),
            moto: MOTO_REFUSES,
        },
        Case {
            // {"Items":[]} is 12 bytes, each "x" item 3 and a comma 1: 12 +
            // 3 + 1 + 3 = 19 holds two, a third would make 23.
            name: "MaxInputBytesPerBatch counts the batch's JSON",
            definition: distributed(
                "JSONPath",
                json!({"ItemBatcher": {"MaxInputBytesPerBatch": 22}}),
            ),
            input: json!({"items": ["a", "b", "c", "d", "e"]}),
            aws: Expect::Output(json!([
                {"Items": ["a", "b"]}, {"Items": ["c", "d"]}, {"Items": ["e"]}
            ])),
            moto: MOTO_REFUSES,
        },
        Case {
            name: "without limits, one batch up to 256 KiB",
            definition: distributed("JSONPath", json!({"ItemBatcher": {}})),
            input: letters(),
            aws: Expect::Output(json!([{"Items": ["a", "b", "c", "d", "e"]}])),
            moto: MOTO_REFUSES,
        },
        Case {
            name: "a count that is not a positive integer fails the execution",
            definition: distributed(
                "JSONPath",
                json!({"ItemBatcher": {"MaxItemsPerBatchPath": "$.who"}}),
            ),
            input: letters(),
            aws: Expect::Failed(
                "States.Runtime",
                "MaxItemsPerBatch must be a positive integer",
            ),
            moto: MOTO_REFUSES,
        },
        Case {
            name: "an item larger than MaxInputBytesPerBatch fails the execution",
            definition: distributed(
                "JSONPath",
                json!({"ItemBatcher": {"MaxInputBytesPerBatch": 16}}),
            ),
            input: json!({"items": ["a", "a longer item"]}),
            aws: Expect::Failed("States.Runtime", "Item 1"),
            moto: MOTO_REFUSES,
        },
    ])
    .await;
}

#[tokio::test]
async fn an_item_reader_that_cannot_list_fails_catchably() {
    let definition = jsonpath(
        json!({
            "M": {
                "Type": "Map",
                "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
                               "Parameters": {"Bucket": "no-such-bucket-here", "Prefix": ""}},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "P",
                    "States": {"P": {"Type": "Pass", "End": true}}
                },
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": true
            },
            "Caught": {"Type": "Pass", "End": true}
        }),
        "M",
    );
    check(vec![Case {
        name: "a bucket that does not exist",
        definition,
        input: json!({}),
        aws: Expect::OutputWhere("error.Error States.ItemReaderFailed", |o| {
            o["error"]["Error"] == "States.ItemReaderFailed"
        }),
        // States.Runtime, which moto's States.ALL catches (AWS's would not).
        moto: Expect::OutputWhere("error.Error States.Runtime", |o| {
            o["error"]["Error"] == "States.Runtime"
        }),
    }])
    .await;
}

#[tokio::test]
async fn item_batchers_aws_refuses_are_refused_at_creation() {
    let refused = |name, definition| Case {
        name,
        definition,
        input: letters(),
        aws: Expect::Refused("ItemBatcher"),
        moto: MOTO_REFUSES,
    };
    let inline = json!({
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemBatcher": {"MaxItemsPerBatch": 2},
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true
    });
    check(vec![
        refused("in an inline Map", jsonpath(json!({"M": inline}), "M")),
        refused(
            "MaxItemsPerBatch and its Path",
            distributed(
                "JSONPath",
                json!({"ItemBatcher": {"MaxItemsPerBatch": 2, "MaxItemsPerBatchPath": "$.n"}}),
            ),
        ),
        refused(
            "MaxItemsPerBatch of 0",
            distributed("JSONPath", json!({"ItemBatcher": {"MaxItemsPerBatch": 0}})),
        ),
        refused(
            "MaxInputBytesPerBatch over 256 KiB",
            distributed(
                "JSONPath",
                json!({"ItemBatcher": {"MaxInputBytesPerBatch": 262_145}}),
            ),
        ),
        refused(
            "a Path field in JSONata",
            distributed(
                "JSONata",
                json!({"ItemBatcher": {"MaxItemsPerBatchPath": "$.n"}}),
            ),
        ),
        Case {
            name: "an intrinsic function in BatchInput (not evaluated locally)",
            definition: distributed(
                "JSONPath",
                json!({"ItemBatcher": {"BatchInput": {"w.$": "States.Format('{}', $.who)"}}}),
            ),
            input: letters(),
            aws: Expect::Refused("DEVSTACK_UNSUPPORTED_BATCH_INPUT"),
            moto: MOTO_REFUSES,
        },
        refused(
            "an unknown field",
            distributed("JSONPath", json!({"ItemBatcher": {"MaxItems": 2}})),
        ),
    ])
    .await;
}

/// Puts `count` one-byte objects under `items/` of a new bucket.
async fn bucket_of_objects(stack: &LocalStack, bucket: &str, count: usize) {
    stack
        .fill_bucket(
            bucket,
            (0..count).map(|i| (format!("items/{i:05}"), b"x".to_vec())),
        )
        .await;
}

#[tokio::test]
async fn a_distributed_map_reads_every_object_under_its_prefix() {
    let count = 1005;
    let ours = Builder::fixture().start().await;
    let plain = Builder::fixture().plain_moto().start().await;
    let bucket = "fidelity-items";
    tokio::join!(
        bucket_of_objects(&ours, bucket, count),
        bucket_of_objects(&plain, bucket, count)
    );
    let map = |extra: Value| {
        let mut state = json!({
            "Type": "Map",
            "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
                           "Parameters": {"Bucket": bucket, "Prefix": "items/"}},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Item",
                "States": {"Item": {"Type": "Pass", "End": true}}
            },
            "End": true
        });
        if let (Some(state), Some(extra)) = (state.as_object_mut(), extra.as_object()) {
            state.extend(extra.clone());
        }
        jsonpath(json!({"M": state}), "M")
    };
    let every = map(json!({}));
    let batched = map(json!({"ItemBatcher": {"MaxItemsPerBatch": 100}}));

    // On AWS: every object, each as {Etag, Key, LastModified (epoch
    // seconds), Size, StorageClass}.
    let got = run(&ours, &every, &json!({})).await;
    let items = match &got {
        Ok(Outcome {
            output: Some(Value::Array(items)),
            ..
        }) => items.clone(),
        other => panic!("the local stack: {other:?}"),
    };
    assert_eq!(items.len(), count);
    assert_eq!(items[1004]["Key"], "items/01004");
    assert_eq!(items[0]["Size"], 1);
    assert_eq!(items[0]["StorageClass"], "STANDARD");
    assert!(items[0]["LastModified"].is_u64(), "{}", items[0]);
    assert!(items[0]["Etag"].is_string(), "{}", items[0]);
    // Batched, the children get the same objects, 100 to a batch, in order.
    let got = run(&ours, &batched, &json!({})).await;
    let batches = match &got {
        Ok(Outcome {
            output: Some(Value::Array(batches)),
            ..
        }) => batches.clone(),
        other => panic!("the local stack, batched: {other:?}"),
    };
    let sizes: Vec<usize> = batches
        .iter()
        .map(|b| b["Items"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes.len(), 11, "{sizes:?}");
    assert!(
        sizes[..10].iter().all(|&n| n == 100) && sizes[10] == 5,
        "{sizes:?}"
    );
    assert_eq!(batches[10]["Items"][4]["Key"], "items/01004");
    // moto as released cannot create it (no ItemBatcher in its grammar).
    let refused = run(&plain, &batched, &json!({})).await;
    assert!(
        matches!(&refused, Err(e) if e.contains("ItemBatcher")),
        "{refused:?}"
    );

    // moto as released: one page at most, and an output no client can read
    // (the items' LastModified are datetimes, which moto cannot serialise).
    let released = run(&plain, &every, &json!({})).await;
    assert!(
        match &released {
            Err(e) => e.starts_with("describing"),
            Ok(o) =>
                o.output
                    .as_ref()
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
                    <= 1000,
        },
        "{released:?}"
    );
    ours.finish().await;
    plain.finish().await;
}
