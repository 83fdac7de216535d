from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Backend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_UNSPECIFIED: _ClassVar[Backend]
    BACKEND_SOFTWARE: _ClassVar[Backend]
    BACKEND_YUBIKEY: _ClassVar[Backend]

class SignatureFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNATURE_FORMAT_UNSPECIFIED: _ClassVar[SignatureFormat]
    SIGNATURE_FORMAT_TUF: _ClassVar[SignatureFormat]
    SIGNATURE_FORMAT_NOTARY: _ClassVar[SignatureFormat]

class TouchPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOUCH_POLICY_UNSPECIFIED: _ClassVar[TouchPolicy]
    TOUCH_POLICY_NEVER: _ClassVar[TouchPolicy]
    TOUCH_POLICY_CACHED: _ClassVar[TouchPolicy]
    TOUCH_POLICY_ALWAYS: _ClassVar[TouchPolicy]

class PinPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PIN_POLICY_UNSPECIFIED: _ClassVar[PinPolicy]
    PIN_POLICY_ONCE: _ClassVar[PinPolicy]
    PIN_POLICY_ALWAYS: _ClassVar[PinPolicy]
BACKEND_UNSPECIFIED: Backend
BACKEND_SOFTWARE: Backend
BACKEND_YUBIKEY: Backend
SIGNATURE_FORMAT_UNSPECIFIED: SignatureFormat
SIGNATURE_FORMAT_TUF: SignatureFormat
SIGNATURE_FORMAT_NOTARY: SignatureFormat
TOUCH_POLICY_UNSPECIFIED: TouchPolicy
TOUCH_POLICY_NEVER: TouchPolicy
TOUCH_POLICY_CACHED: TouchPolicy
TOUCH_POLICY_ALWAYS: TouchPolicy
PIN_POLICY_UNSPECIFIED: PinPolicy
PIN_POLICY_ONCE: PinPolicy
PIN_POLICY_ALWAYS: PinPolicy

class Key(_message.Message):
    __slots__ = ("keyid", "notary_keyid", "gun", "role", "scheme", "public_pem", "tuf_key_json", "backend", "created_at", "exportable", "available", "serial", "slot", "touch_policy", "pin_policy", "software", "yubikey", "other", "last_backup", "origin")
    KEYID_FIELD_NUMBER: _ClassVar[int]
    NOTARY_KEYID_FIELD_NUMBER: _ClassVar[int]
    GUN_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_PEM_FIELD_NUMBER: _ClassVar[int]
    TUF_KEY_JSON_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPORTABLE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    TOUCH_POLICY_FIELD_NUMBER: _ClassVar[int]
    PIN_POLICY_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_FIELD_NUMBER: _ClassVar[int]
    YUBIKEY_FIELD_NUMBER: _ClassVar[int]
    OTHER_FIELD_NUMBER: _ClassVar[int]
    LAST_BACKUP_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    keyid: str
    notary_keyid: str
    gun: str
    role: str
    scheme: str
    public_pem: str
    tuf_key_json: str
    backend: Backend
    created_at: str
    exportable: bool
    available: bool
    serial: int
    slot: str
    touch_policy: TouchPolicy
    pin_policy: PinPolicy
    software: SoftwareLocation
    yubikey: YubiKeyLocation
    other: OtherLocation
    last_backup: str
    origin: str
    def __init__(self, keyid: _Optional[str] = ..., notary_keyid: _Optional[str] = ..., gun: _Optional[str] = ..., role: _Optional[str] = ..., scheme: _Optional[str] = ..., public_pem: _Optional[str] = ..., tuf_key_json: _Optional[str] = ..., backend: _Optional[_Union[Backend, str]] = ..., created_at: _Optional[str] = ..., exportable: _Optional[bool] = ..., available: _Optional[bool] = ..., serial: _Optional[int] = ..., slot: _Optional[str] = ..., touch_policy: _Optional[_Union[TouchPolicy, str]] = ..., pin_policy: _Optional[_Union[PinPolicy, str]] = ..., software: _Optional[_Union[SoftwareLocation, _Mapping]] = ..., yubikey: _Optional[_Union[YubiKeyLocation, _Mapping]] = ..., other: _Optional[_Union[OtherLocation, _Mapping]] = ..., last_backup: _Optional[str] = ..., origin: _Optional[str] = ...) -> None: ...

