"""Every moto internal the embedded AWS (and its tests) patches or reads, in one list.

moto's public API is `mock_aws` and the boto3 calls it answers. To run the state machine on simulated time
with our handlers in-process (`embedded_sfn`), to make SES refuse what SES refuses (`embedded_ses`) and to
make runs repeat exactly (`embedded_aws`), the embedded AWS also relies on moto's private classes,
functions and fields. They may change in any moto release, which is why moto is pinned to one version in
pyproject.toml. Each is named here once, with the parameters we rely on, and the patching code takes them
from here; tests/unit/test_moto_guard.py checks every one against the installed moto, so an upgrade that
moves or changes one fails there, naming it, instead of somewhere deep inside a simulated run.

Importing this module does not import moto: each internal is looked up when it is used.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from importlib import metadata
from typing import Any
from unittest import mock


class Kind(Enum):
    FUNCTION = "function"  # called or replaced: its parameter names must be exactly `parameters`
    OBJECT = "object"  # a module-level object or class we read or replace: it must exist
    FIELD = "field"  # an instance attribute we read or set: its class must still declare or assign it


@dataclass(frozen=True)
class MotoInternal:
    module: str
    path: str  # inside the module, e.g. "ExecutionWorker.start"
    kind: Kind
    purpose: str
    parameters: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.module}.{self.path}"

    @property
    def attribute(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    def owner(self) -> Any:
        """The module or class holding the attribute."""
        owner: Any = importlib.import_module(self.module)
        for part in self.path.split(".")[:-1]:
            owner = getattr(owner, part)
        return owner

    def get(self) -> Any:
        if self.kind is Kind.FIELD:
            raise TypeError(f"{self.name} is an instance attribute: read it from an instance")
        return getattr(self.owner(), self.attribute)

    def patch(self, replacement: Any) -> Any:
        """A context manager replacing the internal with `replacement` (unittest.mock.patch.object)."""
        return mock.patch.object(self.owner(), self.attribute, replacement)

    def problem(self) -> str | None:
        """What no longer holds in the installed moto, or None when the internal is as we rely on it."""
        try:
            owner = self.owner()
        except (ImportError, AttributeError) as exc:
            return f"{self.name}: cannot be imported ({type(exc).__name__}: {exc})"
        if self.kind is Kind.FIELD:
            if not _declares(owner, self.attribute):
                return (
                    f"{self.name}: {owner.__qualname__} no longer declares or assigns self.{self.attribute}"
                )
            return None
        if not hasattr(owner, self.attribute):
            return f"{self.name}: no longer exists"
        if self.kind is Kind.FUNCTION:
            found = tuple(inspect.signature(getattr(owner, self.attribute)).parameters)
            if found != self.parameters:
                return f"{self.name}: parameters are {found}, expected {self.parameters}"
        return None


def _declares(cls: type, attribute: str) -> bool:
    """Whether `cls` (or a base) annotates `attribute` or assigns self.<attribute> in its source."""
    assigns = re.compile(rf"\bself\.{re.escape(attribute)}\s*(:[^=\n]+)?=(?!=)")
    for klass in cls.__mro__:
        if klass is object:
            continue
        if attribute in getattr(klass, "__annotations__", {}):
            return True
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if assigns.search(source):
            return True
    return False


_SFN = "moto.stepfunctions.parser"
_WAIT = f"{_SFN}.asl.component.state.wait.wait_function"

# --- Step Functions (embedded_sfn.simulated_step_functions) -----------------------------------------------
EXECUTION_START = MotoInternal(
    f"{_SFN}.backend.execution_worker",
    "ExecutionWorker.start",
    Kind.FUNCTION,
    "wrapped: counts a started execution and lets it run until it waits or ends",
    ("self",),
)
EXECUTION_LOGIC = MotoInternal(
    f"{_SFN}.backend.execution_worker",
    "ExecutionWorker._execution_logic",
    Kind.FUNCTION,
    "wrapped: the execution thread's body; counts the execution as finished when it returns",
    ("self",),
)
WAIT_EVAL_BODY = MotoInternal(
    f"{_WAIT}.wait_function",
    "WaitFunction._eval_body",
    Kind.FUNCTION,
    "replaced: a Wait state blocks on the simulated clock instead of sleeping",
    ("self", "env"),
)
WAIT_SECONDS = MotoInternal(
    f"{_WAIT}.wait_function",
    "WaitFunction._get_wait_seconds",
    Kind.FUNCTION,
    "called: a Seconds/SecondsPath wait's length; raises States.Runtime for a bad Timestamp",
    ("self", "env"),
)
TIMESTAMP = MotoInternal(
    f"{_WAIT}.timestamp", "Timestamp", Kind.OBJECT, "read: a Timestamp/TimestampPath Wait's class"
)
TIMESTAMP_STRING = MotoInternal(
    f"{_WAIT}.timestamp",
    "Timestamp.string",
    Kind.FIELD,
    "read: the Timestamp's string expression, evaluated onto the environment's stack",
)
TIMESTAMP_PARSE = MotoInternal(
    f"{_WAIT}.timestamp",
    "Timestamp._from_timestamp_string",
    Kind.FUNCTION,
    "called: parses the Timestamp as moto does (naive UTC, or None when invalid)",
    ("timestamp",),
)
ENVIRONMENT_STACK = MotoInternal(
    f"{_SFN}.asl.eval.environment",
    "Environment.stack",
    Kind.FIELD,
    "read: the evaluated Timestamp string is popped from it",
)
ENVIRONMENT_STATES = MotoInternal(
    f"{_SFN}.asl.eval.environment",
    "Environment.states",
    Kind.FIELD,
    "read: the execution's context object (its input's account id labels a waiting execution)",
)
STATES_CONTEXT_OBJECT = MotoInternal(
    f"{_SFN}.asl.eval.states", "States.context_object", Kind.FIELD, "read: as Environment.states"
)
CONTEXT_OBJECT_DATA = MotoInternal(
    f"{_SFN}.asl.eval.states",
    "ContextObject.context_object_data",
    Kind.FIELD,
    "read: Execution.Input of the context object",
)
LAMBDA_CLIENT = MotoInternal(
    f"{_SFN}.asl.component.state.exec.state_task.lambda_eval_utils",
    "boto_client_for",
    Kind.FUNCTION,
    "replaced: a Task's Lambda client becomes our handlers, invoked in this process",
    ("region", "service", "state_credentials"),
)
RETRY_TIME = MotoInternal(
    f"{_SFN}.asl.component.common.retry.retrier_decl",
    "time",
    Kind.OBJECT,
    "replaced: the `time` module a Retrier sleeps its back-off with; recorded, and slept on the simulated "
    "clock (retry_backoff)",
)
RETRY_JITTER_RANDOM = MotoInternal(
    f"{_SFN}.asl.component.common.retry.jitter_strategy_decl",
    "random",
    Kind.OBJECT,
    "replaced: the `random` JitterStrategy FULL draws from (seeded by the retry, so runs repeat exactly)",
)
HANDLE_RETRY = MotoInternal(
    f"{_SFN}.asl.component.state.exec.execute_state",
    "ExecutionState._handle_retry",
    Kind.FUNCTION,
    "wrapped: the Retriers run inside it, in its thread; their back-off and jitter read its `env` from there",
    ("self", "env", "failure_event"),
)

# --- Step Functions programs: one parse per definition (embedded_aws.parsed_once_per_definition) ---------
_WORKER = f"{_SFN}.backend.execution_worker"
_DETAILS = f"{_SFN}.asl.eval.evaluation_details"
_COMPONENT = f"{_SFN}.asl.component.eval_component"
EVALUATION_ENTRYPOINT = MotoInternal(
    _WORKER,
    "ExecutionWorker._get_evaluation_entrypoint",
    Kind.FUNCTION,
    "replaced: an execution's program, which moto parses from the definition (ASL, with ANTLR) at every "
    "StartExecution; called (moto's own) only for a definition not parsed yet, then the program is reused",
    ("self",),
)
EVALUATION_DETAILS = MotoInternal(
    _WORKER, "ExecutionWorker._evaluation_details", Kind.FIELD, "read: what the execution runs"
)
STATE_MACHINE_DETAILS = MotoInternal(
    _DETAILS, "EvaluationDetails.state_machine_details", Kind.FIELD, "read: the state machine it runs"
)
STATE_MACHINE_DEFINITION = MotoInternal(
    _DETAILS,
    "StateMachineDetails.definition",
    Kind.FIELD,
    "read: the definition the execution runs, the key of its parsed program",
)
ASL_PARSE = MotoInternal(
    f"{_SFN}.asl.parse.asl_parser",
    "AmazonStateLanguageParser.parse",
    Kind.FUNCTION,
    "moto's parser, called by the entrypoint (and by CreateStateMachine's check): counted by tests",
    ("definition",),
)
EVAL_COMPONENT = MotoInternal(
    _COMPONENT, "EvalComponent", Kind.OBJECT, "read: the class of a parsed program's nodes"
)
EVAL_COMPONENT_HEAP_KEY = MotoInternal(
    _COMPONENT,
    "EvalComponent.heap_key",
    Kind.OBJECT,
    "read: a node's key in an execution's heap (where a Retrier keeps its attempt count and back-off), drawn "
    "on first read: read for every node of a program before executions share it, so it is drawn once",
)
ENVIRONMENT_HEAP = MotoInternal(
    f"{_SFN}.asl.eval.environment",
    "Environment.heap",
    Kind.FIELD,
    "relied on: an execution's per-node state lives in its own Environment (heap, stack), not in the "
    "program's nodes, so executions can share a program",
)

# --- SES (embedded_ses) -----------------------------------------------------------------------------------
SESV2_SEND_EMAIL = MotoInternal(
    "moto.sesv2.responses",
    "SESV2Response.send_email",
    Kind.FUNCTION,
    "wrapped: every SES v2 SendEmail is checked first and refused as SES refuses it",
    ("self",),
)
SESV2_REQUEST_BODY = MotoInternal(
    "moto.sesv2.responses", "SESV2Response.body", Kind.FIELD, "read: the SendEmail request's JSON body"
)
JSON_REST_ERROR = MotoInternal(
    "moto.core.exceptions",
    "JsonRESTError.__init__",
    Kind.FUNCTION,
    "called: the refusal raised to the client (error type, message)",
    ("self", "error_type", "message", "_", "kwargs"),
)
JSON_REST_ERROR_CODE = MotoInternal(
    "moto.core.exceptions", "JsonRESTError.code", Kind.FIELD, "set: the refusal's HTTP status"
)
SES_BACKENDS = MotoInternal(
    "moto.ses.models",
    "ses_backends",
    Kind.OBJECT,
    "read: the SES backend of an account and region (v1 and v2 share it); tests read its sent messages",
)
SES_EMAIL_IDENTITIES = MotoInternal(
    "moto.ses.models", "SESBackend.email_identities", Kind.FIELD, "read: the verified identities"
)
SES_CONFIG_SETS = MotoInternal(
    "moto.ses.models", "SESBackend.config_sets", Kind.FIELD, "read: the configuration sets"
)
SES_SENT_MESSAGES = MotoInternal(
    "moto.ses.models",
    "SESBackend.sent_messages",
    Kind.FIELD,
    "read by tests (tests/support, integration): what SES accepted",
)
SES_RAW_MESSAGE_DATA = MotoInternal(
    "moto.ses.models", "RawMessage.raw_data", Kind.FIELD, "read by tests: an accepted message's bytes"
)
SES_RAW_MESSAGE_ID = MotoInternal(
    "moto.ses.models", "RawMessage.id", Kind.FIELD, "read by tests: an accepted message's id"
)
SES_RAW_MESSAGE_SOURCE = MotoInternal(
    "moto.ses.models", "RawMessage.source", Kind.FIELD, "read by tests: an accepted message's sender"
)

# --- ids and the table (embedded_aws, bench) --------------------------------------------------------------
MOCK_RANDOM_SEED = MotoInternal(
    "moto.moto_api._internal",
    "mock_random.seed",
    Kind.FUNCTION,
    "called: seeds the one generator of moto's ids (S3 versions, SES message ids), so runs repeat exactly",
    ("a", "version"),
)
DYNAMODB_BACKENDS = MotoInternal(
    "moto.dynamodb.models", "dynamodb_backends", Kind.OBJECT, "read by bench/scan_simulate.py: the table"
)
DYNAMODB_GET_TABLE = MotoInternal(
    "moto.dynamodb.models",
    "DynamoDBBackend.get_table",
    Kind.FUNCTION,
    "called by bench/scan_simulate.py, and by embedded_dynamodb: the table an UpdateItem wrote to",
    ("self", "table_name"),
)
DYNAMODB_TABLE_ITEMS = MotoInternal(
    "moto.dynamodb.models.table",
    "Table.items",
    Kind.FIELD,
    "read by bench/scan_simulate.py (every item) and embedded_dynamodb: {hash: {range: Item}}, or {hash: "
    "Item} without a sort key",
)

# --- Query by partition (embedded_dynamodb.partitioned_queries) -------------------------------------------
DYNAMODB_TABLE_QUERY = MotoInternal(
    "moto.dynamodb.models.table",
    "Table.query",
    Kind.FUNCTION,
    "wrapped: works out the queried partition (hash_key; index_name and its hash_key_conditions), then runs "
    "as it is",
    (
        "self",
        "hash_key",
        "range_comparison",
        "range_objs",
        "limit",
        "exclusive_start_key",
        "scan_index_forward",
        "projection_expressions",
        "index_name",
        "consistent_read",
        "filter_expression",
        "hash_key_conditions",
        "range_key_conditions",
        "filter_kwargs",
    ),
)
DYNAMODB_TABLE_ALL_ITEMS = MotoInternal(
    "moto.dynamodb.models.table",
    "Table.all_items",
    Kind.FUNCTION,
    "wrapped: what Table.query reads (once) and filters by partition; during a Query, only that partition",
    ("self",),
)
DYNAMODB_TABLE_PUT_ITEM = MotoInternal(
    "moto.dynamodb.models.table",
    "Table.put_item",
    Kind.FUNCTION,
    "wrapped: every item stored (PutItem, BatchWriteItem, transactions, PartiQL, UpdateItem of a new item) "
    "marks its key for the index maps",
    (
        "self",
        "item_attrs",
        "expected",
        "condition_expression",
        "expression_attribute_names",
        "expression_attribute_values",
        "overwrite",
        "return_values_on_condition_check_failure",
    ),
)
DYNAMODB_TABLE_DELETE_ITEM = MotoInternal(
    "moto.dynamodb.models.table",
    "Table.delete_item",
    Kind.FUNCTION,
    "wrapped: every item removed marks its key for the index maps",
    ("self", "hash_key", "range_key"),
)
DYNAMODB_UPDATE_ITEM = MotoInternal(
    "moto.dynamodb.models",
    "DynamoDBBackend.update_item",
    Kind.FUNCTION,
    "wrapped: the one write that changes a stored item in place; marks its key (from `key`, as it reads it)",
    (
        "self",
        "table_name",
        "key",
        "update_expression",
        "expression_attribute_names",
        "expression_attribute_values",
        "attribute_updates",
        "expected",
        "condition_expression",
        "return_values_on_condition_check_failure",
    ),
)
DYNAMODB_TABLE_ALL_INDEXES = MotoInternal(
    "moto.dynamodb.models.table",
    "Table.all_indexes",
    Kind.FUNCTION,
    "called: the table's indexes (global and local), to find the queried one",
    ("self",),
)
DYNAMODB_TABLE_HASH_KEY = MotoInternal(
    "moto.dynamodb.models.table", "Table.hash_key_attr", Kind.FIELD, "read: the partition key's name"
)
DYNAMODB_TABLE_RANGE_KEY = MotoInternal(
    "moto.dynamodb.models.table", "Table.range_key_attr", Kind.FIELD, "read: the sort key's name, or None"
)
DYNAMODB_INDEX_NAME = MotoInternal(
    "moto.dynamodb.models.table", "SecondaryIndex.name", Kind.FIELD, "read: an index's name"
)
DYNAMODB_INDEX_SCHEMA = MotoInternal(
    "moto.dynamodb.models.table",
    "SecondaryIndex.schema",
    Kind.FIELD,
    "read: an index's KeySchema ([{AttributeName, KeyType}]); its first HASH is its partition key",
)
DYNAMODB_ITEM_ATTRS = MotoInternal(
    "moto.dynamodb.models.dynamo_type",
    "Item.attrs",
    Kind.FIELD,
    "read: an item's attributes by name, as DynamoType (an index partition key's value)",
)
DYNAMODB_ITEM_HASH_KEY = MotoInternal(
    "moto.dynamodb.models.dynamo_type", "Item.hash_key", Kind.FIELD, "read: the order all_items lists in"
)
DYNAMODB_ITEM_RANGE_KEY = MotoInternal(
    "moto.dynamodb.models.dynamo_type", "Item.range_key", Kind.FIELD, "read: as Item.hash_key"
)
DYNAMO_TYPE = MotoInternal(
    "moto.dynamodb.models.dynamo_type",
    "DynamoType",
    Kind.OBJECT,
    "called: an attribute value as the key moto stores it under (hashable; equal as moto compares keys)",
)

# --- DynamoDB answers on the wire (embedded_dynamodb.wire_ready_attribute_values) --------------------------
JSON_SERIALIZE_STRUCTURE = MotoInternal(
    "moto.core.serialize",
    "BaseJSONSerializer._serialize_type_structure",
    Kind.FUNCTION,
    "wrapped: an AttributeValue moto already holds in its JSON wire form is put in the answer as it is, "
    "not walked member by member",
    ("self", "serialized", "value", "shape", "key"),
)
JSON_DEFAULT_SERIALIZE = MotoInternal(
    "moto.core.serialize",
    "ResponseSerializer._default_serialize",
    Kind.FUNCTION,
    "called: puts a value in the answer under its serialized name, as moto does for every member",
    ("self", "serialized", "value", "shape", "key"),
)

# --- SQS receives (embedded_sqs.retention_read_directly) -------------------------------------------------
SQS_RETENTION_CHECK = MotoInternal(
    "moto.sqs.models",
    "SQSBackend.is_message_valid_based_on_retention_period",
    Kind.FUNCTION,
    "replaced: reads the queue's message_retention_period (what its attributes' MessageRetentionPeriod is) "
    "instead of building every attribute, message counts included, for each message received",
    ("self", "queue_name", "message"),
)
SQS_GET_QUEUE = MotoInternal(
    "moto.sqs.models",
    "SQSBackend.get_queue",
    Kind.FUNCTION,
    "called: a queue by name",
    ("self", "queue_name"),
)
SQS_MESSAGE_SENT_TIMESTAMP = MotoInternal(
    "moto.sqs.models", "Message.sent_timestamp", Kind.FIELD, "read: when a message was sent (ms since 1970)"
)
SQS_UNIX_TIME = MotoInternal(
    "moto.sqs.models",
    "unix_time",
    Kind.FUNCTION,
    "called: moto's now, as its retention check reads it",
    ("dt",),
)

ALL: tuple[MotoInternal, ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, MotoInternal)
)


@contextmanager
def patched(*replacements: tuple[MotoInternal, Any]) -> Iterator[None]:
    """Replace each internal by its replacement for the duration of the block."""
    patches = [internal.patch(replacement) for internal, replacement in replacements]
    started: list[Any] = []
    try:
        for patch in patches:
            patch.start()
            started.append(patch)
        yield
    finally:
        for patch in reversed(started):
            patch.stop()


def installed_version() -> str:
    return metadata.version("moto")


def ses_backend(account_id: str, region: str) -> Any:
    """moto's SES backend of one account and region (what SES v1 and v2 share)."""
    return SES_BACKENDS.get()[account_id][region]
