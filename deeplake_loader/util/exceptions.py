"""``deeplake.util.exceptions``: deeplake 3.9.52's exception names, for scripts that import and catch
them (``from deeplake.util.exceptions import TensorDoesNotExistError``, ``except
deeplake.util.exceptions.DatasetHandlerError``).

The errors deeplake_loader raises where deeplake raises one of these derive from the class of that
name (defined in ``deeplake_loader.errors``, with deeplake's builtin bases: ``TensorDoesNotExistError``
is a ``KeyError`` and an ``AttributeError``): ``except DatasetHandlerError`` catches our "no dataset
at this path" and "a dataset is already there", ``except ReadOnlyModeError`` a write to a read-only
dataset, ``except EmptyTensorError`` a loader over an empty tensor, ``except CheckoutError`` an
unknown branch. Every other name deeplake defines exists too, with deeplake's base class, for
features deeplake_loader does not have (Activeloop's service, ``deeplake.compute``, merges, ...):
importing and catching them works; deeplake_loader never raises them.
"""

from __future__ import annotations

from ..errors import (CheckoutError, CommitError, CompressionError, DatasetCorruptError, DatasetHandlerError,
                      DynamicTensorNumpyError, EmptyTensorError, InvalidTensorGroupNameError, InvalidTensorNameError,
                      ReadOnlyModeError, SampleAppendError, SampleDecompressionError, SampleExtendError,
                      TensorAlreadyExistsError, TensorDoesNotExistError, TensorGroupAlreadyExistsError,
                      TensorGroupDoesNotExistError, VersionControlError)

RAISED = ("CheckoutError", "CommitError", "CompressionError", "DatasetCorruptError", "DatasetHandlerError",
          "DynamicTensorNumpyError", "EmptyTensorError", "InvalidTensorGroupNameError", "InvalidTensorNameError",
          "ReadOnlyModeError", "SampleAppendError", "SampleDecompressionError", "SampleExtendError",
          "TensorAlreadyExistsError", "TensorDoesNotExistError", "TensorGroupAlreadyExistsError",
          "TensorGroupDoesNotExistError", "VersionControlError")

