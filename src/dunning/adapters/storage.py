"""S3 access for uploads and reports (a thin adapter so the domain can be tested against moto or fakes).

Invoice documents. Invoice ids are unique only within an account, so a PDF's file name alone can never say
whose invoice it is. The rule, for an invoice of account A that names `document` (else `<invoice id>.pdf`):
- a PDF uploaded as incoming/documents/A/<name> is A's, and wins;
- a PDF uploaded as incoming/documents/<name> is attached only when A is the one account whose invoices
  look for <name>: every invoice import records which account looks for which name (a claim). A name two
  accounts look for is attached to nobody (each gets the generated copy of its invoice), and an upload of
  such a name is reported in the reject report.
So a customer never receives a document of another account's: at worst they get the generated copy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import IO, Any

from botocore.exceptions import ClientError

from dunning.adapters.keys import UNBOUND_DOCUMENT_SK, bound_document_sk, claimants, document_pk

# The uploads' values and document naming cross to ingest: dunning.ports defines them (importable from here).
from dunning.ports import ObjectGone as ObjectGone
from dunning.ports import StoredObject as StoredObject
from dunning.ports import document_name as document_name


class ObjectStore:
    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def describe(self, bucket: str, key: str, version_id: str | None = None) -> StoredObject:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id and version_id != "null":
            kwargs["VersionId"] = version_id
        try:
            head = self._s3.head_object(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NoSuchVersion"):
                raise ObjectGone(f"s3://{bucket}/{key} does not exist") from exc
            raise
        return StoredObject(bucket, key, head["ETag"].strip('"'), head["LastModified"], head.get("VersionId"))

    def open(self, obj: StoredObject) -> IO[bytes]:
        kwargs: dict[str, Any] = {"Bucket": obj.bucket, "Key": obj.key}
        if obj.version_id and obj.version_id != "null":
            kwargs["VersionId"] = obj.version_id
        try:
            body: IO[bytes] = self._s3.get_object(**kwargs)["Body"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "NoSuchVersion"):
                raise ObjectGone(f"s3://{obj.bucket}/{obj.key} does not exist") from exc
            raise
        return body

    def put(self, bucket: str, key: str, body: IO[bytes] | bytes, content_type: str) -> None:
        if isinstance(body, bytes):
            self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        else:
            self._s3.upload_fileobj(body, bucket, key, ExtraArgs={"ContentType": content_type})

    def delete(self, bucket: str, key: str) -> None:
        self._s3.delete_object(Bucket=bucket, Key=key)

    def read(self, bucket: str, key: str) -> bytes:
        body: bytes = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def read_if_changed(self, bucket: str, key: str, etag: str | None) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None when its ETag is still `etag` (S3 answers 304 without the
        body, so polling an unchanged object is cheap). Only s3:GetObject is needed (no version id)."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if etag:
            kwargs["IfNoneMatch"] = f'"{etag}"'
        try:
            response = self._s3.get_object(**kwargs)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in ("304", "NotModified"):
                return None
            if code in ("404", "NoSuchKey"):
                raise ObjectGone(f"s3://{bucket}/{key} does not exist") from exc
            raise
        body: bytes = response["Body"].read()
        return body, str(response["ETag"]).strip('"')

    def list(self, bucket: str, prefix: str) -> list[tuple[str, str]]:
        """(key, etag) of every object under `prefix`."""
        found: list[tuple[str, str]] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend((item["Key"], item["ETag"].strip('"')) for item in page.get("Contents", []))
        return found

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey"):
                return False
            raise
        return True


class S3Archive:
    """Where each notice's exact bytes are kept (for the contact log and the legal case packet)."""

    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self._store = store
        self._bucket = bucket

    def put(self, key: str, raw: bytes) -> None:
        self._store.put(self._bucket, key, raw, "message/rfc822")


class S3Documents:
    """Invoice PDFs uploaded under incoming/documents/, found through their ledger records."""

    def __init__(self, store: ObjectStore, ledger: Any) -> None:
        self._store = store
        self._ledger = ledger

    def invoice_pdf(self, account_id: str, document: str | None, invoice_id: str) -> tuple[str, bytes] | None:
        # The module docstring has the rule; one query reads the uploads and the claims of the name.
        name = document_name(document, invoice_id)
        items = {item["SK"]: item for item in self._ledger.query_partition(document_pk(name))}
        item = items.get(bound_document_sk(account_id))
        if item is None and claimants(items.values()) == {account_id}:
            item = items.get(UNBOUND_DOCUMENT_SK)
        if item is None:
            return None
        stored = StoredObject(
            item["bucket"], item["key"], "", datetime.min.replace(tzinfo=UTC), item.get("version_id") or None
        )
        return name, self._store.open(stored).read()
