"""The moto server as the local stack (and every test) runs it: moto's own
Step Functions engine with a JSONata evaluator plugged in, and AWS's
semantics restored where moto differs from them (in S3 too).

``python -m devstack_moto <moto_server arguments>`` installs every fix, then
runs ``moto.server.main``. Nothing of moto is copied: each module replaces a
few functions or methods of moto's Step Functions parser before the first
state machine is created, and names the AWS behaviour it restores.
``docs/local-fidelity.md`` lists each one with the test that proves it.
"""

from . import (
    definitions,
    errors,
    executions,
    insights,
    item_batcher,
    item_reader,
    jsonata_states,
    jsonata_string,
    jsonpath_states,
    limits,
    s3_responses,
    variables,
)


def install() -> None:
    """Installs every fix into the imported moto modules."""
    errors.install()
    executions.install()
    insights.install()
    item_reader.install()
    item_batcher.install()
    jsonata_states.install()
    jsonata_string.install()
    variables.install()
    jsonpath_states.install()
    limits.install()
    s3_responses.install()
    definitions.install()
