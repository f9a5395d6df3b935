"""``/.well-known/smart-configuration`` (SMART App Launch 2.x §Conformance, the fields a Backend
Services client reads: https://hl7.org/fhir/smart-app-launch/conformance.html). Pure."""

from typing import TypedDict

from services.smart import scopes
from services.smart.assertions import ALGORITHMS

TOKEN_PATH = "/auth/token"  # noqa: S105  (a path, not a secret)


def token_url(base: str) -> str:
    return base + TOKEN_PATH


class SmartConfiguration(TypedDict):
    issuer: str
    token_endpoint: str
    token_endpoint_auth_methods_supported: list[str]
    token_endpoint_auth_signing_alg_values_supported: list[str]
    grant_types_supported: list[str]
    scopes_supported: list[str]
    response_types_supported: list[str]
    capabilities: list[str]


def smart_configuration(base: str) -> SmartConfiguration:
    return {
        "issuer": base,
        "token_endpoint": token_url(base),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": scopes.supported(),
        "response_types_supported": ["token"],
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    }
