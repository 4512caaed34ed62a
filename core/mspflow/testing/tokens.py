"""Signed JWTs for simulators: an RSA signing key, its public JWK, and tokens signed with it.

A simulator of an identity provider (the Bot Framework's OpenID metadata, say) publishes
:meth:`SigningKey.jwk` under its ``jwks_uri`` and signs the tokens it sends with :meth:`SigningKey.sign`,
so the core's :func:`mspflow.inbound.verify.verify_jwt` checks them exactly as it checks real ones.

Examples::

    key = SigningKey("sim-key-1")
    jwks = {"keys": [key.jwk()]}
    token = key.sign({"iss": "https://api.botframework.com", "aud": app_id, "exp": time.time() + 3600,
                      "serviceurl": "https://smba.trafficmanager.net/amer/"})
"""

from __future__ import annotations

import json
from typing import Any


class SigningKey:
    """A fresh 2048-bit RSA key named ``kid`` (generated once per instance)."""

    def __init__(self, kid: str, endorsements: tuple[str, ...] | None = None) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.kid = kid
        self.endorsements = endorsements
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK (``kty``, ``n``, ``e``, ``kid``, ``use``, ``alg``, and ``endorsements``, the
        channels the key may sign for, when given)."""
        from jwt.algorithms import RSAAlgorithm

        public: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self._private.public_key()))
        extra = {"endorsements": list(self.endorsements)} if self.endorsements is not None else {}
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256", **extra}

    def sign(self, claims: dict[str, Any]) -> str:
        """``claims`` as an RS256 JWT whose header names this key."""
        import jwt

        return jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid})


__all__ = ["SigningKey"]
