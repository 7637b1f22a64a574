"""A Distributed Map's S3 prefix ``ItemReader`` as AWS runs it.

- ``arn:aws:states:::s3:listObjectsV2`` iterates over *every* object under
  the prefix on AWS; moto makes one ``ListObjectsV2`` call and keeps its
  ``Contents``, so past 1,000 objects a local run silently skipped the
  rest (and a prefix with no objects raised ``KeyError``).
- Each item has AWS's shape (the ItemReader page of the Step Functions
  guide): ``Key``, ``Etag``, ``LastModified`` in epoch seconds, ``Size``,
  ``StorageClass``. moto passed boto3's dict, whose ``LastModified`` is a
  Python datetime: the execution's output then broke ``DescribeExecution``
  with HTTP 500.

- A listing that fails (no such bucket, access denied) is
  ``States.ItemReaderFailed`` on AWS ("A Map state failed because it
  couldn't read from the item source"), which a ``Catch`` can handle; moto
  failed the execution with ``States.Runtime``, which none can.

``ItemBatcher`` (not in moto's grammar) is ``item_batcher``'s.
"""

from __future__ import annotations

import datetime

from botocore.exceptions import ClientError

from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval import (
    resource_eval_s3,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails


def aws_item(entry: dict) -> dict:
    """One object of the listing as a Distributed Map item on AWS."""
    modified = entry.get("LastModified")
    if isinstance(modified, datetime.datetime):
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=datetime.timezone.utc)
        modified = int(modified.timestamp())
    return {
        "Etag": entry.get("ETag"),
        "Key": entry.get("Key"),
        "LastModified": modified,
        "Size": entry.get("Size"),
        "StorageClass": entry.get("StorageClass", "STANDARD"),
    }


def _list_objects_v2(env, resource_runtime_part, state_credentials) -> None:
    s3_client = resource_eval_s3.ResourceEvalS3._get_s3_client(
        resource_runtime_part=resource_runtime_part,
        state_credentials=state_credentials,
    )
    parameters = dict(env.stack.pop())
    items = []
    while True:
        try:
            response = s3_client.list_objects_v2(**parameters)
        except ClientError as e:
            raise _reader_failed(env, f"listing s3://{parameters.get('Bucket')}: {e}") from None
        items.extend(aws_item(entry) for entry in response.get("Contents", []))
        token = response.get("NextContinuationToken")
        if not response.get("IsTruncated") or not token:
            break
        parameters["ContinuationToken"] = token
    env.stack.append(items)


def _reader_failed(env, cause: str) -> FailureEventException:
    error = StatesErrorName(typ=StatesErrorNameType.StatesItemReaderFailed)
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=error,
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(
                mapRunFailedEventDetails=MapRunFailedEventDetails(
                    error=error.error_name, cause=cause
                )
            ),
        )
    )


def install() -> None:
    resource_eval_s3.ResourceEvalS3._handle_list_objects_v2 = staticmethod(_list_objects_v2)
