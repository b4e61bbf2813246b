"""Exceptions of the core API. Each carries the Milvus 0.10 status code the facade returns."""

from __future__ import annotations

from enum import IntEnum


class StatusCode(IntEnum):
    """Milvus 0.10 / pymilvus 0.2.x status codes (the subset milvus_lab produces)."""

    SUCCESS = 0
    UNEXPECTED_ERROR = 1
    COLLECTION_NOT_EXISTS = 4
    ILLEGAL_ARGUMENT = 5
    ILLEGAL_DIMENSION = 7
    ILLEGAL_INDEX_TYPE = 8
    ILLEGAL_COLLECTION_NAME = 9
    ILLEGAL_TOPK = 10
    ILLEGAL_ROWRECORD = 11
    ILLEGAL_VECTOR_ID = 12
    BUILD_INDEX_ERROR = 21
    ILLEGAL_NLIST = 22
    ILLEGAL_METRIC_TYPE = 23


class MilvusLabError(Exception):
    """Base class: a refused call. ``code`` is the Milvus status code, the message says what and why."""

    code: StatusCode = StatusCode.UNEXPECTED_ERROR

    def __init__(self, message: str, code: StatusCode | None = None):
        super().__init__(message)
        if code is not None:
            self.code = StatusCode(code)

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ParamError(MilvusLabError, ValueError):
    """An argument of the wrong type or shape (pymilvus raises these instead of returning a Status)."""

    code = StatusCode.ILLEGAL_ARGUMENT


class InvalidParameterError(MilvusLabError, ValueError):
    """A value of the right type outside what the spec allows (range, choice, cross-rule, unknown name)."""

    code = StatusCode.ILLEGAL_ARGUMENT


class CollectionNotFoundError(MilvusLabError, KeyError):
    code = StatusCode.COLLECTION_NOT_EXISTS

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class AlreadyExistsError(MilvusLabError):
    code = StatusCode.ILLEGAL_ARGUMENT


class NotFoundError(MilvusLabError, KeyError):
    """A partition, segment or entity that does not exist."""

    code = StatusCode.ILLEGAL_ARGUMENT

    def __str__(self) -> str:
        return self.message


class IllegalDimensionError(InvalidParameterError):
    """A dimension out of range or not matching the collection's (an InvalidParameterError with its own code)."""

    code = StatusCode.ILLEGAL_DIMENSION


class IllegalIndexTypeError(MilvusLabError, ValueError):
    code = StatusCode.ILLEGAL_INDEX_TYPE


class IllegalCollectionNameError(MilvusLabError, ValueError):
    code = StatusCode.ILLEGAL_COLLECTION_NAME


class IllegalTopKError(InvalidParameterError):
    """top_k out of range (an InvalidParameterError with its own code)."""

    code = StatusCode.ILLEGAL_TOPK


class IllegalRecordError(MilvusLabError, ValueError):
    """Vectors that cannot be stored: NaN/inf, wrong dimension in a row, empty batch, wrong kind."""

    code = StatusCode.ILLEGAL_ROWRECORD


class IllegalIdError(MilvusLabError, ValueError):
    code = StatusCode.ILLEGAL_VECTOR_ID


class IllegalMetricError(MilvusLabError, ValueError):
    code = StatusCode.ILLEGAL_METRIC_TYPE


class BuildIndexError(MilvusLabError, RuntimeError):
    code = StatusCode.BUILD_INDEX_ERROR


class UntrainableSegmentError(BuildIndexError):
    """A segment's data cannot train this index (too few rows, too few distinct rows): it stays raw."""


class PersistError(MilvusLabError, ValueError):
    """A save that cannot be written, or a saved file that is missing, truncated, tampered or invalid."""

    code = StatusCode.UNEXPECTED_ERROR


class ServerError(MilvusLabError, RuntimeError):
    """A Milvus server could not be reached or failed a step; the message names the URI and the step."""

    code = StatusCode.UNEXPECTED_ERROR


class RecommendationWarning(UserWarning):
    """A value inside the allowed range but outside the documented recommendation."""


class RawSegmentWarning(UserWarning):
    """Part of the data was not indexed (segment below the build threshold or too small to train)."""


class IgnoredParameterWarning(UserWarning):
    """Parameters given where Milvus ignores them (FLAT build params, search params on FLAT)."""


class UnsignedSaveWarning(UserWarning):
    """A save not signed with this user's key was loaded: its indexes were rebuilt from the saved vectors."""
