"""Verifies a Basalt access token with an independent JOSE library (joserfc) against the JWKS.

usage: verify_jwt.py JWKS_FILE TOKEN_FILE ISSUER AUDIENCE
Prints the verified claims as JSON; exits non-zero when the token does not verify.
"""
import json
import sys

from joserfc import jwt
from joserfc.jwk import KeySet


def main() -> int:
    jwks_path, token_path, issuer, audience = sys.argv[1:5]
    with open(jwks_path) as f:
        keys = KeySet.import_key_set(json.load(f))
    with open(token_path) as f:
        token = f.read().strip()
    decoded = jwt.decode(token, keys, algorithms=["EdDSA"])
    if decoded.header.get("alg") != "EdDSA" or decoded.header.get("typ") != "JWT":
        print("unexpected header", decoded.header, file=sys.stderr)
        return 1
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        sub={"essential": True},
        exp={"essential": True},
        nbf={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
    )
    registry.validate(decoded.claims)
    print(json.dumps(decoded.claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
