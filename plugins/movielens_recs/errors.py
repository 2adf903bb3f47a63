"""Errors that name a problem with the pipeline's input.

Each carries a message meant for the person reading the task log, so it says what was wrong
and where, not only that something failed.
"""


# Exit code of a Spark job that rejected its input (failed validation, a failing model): the
# orchestrator fails such a task at once instead of retrying it.
EXIT_BAD_INPUT = 3


class PipelineInputError(Exception):
    """Bad input: retrying will not help, the data or its source must be fixed."""


class DownloadError(PipelineInputError):
    """The archive or its checksum could not be fetched."""


class MissingChecksumError(DownloadError):
    """No checksum is published beside the archive, so it cannot be verified."""


class ChecksumConflictError(DownloadError):
    """The published checksum file gives the archive more than one MD5."""


class ChecksumMismatchError(DownloadError):
    """The archive's MD5 differs from the published one: corrupt or tampered."""


class DownloadTooSlowError(DownloadError):
    """The transfer passed its deadline, or ran under the minimum rate."""


class TruncatedDownloadError(DownloadError):
    """Fewer bytes arrived than the server announced."""


class UnsafeArchiveError(PipelineInputError):
    """An archive entry would escape the extraction folder or blow up in size."""


class CorruptArchiveError(PipelineInputError):
    """The archive cannot be read as a zip file."""


class InvalidDatasetName(PipelineInputError):
    """A dataset name that could escape the folders, prefixes and schemas named after it."""


class SchemaError(PipelineInputError):
    """A MovieLens file does not have the columns or types its layout requires."""


class DataValidationError(PipelineInputError):
    """The snapshot broke one or more Great Expectations expectations."""