class SoftwareLocation(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class YubiKeyLocation(_message.Message):
    __slots__ = ("serial", "slot", "touch_policy", "pin_policy")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    TOUCH_POLICY_FIELD_NUMBER: _ClassVar[int]
    PIN_POLICY_FIELD_NUMBER: _ClassVar[int]
    serial: int
    slot: str
    touch_policy: TouchPolicy
    pin_policy: PinPolicy
    def __init__(self, serial: _Optional[int] = ..., slot: _Optional[str] = ..., touch_policy: _Optional[_Union[TouchPolicy, str]] = ..., pin_policy: _Optional[_Union[PinPolicy, str]] = ...) -> None: ...

class OtherLocation(_message.Message):
    __slots__ = ("backend",)
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    backend: str
    def __init__(self, backend: _Optional[str] = ...) -> None: ...

class GenerateKeyRequest(_message.Message):
    __slots__ = ("gun", "role", "exportable", "software", "yubikey", "backend", "serial", "slot", "touch_policy", "allow_default_mgmt_key")
    GUN_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    EXPORTABLE_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_FIELD_NUMBER: _ClassVar[int]
    YUBIKEY_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    TOUCH_POLICY_FIELD_NUMBER: _ClassVar[int]
    ALLOW_DEFAULT_MGMT_KEY_FIELD_NUMBER: _ClassVar[int]
    gun: str
    role: str
    exportable: bool
    software: SoftwarePlacement
    yubikey: YubiKeyPlacement
    backend: Backend
    serial: int
    slot: str
    touch_policy: TouchPolicy
    allow_default_mgmt_key: bool
    def __init__(self, gun: _Optional[str] = ..., role: _Optional[str] = ..., exportable: _Optional[bool] = ..., software: _Optional[_Union[SoftwarePlacement, _Mapping]] = ..., yubikey: _Optional[_Union[YubiKeyPlacement, _Mapping]] = ..., backend: _Optional[_Union[Backend, str]] = ..., serial: _Optional[int] = ..., slot: _Optional[str] = ..., touch_policy: _Optional[_Union[TouchPolicy, str]] = ..., allow_default_mgmt_key: _Optional[bool] = ...) -> None: ...

class SoftwarePlacement(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class YubiKeyPlacement(_message.Message):
    __slots__ = ("serial", "slot", "touch_policy", "allow_default_mgmt_key")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    TOUCH_POLICY_FIELD_NUMBER: _ClassVar[int]
    ALLOW_DEFAULT_MGMT_KEY_FIELD_NUMBER: _ClassVar[int]
    serial: int
    slot: str
    touch_policy: TouchPolicy
    allow_default_mgmt_key: bool
    def __init__(self, serial: _Optional[int] = ..., slot: _Optional[str] = ..., touch_policy: _Optional[_Union[TouchPolicy, str]] = ..., allow_default_mgmt_key: _Optional[bool] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("gun", "role")
    GUN_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    gun: str
    role: str
    def __init__(self, gun: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[Key]
    def __init__(self, keys: _Optional[_Iterable[_Union[Key, _Mapping]]] = ...) -> None: ...

class GetKeyRequest(_message.Message):
    __slots__ = ("keyid",)
    KEYID_FIELD_NUMBER: _ClassVar[int]
    keyid: str
    def __init__(self, keyid: _Optional[str] = ...) -> None: ...

class DeleteKeyRequest(_message.Message):
    __slots__ = ("keyid", "confirm")
    KEYID_FIELD_NUMBER: _ClassVar[int]
    CONFIRM_FIELD_NUMBER: _ClassVar[int]
    keyid: str
    confirm: str
    def __init__(self, keyid: _Optional[str] = ..., confirm: _Optional[str] = ...) -> None: ...

class DeleteKeyResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: Key
    def __init__(self, deleted: _Optional[_Union[Key, _Mapping]] = ...) -> None: ...

class SignRawRequest(_message.Message):
    __slots__ = ("keyid", "payload", "format")
    KEYID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    keyid: str
    payload: bytes
    format: SignatureFormat
    def __init__(self, keyid: _Optional[str] = ..., payload: _Optional[bytes] = ..., format: _Optional[_Union[SignatureFormat, str]] = ...) -> None: ...

class SignRawResponse(_message.Message):
    __slots__ = ("keyid", "format", "signature")
    KEYID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    keyid: str
    format: SignatureFormat
    signature: str
    def __init__(self, keyid: _Optional[str] = ..., format: _Optional[_Union[SignatureFormat, str]] = ..., signature: _Optional[str] = ...) -> None: ...

class SignMetadataRequest(_message.Message):
    __slots__ = ("document", "keyids", "signatures_only")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    KEYIDS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_ONLY_FIELD_NUMBER: _ClassVar[int]
    document: bytes
    keyids: _containers.RepeatedScalarFieldContainer[str]
    signatures_only: bool
    def __init__(self, document: _Optional[bytes] = ..., keyids: _Optional[_Iterable[str]] = ..., signatures_only: _Optional[bool] = ...) -> None: ...

class SignMetadataResponse(_message.Message):
    __slots__ = ("document", "signed_by", "splice_start", "splice_end", "splice_text")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    SIGNED_BY_FIELD_NUMBER: _ClassVar[int]
    SPLICE_START_FIELD_NUMBER: _ClassVar[int]
    SPLICE_END_FIELD_NUMBER: _ClassVar[int]
    SPLICE_TEXT_FIELD_NUMBER: _ClassVar[int]
    document: bytes
    signed_by: _containers.RepeatedScalarFieldContainer[str]
    splice_start: int
    splice_end: int
    splice_text: bytes
    def __init__(self, document: _Optional[bytes] = ..., signed_by: _Optional[_Iterable[str]] = ..., splice_start: _Optional[int] = ..., splice_end: _Optional[int] = ..., splice_text: _Optional[bytes] = ...) -> None: ...

class UnlockRequest(_message.Message):
    __slots__ = ("passphrase",)
    PASSPHRASE_FIELD_NUMBER: _ClassVar[int]
    passphrase: str
    def __init__(self, passphrase: _Optional[str] = ...) -> None: ...

class LockRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("locked", "key_count", "store", "passphrase_source", "unreadable_files", "version")
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    KEY_COUNT_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    PASSPHRASE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    UNREADABLE_FILES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    locked: bool
    key_count: int
    store: str
    passphrase_source: str
    unreadable_files: _containers.RepeatedScalarFieldContainer[str]
    version: str
    def __init__(self, locked: _Optional[bool] = ..., key_count: _Optional[int] = ..., store: _Optional[str] = ..., passphrase_source: _Optional[str] = ..., unreadable_files: _Optional[_Iterable[str]] = ..., version: _Optional[str] = ...) -> None: ...

class ListDevicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDevicesResponse(_message.Message):
    __slots__ = ("devices",)
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    def __init__(self, devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("serial", "firmware", "reader", "pin_tries_left", "pin_cached", "keys", "default_management_key")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    PIN_TRIES_LEFT_FIELD_NUMBER: _ClassVar[int]
    PIN_CACHED_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MANAGEMENT_KEY_FIELD_NUMBER: _ClassVar[int]
    serial: int
    firmware: str
    reader: str
    pin_tries_left: int
    pin_cached: bool
    keys: _containers.RepeatedCompositeFieldContainer[DeviceKey]
    default_management_key: bool
    def __init__(self, serial: _Optional[int] = ..., firmware: _Optional[str] = ..., reader: _Optional[str] = ..., pin_tries_left: _Optional[int] = ..., pin_cached: _Optional[bool] = ..., keys: _Optional[_Iterable[_Union[DeviceKey, _Mapping]]] = ..., default_management_key: _Optional[bool] = ...) -> None: ...

class DeviceKey(_message.Message):
    __slots__ = ("slot", "keyid", "gun", "role")
    SLOT_FIELD_NUMBER: _ClassVar[int]
    KEYID_FIELD_NUMBER: _ClassVar[int]
    GUN_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    slot: str
    keyid: str
    gun: str
    role: str
    def __init__(self, slot: _Optional[str] = ..., keyid: _Optional[str] = ..., gun: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class WatchDevicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeviceEvent(_message.Message):
    __slots__ = ("kind", "serial", "reader")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[DeviceEvent.Kind]
        KIND_PRESENT: _ClassVar[DeviceEvent.Kind]
        KIND_INSERTED: _ClassVar[DeviceEvent.Kind]
        KIND_REMOVED: _ClassVar[DeviceEvent.Kind]
    KIND_UNSPECIFIED: DeviceEvent.Kind
    KIND_PRESENT: DeviceEvent.Kind
    KIND_INSERTED: DeviceEvent.Kind
    KIND_REMOVED: DeviceEvent.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    kind: DeviceEvent.Kind
    serial: int
    reader: str
    def __init__(self, kind: _Optional[_Union[DeviceEvent.Kind, str]] = ..., serial: _Optional[int] = ..., reader: _Optional[str] = ...) -> None: ...

class InitDeviceRequest(_message.Message):
    __slots__ = ("serial", "pin", "new_pin", "puk", "new_puk")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    NEW_PIN_FIELD_NUMBER: _ClassVar[int]
    PUK_FIELD_NUMBER: _ClassVar[int]
    NEW_PUK_FIELD_NUMBER: _ClassVar[int]
    serial: int
    pin: str
    new_pin: str
    puk: str
    new_puk: str
    def __init__(self, serial: _Optional[int] = ..., pin: _Optional[str] = ..., new_pin: _Optional[str] = ..., puk: _Optional[str] = ..., new_puk: _Optional[str] = ...) -> None: ...

class InitDeviceResponse(_message.Message):
    __slots__ = ("serial", "management_key_algorithm", "management_key_storage", "pin_changed", "puk_changed")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    MANAGEMENT_KEY_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    MANAGEMENT_KEY_STORAGE_FIELD_NUMBER: _ClassVar[int]
    PIN_CHANGED_FIELD_NUMBER: _ClassVar[int]
    PUK_CHANGED_FIELD_NUMBER: _ClassVar[int]
    serial: int
    management_key_algorithm: str
    management_key_storage: str
    pin_changed: bool
    puk_changed: bool
    def __init__(self, serial: _Optional[int] = ..., management_key_algorithm: _Optional[str] = ..., management_key_storage: _Optional[str] = ..., pin_changed: _Optional[bool] = ..., puk_changed: _Optional[bool] = ...) -> None: ...

class UnlockDeviceRequest(_message.Message):
    __slots__ = ("serial", "pin", "remember", "force")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    REMEMBER_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    serial: int
    pin: str
    remember: bool
    force: bool
    def __init__(self, serial: _Optional[int] = ..., pin: _Optional[str] = ..., remember: _Optional[bool] = ..., force: _Optional[bool] = ...) -> None: ...

class UnlockDeviceResponse(_message.Message):
    __slots__ = ("serial", "pin_tries_left", "cache_seconds", "remembered")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    PIN_TRIES_LEFT_FIELD_NUMBER: _ClassVar[int]
    CACHE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REMEMBERED_FIELD_NUMBER: _ClassVar[int]
    serial: int
    pin_tries_left: int
    cache_seconds: int
    remembered: bool
    def __init__(self, serial: _Optional[int] = ..., pin_tries_left: _Optional[int] = ..., cache_seconds: _Optional[int] = ..., remembered: _Optional[bool] = ...) -> None: ...

class AttestKeyRequest(_message.Message):
    __slots__ = ("keyid",)
    KEYID_FIELD_NUMBER: _ClassVar[int]
    keyid: str
    def __init__(self, keyid: _Optional[str] = ...) -> None: ...

class AttestKeyResponse(_message.Message):
    __slots__ = ("keyid", "serial", "slot", "chain", "root_subject")
    KEYID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    ROOT_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    keyid: str
    serial: int
    slot: str
    chain: _containers.RepeatedScalarFieldContainer[bytes]
    root_subject: str
    def __init__(self, keyid: _Optional[str] = ..., serial: _Optional[int] = ..., slot: _Optional[str] = ..., chain: _Optional[_Iterable[bytes]] = ..., root_subject: _Optional[str] = ...) -> None: ...

class UnixIdentity(_message.Message):
    __slots__ = ("uid", "gid")
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    uid: int
    gid: int
    def __init__(self, uid: _Optional[int] = ..., gid: _Optional[int] = ...) -> None: ...

class CheckRequest(_message.Message):
    __slots__ = ("unix", "certificate", "rpc", "keyid")
    UNIX_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    KEYID_FIELD_NUMBER: _ClassVar[int]
    unix: UnixIdentity
    certificate: bytes
    rpc: str
    keyid: str
    def __init__(self, unix: _Optional[_Union[UnixIdentity, _Mapping]] = ..., certificate: _Optional[bytes] = ..., rpc: _Optional[str] = ..., keyid: _Optional[str] = ...) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ("allowed", "caller", "rpc", "permission", "rule", "reason")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    caller: str
    rpc: str
    permission: str
    rule: str
    reason: str
    def __init__(self, allowed: _Optional[bool] = ..., caller: _Optional[str] = ..., rpc: _Optional[str] = ..., permission: _Optional[str] = ..., rule: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class VerifyAuditRequest(_message.Message):
    __slots__ = ("files",)
    FILES_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, files: _Optional[_Iterable[str]] = ...) -> None: ...

class VerifyAuditResponse(_message.Message):
    __slots__ = ("files", "records", "first_seq", "last_seq", "bad")
    FILES_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    BAD_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedScalarFieldContainer[str]
    records: int
    first_seq: int
    last_seq: int
    bad: BadAuditRecord
    def __init__(self, files: _Optional[_Iterable[str]] = ..., records: _Optional[int] = ..., first_seq: _Optional[int] = ..., last_seq: _Optional[int] = ..., bad: _Optional[_Union[BadAuditRecord, _Mapping]] = ...) -> None: ...

class BadAuditRecord(_message.Message):
    __slots__ = ("file", "line", "seq", "reason")
    FILE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    file: str
    line: int
    seq: int
    reason: str
    def __init__(self, file: _Optional[str] = ..., line: _Optional[int] = ..., seq: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class TailAuditRequest(_message.Message):
    __slots__ = ("last", "follow")
    LAST_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    last: int
    follow: bool
    def __init__(self, last: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("json",)
    JSON_FIELD_NUMBER: _ClassVar[int]
    json: str
    def __init__(self, json: _Optional[str] = ...) -> None: ...

class BackupRequest(_message.Message):
    __slots__ = ("keyids", "gun", "passphrase", "recipient")
    KEYIDS_FIELD_NUMBER: _ClassVar[int]
    GUN_FIELD_NUMBER: _ClassVar[int]
    PASSPHRASE_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    keyids: _containers.RepeatedScalarFieldContainer[str]
    gun: str
    passphrase: str
    recipient: str
    def __init__(self, keyids: _Optional[_Iterable[str]] = ..., gun: _Optional[str] = ..., passphrase: _Optional[str] = ..., recipient: _Optional[str] = ...) -> None: ...

class BackupResponse(_message.Message):
    __slots__ = ("bundle", "keys", "sha256", "recipient_fingerprint")
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    bundle: bytes
    keys: _containers.RepeatedCompositeFieldContainer[Key]
    sha256: str
    recipient_fingerprint: str
    def __init__(self, bundle: _Optional[bytes] = ..., keys: _Optional[_Iterable[_Union[Key, _Mapping]]] = ..., sha256: _Optional[str] = ..., recipient_fingerprint: _Optional[str] = ...) -> None: ...

class RestoreRequest(_message.Message):
    __slots__ = ("bundle", "passphrase", "dry_run")
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    PASSPHRASE_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    bundle: bytes
    passphrase: str
    dry_run: bool
    def __init__(self, bundle: _Optional[bytes] = ..., passphrase: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class RestoreResponse(_message.Message):
    __slots__ = ("imported", "skipped")
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    imported: _containers.RepeatedCompositeFieldContainer[Key]
    skipped: _containers.RepeatedCompositeFieldContainer[Key]
    def __init__(self, imported: _Optional[_Iterable[_Union[Key, _Mapping]]] = ..., skipped: _Optional[_Iterable[_Union[Key, _Mapping]]] = ...) -> None: ...

class NotaryKeyFile(_message.Message):
    __slots__ = ("name", "contents")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    contents: bytes
    def __init__(self, name: _Optional[str] = ..., contents: _Optional[bytes] = ...) -> None: ...

class ImportNotaryKeysRequest(_message.Message):
    __slots__ = ("files", "passphrases", "gun", "dry_run")
    class PassphrasesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FILES_FIELD_NUMBER: _ClassVar[int]
    PASSPHRASES_FIELD_NUMBER: _ClassVar[int]
    GUN_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[NotaryKeyFile]
    passphrases: _containers.ScalarMap[str, str]
    gun: str
    dry_run: bool
    def __init__(self, files: _Optional[_Iterable[_Union[NotaryKeyFile, _Mapping]]] = ..., passphrases: _Optional[_Mapping[str, str]] = ..., gun: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class ImportNotaryKeysResponse(_message.Message):
    __slots__ = ("keys", "skipped", "passphrases_needed")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    PASSPHRASES_NEEDED_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[NotaryKeyFound]
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedFile]
    passphrases_needed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, keys: _Optional[_Iterable[_Union[NotaryKeyFound, _Mapping]]] = ..., skipped: _Optional[_Iterable[_Union[SkippedFile, _Mapping]]] = ..., passphrases_needed: _Optional[_Iterable[str]] = ...) -> None: ...

class NotaryKeyFound(_message.Message):
    __slots__ = ("file", "role", "gun", "encrypted", "key", "already_present")
    FILE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    GUN_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PRESENT_FIELD_NUMBER: _ClassVar[int]
    file: str
    role: str
    gun: str
    encrypted: bool
    key: Key
    already_present: bool
    def __init__(self, file: _Optional[str] = ..., role: _Optional[str] = ..., gun: _Optional[str] = ..., encrypted: _Optional[bool] = ..., key: _Optional[_Union[Key, _Mapping]] = ..., already_present: _Optional[bool] = ...) -> None: ...

class SkippedFile(_message.Message):
    __slots__ = ("file", "reason")
    FILE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    file: str
    reason: str
    def __init__(self, file: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ExportNotaryKeysRequest(_message.Message):
    __slots__ = ("keyids", "gun", "passphrases", "bundle")
    class PassphrasesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEYIDS_FIELD_NUMBER: _ClassVar[int]
    GUN_FIELD_NUMBER: _ClassVar[int]
    PASSPHRASES_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    keyids: _containers.RepeatedScalarFieldContainer[str]
    gun: str
    passphrases: _containers.ScalarMap[str, str]
    bundle: bool
    def __init__(self, keyids: _Optional[_Iterable[str]] = ..., gun: _Optional[str] = ..., passphrases: _Optional[_Mapping[str, str]] = ..., bundle: _Optional[bool] = ...) -> None: ...

class ExportNotaryKeysResponse(_message.Message):
    __slots__ = ("files", "keys")
    FILES_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[NotaryKeyFile]
    keys: _containers.RepeatedCompositeFieldContainer[Key]
    def __init__(self, files: _Optional[_Iterable[_Union[NotaryKeyFile, _Mapping]]] = ..., keys: _Optional[_Iterable[_Union[Key, _Mapping]]] = ...) -> None: ...

class MoveToYubiKeyRequest(_message.Message):
    __slots__ = ("keyid", "serials", "slot", "no_backup_needed", "keep_software", "touch_policy")
    KEYID_FIELD_NUMBER: _ClassVar[int]
    SERIALS_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    NO_BACKUP_NEEDED_FIELD_NUMBER: _ClassVar[int]
    KEEP_SOFTWARE_FIELD_NUMBER: _ClassVar[int]
    TOUCH_POLICY_FIELD_NUMBER: _ClassVar[int]
    keyid: str
    serials: _containers.RepeatedScalarFieldContainer[int]
    slot: str
    no_backup_needed: bool
    keep_software: bool
    touch_policy: TouchPolicy
    def __init__(self, keyid: _Optional[str] = ..., serials: _Optional[_Iterable[int]] = ..., slot: _Optional[str] = ..., no_backup_needed: _Optional[bool] = ..., keep_software: _Optional[bool] = ..., touch_policy: _Optional[_Union[TouchPolicy, str]] = ...) -> None: ...

class MoveToYubiKeyResponse(_message.Message):
    __slots__ = ("keys", "software_copy_deleted")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_COPY_DELETED_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[Key]
    software_copy_deleted: bool
    def __init__(self, keys: _Optional[_Iterable[_Union[Key, _Mapping]]] = ..., software_copy_deleted: _Optional[bool] = ...) -> None: ...

class ReceiveTransferRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReceiveTransferResponse(_message.Message):
    __slots__ = ("recipient", "fingerprint", "expires_at")
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    recipient: str
    fingerprint: str
    expires_at: str
    def __init__(self, recipient: _Optional[str] = ..., fingerprint: _Optional[str] = ..., expires_at: _Optional[str] = ...) -> None: ...

class AcceptTransferRequest(_message.Message):
    __slots__ = ("bundle", "dry_run")
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    bundle: bytes
    dry_run: bool
    def __init__(self, bundle: _Optional[bytes] = ..., dry_run: _Optional[bool] = ...) -> None: ...
