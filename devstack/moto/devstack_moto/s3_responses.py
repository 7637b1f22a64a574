"""S3 responses whose XML root AWS names differently.

moto serialises S3 results from botocore's model, whose output shapes do
not carry the XML root name; moto adds the names it knows
(``service-2.moto-extras.json``) and falls back to ``{Operation}Response``.
For the operations below AWS answers with another root, and SDKs that
check the root (the Rust SDK does) refuse moto's answer: ``ListParts`` came
back as "encountered invalid XML root: expected ListPartsResult", so a
multipart upload could never be resumed against moto.
"""

from __future__ import annotations

from moto.core import serialize

# Operation -> the root element AWS's responses have (S3 API reference).
ROOTS = {
    "ListParts": "ListPartsResult",
    "GetBucketVersioning": "VersioningConfiguration",
    "GetBucketAccelerateConfiguration": "AccelerateConfiguration",
    "ListBucketInventoryConfigurations": "ListInventoryConfigurationsResult",
}

# The XML layer names the root; the REST layer above it has already split
# headers from the body by then.
_original = serialize.BaseXMLSerializer._serialized_result_to_response


def _serialized_result_to_response(self, resp, result, shape, serialized_result):
    root = ROOTS.get(self.operation_model.name)
    if root is None or not isinstance(self, serialize.S3Serializer):
        return _original(self, resp, result, shape, serialized_result)
    wrapper = {root: serialized_result}
    self._serialize_namespace_attribute(wrapper[root])
    resp["body"] = self._serialize_body(wrapper)
    resp["headers"]["Content-Type"] = self.CONTENT_TYPE
    return resp


def install() -> None:
    serialize.BaseXMLSerializer._serialized_result_to_response = _serialized_result_to_response
