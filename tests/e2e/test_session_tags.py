"""Issue 3: session tags and source identity from the `https://aws.amazon.com/tags` and
`https://aws.amazon.com/source_identity` claims, evaluated as aws:PrincipalTag/* by the engine."""

from __future__ import annotations

from keyless_e2e import Issuer, Keyless, assert_error

TAGS = "https://aws.amazon.com/tags"
SOURCE_IDENTITY = "https://aws.amazon.com/source_identity"


def tags(team: str) -> dict:
    return {"principal_tags": {"team": [team]}, "transitive_tag_keys": ["team"]}


def decode_garbage(keyless: Keyless, creds: dict[str, str]) -> tuple[str, int]:
    from botocore.exceptions import ClientError

    try:
        keyless.boto3_client(creds).decode_authorization_message(EncodedMessage="not-a-real-message")
    except ClientError as exc:
        return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("decoding garbage succeeded")


def test_principal_tag_from_claim_allows(keyless: Keyless, issuer: Issuer) -> None:
    res = keyless.awiwi(issuer.gha_token(**{TAGS: tags("blue")}), role="tagged", session="blue")
    assert res.status == 200 and res.credentials, res
    # Allowed to call DecodeAuthorizationMessage, so the garbage message itself is the error.
    assert decode_garbage(keyless, res.credentials) == ("InvalidAuthorizationMessageException", 400)


def test_principal_tag_mismatch_denies(keyless: Keyless, issuer: Issuer) -> None:
    res = keyless.awiwi(issuer.gha_token(**{TAGS: tags("red")}), role="tagged", session="red")
    assert res.status == 200 and res.credentials, res
    assert decode_garbage(keyless, res.credentials) == ("AccessDenied", 403)


def test_no_tags_denies(keyless: Keyless, issuer: Issuer) -> None:
    res = keyless.awiwi(issuer.gha_token(), role="tagged", session="untagged")
    assert res.status == 200 and res.credentials, res
    assert decode_garbage(keyless, res.credentials) == ("AccessDenied", 403)


def test_tags_need_tag_session_in_trust(keyless: Keyless, issuer: Issuer) -> None:
    """Role gha's trust policy does not allow sts:TagSession: a token carrying tags is refused."""
    res = keyless.awiwi(issuer.gha_token(**{TAGS: tags("blue")}), role="gha", session="tags-no-trust")
    assert_error(res, "AccessDenied", 403)


def test_source_identity_from_claim(keyless: Keyless, issuer: Issuer) -> None:
    res = keyless.awiwi(issuer.gha_token(**{SOURCE_IDENTITY: "octocat"}), role="tagged", session="srcid")
    assert res.status == 200 and res.credentials, res
    assert res.values.get("SourceIdentity") == "octocat", res
