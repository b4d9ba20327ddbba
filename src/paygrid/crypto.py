"""Encryption at rest for the secrets paygrid must be able to read back (webhook signing
secrets now, provider credentials later): AES-256-GCM under a key ring.

``PAYGRID_ENCRYPTION_KEY`` holds one or more comma-separated base64 keys of 32 bytes; the
first encrypts, all decrypt, so a key can be rotated without losing old ciphertexts. When it
is unset, a key is generated once into ``<data dir>/encryption.key`` (mode 0600), which suits
the embedded default and development.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_NONCE_BYTES = 12
_KEY_ID_BYTES = 4
_VERSION = b"\x01"


class DecryptionFailed(Exception):
    """The ciphertext was made with a key that is not in the ring, or was altered."""


class KeyRing:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys or any(len(k) != KEY_BYTES for k in keys):
            raise ValueError(f"encryption keys must be {KEY_BYTES} bytes each")
        self._by_id = {_key_id(k): AESGCM(k) for k in keys}
        self._active_id = _key_id(keys[0])

    @classmethod
    def from_setting(cls, setting: str) -> KeyRing:
        return cls([base64.b64decode(part.strip()) for part in setting.split(",") if part.strip()])

    @classmethod
    def from_file(cls, path: Path) -> KeyRing:
        """Load the development key ring, creating its key on first use."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(base64.b64encode(os.urandom(KEY_BYTES)).decode())
        return cls.from_setting(path.read_text())

    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        """Encrypt, binding the ciphertext to ``context`` (e.g. the owning object's id) so a
        ciphertext copied onto another row does not decrypt."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._by_id[self._active_id].encrypt(nonce, plaintext.encode(), context.encode())
        return _VERSION + self._active_id + nonce + sealed

    def decrypt(self, ciphertext: bytes, *, context: str) -> str:
        key_id = ciphertext[1 : 1 + _KEY_ID_BYTES]
        cipher = self._by_id.get(key_id)
        if ciphertext[:1] != _VERSION or cipher is None:
            raise DecryptionFailed("unknown key or format")
        nonce_start = 1 + _KEY_ID_BYTES
        nonce = ciphertext[nonce_start : nonce_start + _NONCE_BYTES]
        try:
            plain = cipher.decrypt(
                nonce, ciphertext[nonce_start + _NONCE_BYTES :], context.encode()
            )
        except Exception as error:  # cryptography raises InvalidTag
            raise DecryptionFailed("ciphertext does not verify") from error
        return plain.decode()

    def is_current(self, ciphertext: bytes) -> bool:
        """Whether ``ciphertext`` is under the active key (re-encryption can skip it)."""
        return ciphertext[1 : 1 + _KEY_ID_BYTES] == self._active_id


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:_KEY_ID_BYTES]
