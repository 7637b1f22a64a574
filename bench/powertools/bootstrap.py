"""A minimal Lambda Runtime API loop for the Python baseline, stdlib only.

Lighter than AWS's own runtime interface client, so the Python numbers are,
if anything, flattering to Python. Imports the handler first (init), then
serves invocations until the process is stopped.
"""

import http.client
import json
import os

import handler  # init: Powertools is imported here

API = "/2018-06-01/runtime"


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers["Lambda-Runtime-Aws-Request-Id"]
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
        self.deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms", "0"))
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")


def main():
    # One kept-alive connection, as AWS's runtime clients use.
    connection = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
    while True:
        connection.request("GET", f"{API}/invocation/next")
        response = connection.getresponse()
        event = json.loads(response.read())
        context = Context(response.headers)
        try:
            body = json.dumps(handler.handler(event, context)).encode()
            url = f"{API}/invocation/{context.aws_request_id}/response"
        except Exception as error:  # reported as Lambda does, the loop goes on
            body = json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
            url = f"{API}/invocation/{context.aws_request_id}/error"
        connection.request("POST", url, body=body)
        connection.getresponse().read()


if __name__ == "__main__":
    main()
