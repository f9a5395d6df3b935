"""OAuth 2.0 errors (RFC 6749 §5.2): the body a client library expects, not problem+json."""


class OAuthError(Exception):
    """``error`` is an RFC 6749 code; ``invalid_client`` answers 401 (so failed client
    authentications count towards the per-address limit), every other 400."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    @property
    def status(self) -> int:
        return 401 if self.error == "invalid_client" else 400

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description)


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)