# (name, base) of the names deeplake_loader never raises, bases before the classes derived from them
_NOT_RAISED = (
    ("ExternalCommandError", "Exception"), ("KaggleError", "Exception"),
    ("KaggleMissingCredentialsError", "KaggleError"), ("KaggleDatasetAlreadyDownloadedError", "KaggleError"),
    ("InvalidPathException", "Exception"), ("AutoCompressionError", "Exception"),
    ("InvalidFileExtension", "Exception"), ("SamePathException", "Exception"),
    ("TensorInvalidSampleShapeError", "Exception"), ("TensorMetaMissingKey", "Exception"),
    ("InvalidShapeIntervalError", "Exception"), ("InvalidKeyTypeError", "TypeError"),
    ("UnsupportedTensorTypeError", "TypeError"), ("InvalidBytesRequestedError", "Exception"),
    ("ProviderListEmptyError", "Exception"), ("ClassNamesEmptyError", "Exception"),
    ("DirectoryAtPathException", "Exception"), ("FileAtPathException", "Exception"),
    ("ProviderSizeListMismatch", "Exception"), ("ModuleNotInstalledException", "Exception"),
    ("UserNotLoggedInException", "Exception"), ("InvalidHubPathException", "Exception"),
    ("PathNotEmptyException", "Exception"), ("AuthenticationException", "Exception"),
    ("AuthorizationException", "Exception"), ("CouldNotCreateNewDatasetException", "AuthorizationException"),
    ("ResourceNotFoundException", "Exception"), ("BadRequestException", "Exception"),
    ("OverLimitException", "Exception"), ("ServerException", "Exception"), ("BadGatewayException", "Exception"),
    ("GatewayTimeoutException", "Exception"), ("WaitTimeoutException", "Exception"), ("LockedException", "Exception"),
    ("UnexpectedStatusCodeException", "Exception"), ("EmptyTokenException", "Exception"),
    ("EmptyDeeplakePathException", "Exception"), ("ConflictingDatasetParametersError", "Exception"),
    ("MissingTensorMappingError", "Exception"), ("S3Error", "Exception"), ("S3GetError", "S3Error"),
    ("S3SetError", "S3Error"), ("S3DeletionError", "S3Error"), ("S3ListError", "S3Error"),
    ("S3GetAccessError", "S3GetError"), ("UnsupportedCompressionError", "CompressionError"),
    ("SampleCompressionError", "CompressionError"), ("InvalidImageDimensions", "Exception"),
    ("TensorUnsupportedSampleType", "Exception"), ("MetaError", "Exception"), ("MetaDoesNotExistError", "MetaError"),
    ("MetaAlreadyExistsError", "MetaError"), ("MetaInvalidKey", "MetaError"),
    ("MetaInvalidRequiredMetaKey", "MetaError"), ("TensorMetaInvalidHtype", "MetaError"),
    ("TensorMetaInvalidHtypeOverwriteValue", "MetaError"), ("MeshTensorMetaMissingRequiredValue", "MetaError"),
    ("TensorMetaMissingRequiredValue", "MetaError"), ("TensorMetaInvalidHtypeOverwriteKey", "MetaError"),
    ("TensorDtypeMismatchError", "MetaError"), ("InvalidTensorLinkError", "MetaError"),
    ("TensorMetaMutuallyExclusiveKeysError", "MetaError"), ("TransformError", "Exception"),
    ("FilterError", "Exception"), ("InvalidInputDataError", "TransformError"),
    ("UnsupportedSchedulerError", "TransformError"), ("TensorMismatchError", "TransformError"),
    ("InvalidOutputDatasetError", "TransformError"), ("InvalidTransformDataset", "TransformError"),
    ("HubComposeEmptyListError", "TransformError"), ("HubComposeIncompatibleFunction", "TransformError"),
    ("DatasetUnsupportedPytorch", "Exception"), ("CorruptedMetaError", "Exception"),
    ("ChunkEngineError", "Exception"), ("FullChunkError", "ChunkEngineError"),
    ("ChunkIdEncoderError", "ChunkEngineError"), ("ChunkSizeTooSmallError", "ChunkEngineError"),
    ("MemoryDatasetCanNotBePickledError", "Exception"), ("CorruptedSampleError", "Exception"),
    ("MergeError", "Exception"), ("MergeNotSupportedError", "MergeError"), ("MergeMismatchError", "MergeError"),
    ("MergeConflictError", "MergeError"), ("EmptyCommitError", "CommitError"), ("TensorModifiedError", "Exception"),
    ("GCSDefaultCredsNotFoundError", "Exception"), ("InvalidOperationError", "Exception"),
    ("AgreementError", "Exception"), ("AgreementNotAcceptedError", "AgreementError"),
    ("NotLoggedInAgreementError", "AgreementError"), ("RenameError", "Exception"), ("BufferError", "Exception"),
    ("InfoError", "Exception"), ("OutOfChunkCountError", "Exception"), ("OutOfSampleCountError", "Exception"),
    ("SampleHtypeMismatchError", "Exception"), ("DatasetViewSavingError", "Exception"),
    ("InvalidViewException", "Exception"), ("ManagedCredentialsNotFoundError", "Exception"),
    ("UnableToReadFromUrlError", "Exception"), ("InvalidTokenException", "Exception"),
    ("TokenPermissionError", "Exception"), ("SampleAppendingError", "Exception"),
    ("SampleExtendingError", "Exception"), ("DatasetTooLargeToDelete", "Exception"),
    ("TensorTooLargeToDelete", "Exception"), ("BadLinkError", "Exception"), ("IngestionError", "Exception"),
    ("DatasetConnectError", "Exception"), ("InvalidSourcePathError", "DatasetConnectError"),
    ("InvalidDestinationPathError", "DatasetConnectError"), ("UnprocessableEntityException", "Exception"),
    ("GroupInfoNotSupportedError", "Exception"), ("InvalidDatasetNameException", "Exception"),
    ("UnsupportedParameterException", "Exception"), ("UnsupportedExtensionError", "Exception"),
    ("SampleReadError", "Exception"), ("GetChunkError", "Exception"), ("ReadSampleFromChunkError", "Exception"),
    ("GetDataFromLinkError", "Exception"), ("TransformFailedError", "Exception"), ("MissingCredsError", "Exception"),
    ("EmptyPolygonError", "Exception"), ("MissingManagedCredsError", "Exception"), ("SampleUpdateError", "Exception"),
    ("AllSamplesSkippedError", "Exception"), ("FailedIngestionError", "Exception"),
    ("IncorrectEmbeddingShapeError", "Exception"), ("IncompatibleHtypeError", "Exception"),
    ("DeepMemoryAccessError", "Exception"), ("EmbeddingTensorPopError", "Exception"),
    ("IncorrectRelevanceTypeError", "Exception"), ("IncorrectQueriesTypeError", "Exception"),
    ("ValidationDatasetMissingError", "Exception"), ("InvalidAuthContextError", "Exception"),
    ("InvalidPandasDataframeError", "Exception"),
)


_BUILTIN = {"Exception": Exception, "TypeError": TypeError}


def _declare():
    made = {}
    for name, base in _NOT_RAISED:
        cls = _BUILTIN.get(base) or made.get(base) or globals()[base]
        made[name] = type(name, (cls,), {"__module__": __name__,
                                          "__doc__": f"deeplake's {name}; deeplake_loader never raises it."})
    return made


globals().update(_declare())
__all__ = list(RAISED) + [name for name, _ in _NOT_RAISED]
