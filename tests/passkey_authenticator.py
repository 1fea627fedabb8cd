"""A software passkey for route tests: an ES256 key pair that answers WebAuthn options as a browser would.

`create(options, origin)` gives the JSON of navigator.credentials.create() ("none" attestation);
`get(options, origin)` the JSON of navigator.credentials.get(), its sign count one higher each time
(or `sign_count=` to present a chosen one, as a copied authenticator would).
"""
from __future__ import annotations

import hashlib
import json
import secrets
from base64 import urlsafe_b64decode, urlsafe_b64encode

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftwarePasskey:
    def __init__(self, rp_id: str = "localhost"):
        self.rp_id = rp_id
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(32)
        self.sign_count = 0
        self.user_handle: bytes | None = None

    def _cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _auth_data(self, flags: int, count: int, attested: bytes = b"") -> bytes:
        return hashlib.sha256(self.rp_id.encode()).digest() + bytes([flags]) + count.to_bytes(4, "big") + attested

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}).encode()

    def create(self, options: dict, origin: str = "http://localhost") -> str:
        assert options["rp"]["id"] == self.rp_id
        self.user_handle = unb64url(options["user"]["id"])
        attested = (bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id
                    + self._cose_public_key())
        auth_data = self._auth_data(UP | UV | AT, self.sign_count, attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps({
            "id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
            "response": {"clientDataJSON": b64url(self._client_data("webauthn.create", options["challenge"], origin)),
                         "attestationObject": b64url(attestation), "transports": ["internal"]},
            "clientExtensionResults": {}, "authenticatorAttachment": "platform"})

    def get(self, options: dict, origin: str = "http://localhost", *, sign_count: int | None = None,
            signing_key: ec.EllipticCurvePrivateKey | None = None) -> str:
        if sign_count is None:
            self.sign_count += 1
            sign_count = self.sign_count
        auth_data = self._auth_data(UP | UV, sign_count)
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = (signing_key or self.key).sign(auth_data + hashlib.sha256(client_data).digest(),
                                                   ec.ECDSA(hashes.SHA256()))
        return json.dumps({
            "id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
            "response": {"clientDataJSON": b64url(client_data), "authenticatorData": b64url(auth_data),
                         "signature": b64url(signature),
                         "userHandle": b64url(self.user_handle) if self.user_handle else None},
            "clientExtensionResults": {}})
