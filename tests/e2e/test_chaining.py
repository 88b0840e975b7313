"""Issue 3: chained AssumeRole (signed with keyless credentials) narrowed by a session policy,
guardrail denials decoded with `aws sts decode-authorization-message`, the one-hour chaining limit."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from keyless_e2e import ACCOUNT, AUD, Issuer, Keyless, _stop, default_config, encoded_auth_message, start_keyless


@pytest.fixture(scope="module")
def gha_creds(keyless: Keyless, issuer: Issuer) -> dict[str, str]:
    res = keyless.awiwi(issuer.gha_token(), session="chain-src")
    assert res.credentials, res
    return res.credentials


def creds_env(keyless: Keyless, c: dict[str, str]) -> dict[str, str]:
    return keyless.client_env(AWS_ACCESS_KEY_ID=c["AccessKeyId"], AWS_SECRET_ACCESS_KEY=c["SecretAccessKey"],
                              AWS_SESSION_TOKEN=c["SessionToken"])


def only_caller_identity() -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]})


def locked_denial_message(keyless: Keyless, gha_creds: dict[str, str]) -> str:
    with pytest.raises(ClientError) as ei:
        keyless.boto3_client(gha_creds).assume_role(RoleArn=keyless.role_arn("locked"), RoleSessionName="nope")
    err = ei.value.response
    assert err["Error"]["Code"] == "AccessDenied", err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "Credentials" not in err
    return err["Error"]["Message"]


def test_chained_assume_role_boto3(keyless: Keyless, gha_creds: dict[str, str]) -> None:
    out = keyless.boto3_client(gha_creds).assume_role(RoleArn=keyless.role_arn("deploy"), RoleSessionName="chained")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/chained"
    ident = keyless.boto3_client(out["Credentials"]).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/chained"


def test_chained_assume_role_js(keyless: Keyless, gha_creds: dict[str, str]) -> None:
    out = keyless.node("assume-role", keyless.role_arn("deploy"), "js-chained", only_caller_identity(),
                       env=creds_env(keyless, gha_creds))
    assert "error" not in out, out
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/js-chained"
    assert out["PackedPolicySize"] > 0


def test_chained_session_policy_narrows(keyless: Keyless, gha_creds: dict[str, str]) -> None:
    message = locked_denial_message(keyless, gha_creds)
    encoded = encoded_auth_message(message)
    # Full deploy session: may decode messages.
    full = keyless.boto3_client(gha_creds).assume_role(RoleArn=keyless.role_arn("deploy"), RoleSessionName="full")
    decoded = keyless.boto3_client(full["Credentials"]).decode_authorization_message(EncodedMessage=encoded)
    assert decoded["DecodedMessage"]
    # Narrowed deploy session: the session policy only allows GetCallerIdentity.
    narrowed = keyless.boto3_client(gha_creds).assume_role(
        RoleArn=keyless.role_arn("deploy"), RoleSessionName="narrow", Policy=only_caller_identity())
    assert narrowed["PackedPolicySize"] > 0
    nclient = keyless.boto3_client(narrowed["Credentials"])
    assert nclient.get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/narrow"
    with pytest.raises(ClientError) as ei:
        nclient.decode_authorization_message(EncodedMessage=encoded)
    assert ei.value.response["Error"]["Code"] == "AccessDenied", ei.value.response
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # Nor can the narrowed session chain further (its session policy allows no sts:AssumeRole).
    with pytest.raises(ClientError) as ei2:
        nclient.assume_role(RoleArn=keyless.role_arn("deploy"), RoleSessionName="again")
    assert ei2.value.response["Error"]["Code"] == "AccessDenied"
    assert "Credentials" not in ei2.value.response


def test_chaining_limit_one_hour(keyless: Keyless, gha_creds: dict[str, str]) -> None:
    with pytest.raises(ClientError) as ei:
        keyless.boto3_client(gha_creds).assume_role(RoleArn=keyless.role_arn("deploy"), RoleSessionName="long",
                                                    DurationSeconds=7200)
    assert ei.value.response["Error"]["Code"] == "ValidationError", ei.value.response
    assert "Credentials" not in ei.value.response


def test_chained_malformed_session_policy(keyless: Keyless, gha_creds: dict[str, str]) -> None:
    with pytest.raises(ClientError) as ei:
        keyless.boto3_client(gha_creds).assume_role(RoleArn=keyless.role_arn("deploy"), RoleSessionName="bad",
                                                    Policy="{not json")
    assert ei.value.response["Error"]["Code"] == "MalformedPolicyDocument", ei.value.response
    assert "Credentials" not in ei.value.response


def test_guardrail_denial_decoded_with_cli(keyless: Keyless, gha_creds: dict[str, str]) -> None:
    encoded = encoded_auth_message(locked_denial_message(keyless, gha_creds))
    cp = keyless.aws("sts", "decode-authorization-message", "--encoded-message", encoded,
                     env=creds_env(keyless, gha_creds))
    decoded = json.loads(cp.stdout)["DecodedMessage"]
    # The engine's explanation names what decided: the guardrail and its statement.
    assert "no-locked-role" in decoded or "DenyLockedRole" in decoded, decoded
    assert "sts:AssumeRole" in decoded, decoded
    assert "locked" in decoded, decoded


def test_decode_garbage_message(keyless: Keyless, gha_creds: dict[str, str]) -> None:
    cp = keyless.aws("sts", "decode-authorization-message", "--encoded-message", "garbage-not-a-message",
                     env=creds_env(keyless, gha_creds), check=False)
    assert cp.returncode != 0
    assert "InvalidAuthorizationMessageException" in cp.stderr, cp.stderr


def test_decode_forbidden_without_permission(keyless: Keyless, gha_creds: dict[str, str]) -> None:
    encoded = encoded_auth_message(locked_denial_message(keyless, gha_creds))
    narrowed = keyless.boto3_client(gha_creds).assume_role(
        RoleArn=keyless.role_arn("deploy"), RoleSessionName="nodecode", Policy=only_caller_identity())
    cp = keyless.aws("sts", "decode-authorization-message", "--encoded-message", encoded,
                     env=creds_env(keyless, narrowed["Credentials"]), check=False)
    assert cp.returncode != 0
    assert "AccessDenied" in cp.stderr, cp.stderr


def test_a_message_does_not_decode_in_another_account(workdir: Path, issuer: Issuer) -> None:
    """Encoded messages land in CI logs, often public ones, and one server serves many accounts:
    a principal allowed sts:DecodeAuthorizationMessage in another account must not read this
    account's policies and request context."""
    other = "210987654321"
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::{other}:oidc-provider/{issuer.host}"},
        "Action": "sts:AssumeRoleWithWebIdentity"}]})
    decoder = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:DecodeAuthorizationMessage", "Resource": "*"}]})
    extra = "\n".join([
        "", "[[accounts]]", f'id = "{other}"', 'name = "elsewhere"',
        "", "[[providers]]", f'account = "{other}"', f'url = "{issuer.url}"', f'client_ids = ["{AUD}"]',
        "allow_http = true",
        "", "[[roles]]", f'account = "{other}"', 'name = "decoder"', f"trust_policy = '''{trust}'''",
        f"policies = {{ decode = '''{decoder}''' }}", ""])
    srv = start_keyless(workdir / "cross", default_config(issuer, workdir / "cross" / "data") + extra)
    try:
        creds = srv.awiwi(issuer.gha_token(), session="cross-src").credentials
        assert creds
        encoded = encoded_auth_message(locked_denial_message(srv, creds))
        theirs = srv.awiwi(issuer.gha_token(), RoleArn=f"arn:aws:iam::{other}:role/decoder",
                           session="cross").credentials
        assert theirs
        with pytest.raises(ClientError) as ei:
            srv.boto3_client(theirs).decode_authorization_message(EncodedMessage=encoded)
        err = ei.value.response
        assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == \
            ("InvalidAuthorizationMessageException", 400), err
        assert "DecodedMessage" not in err
        # In its own account it decodes.
        mine = srv.boto3_client(creds).decode_authorization_message(EncodedMessage=encoded)
        assert json.loads(mine["DecodedMessage"])["allowed"] is False
    finally:
        _stop(srv.proc)


def test_a_message_decodes_after_a_restart_and_a_key_ring_rotation(workdir: Path, issuer: Issuer) -> None:
    srv = start_keyless(workdir / "keyless", default_config(issuer, workdir / "keyless" / "data"))
    try:
        creds = srv.awiwi(issuer.gha_token(), session="restart-src").credentials
        assert creds
        encoded = encoded_auth_message(locked_denial_message(srv, creds))
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(timeout=20)
        srv = start_keyless(workdir / "keyless", srv.config.read_text())
        # The message was sealed with a key derived from the ring, not one of the old process.
        decoded = json.loads(srv.boto3_client(creds).decode_authorization_message(
            EncodedMessage=encoded)["DecodedMessage"])
        assert decoded["allowed"] is False and "locked" in decoded["context"]["resource"], decoded
        # After a rotation the new version seals, and the old version's message still opens.
        assert srv.rotate_keyring().returncode == 0
        time.sleep(1.5)  # the server reloads the ring within a second
        newer = encoded_auth_message(locked_denial_message(srv, creds))
        for message in (encoded, newer):
            out = srv.boto3_client(creds).decode_authorization_message(EncodedMessage=message)
            assert json.loads(out["DecodedMessage"])["allowed"] is False
        # A message whose bytes were altered is refused.
        tampered = encoded[:-3] + ("A" if encoded[-3] != "A" else "B") + encoded[-2:]
        with pytest.raises(ClientError) as ei:
            srv.boto3_client(creds).decode_authorization_message(EncodedMessage=tampered)
        assert ei.value.response["Error"]["Code"] == "InvalidAuthorizationMessageException"
    finally:
        _stop(srv.proc)


def test_provided_contexts_are_refused_not_dropped(keyless: Keyless, gha_creds: dict[str, str]) -> None:
    """A trusted context assertion is AWS-signed Identity Center state keyless cannot check:
    AssumeRole with one is refused, not answered with a session that silently lacks it."""
    before = keyless.issued_total()
    with pytest.raises(ClientError) as ei:
        keyless.boto3_client(gha_creds).assume_role(
            RoleArn=keyless.role_arn("deploy"), RoleSessionName="ctx",
            ProvidedContexts=[{"ProviderArn": "arn:aws:iam::aws:contextProvider/IdentityCenter",
                               "ContextAssertion": "trusted-context-assertion"}])
    err = ei.value.response
    assert err["Error"]["Code"] == "InvalidParameterValue", err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "ProvidedContexts" in err["Error"]["Message"]
    assert "Credentials" not in err
    if before is not None:
        assert keyless.issued_total() == before


def test_a_carried_source_identity_needs_set_source_identity_in_the_next_trust_policy(
        workdir: Path, issuer: Issuer) -> None:
    """In role chaining AWS requires sts:SetSourceIdentity of the target's trust policy when the
    new session will bear a source identity, set now or carried from the caller: the target's
    owner decides whether such sessions may enter. keyless checked it only when one was set now."""
    from keyless_e2e import policy, role_toml

    h, fed = issuer.host, issuer.provider_arn
    gha = f"arn:aws:iam::{ACCOUNT}:role/src"
    src_trust = policy({"Effect": "Allow", "Principal": {"Federated": fed},
                        "Action": ["sts:AssumeRoleWithWebIdentity", "sts:SetSourceIdentity"],
                        "Condition": {"StringEquals": {f"{h}:aud": AUD}}})
    chain = {"chain": policy({"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                              "Resource": "*"}),
             "inspect": policy({"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"})}
    open_trust = policy({"Effect": "Allow", "Principal": {"AWS": gha}, "Action": "sts:AssumeRole"})
    strict_trust = policy({"Effect": "Allow", "Principal": {"AWS": gha},
                           "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"]})
    config = (default_config(issuer, workdir / "srcid" / "data") + role_toml("src", src_trust, chain)
              + role_toml("open", open_trust, chain) + role_toml("strict", strict_trust, chain) + "\n")
    srv = start_keyless(workdir / "srcid", config)
    try:
        with_identity = srv.awiwi(issuer.gha_token(**{"https://aws.amazon.com/source_identity": "octocat"}),
                                  role="src", session="with-srcid").credentials
        without = srv.awiwi(issuer.gha_token(), role="src", session="no-srcid").credentials
        assert with_identity and without
        # Carried into a role whose trust policy does not allow it: refused, nothing issued.
        before = srv.issued_total()
        with pytest.raises(ClientError) as ei:
            srv.boto3_client(with_identity).assume_role(RoleArn=srv.role_arn("open"), RoleSessionName="carry")
        err = ei.value.response
        assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403), err
        assert "Credentials" not in err
        if before is not None:
            assert srv.issued_total() == before
        # Allowed where the trust policy allows it, and the identity is carried.
        out = srv.boto3_client(with_identity).assume_role(RoleArn=srv.role_arn("strict"), RoleSessionName="carry")
        assert out["SourceIdentity"] == "octocat"
        # A session without one chains into the open role as before.
        out = srv.boto3_client(without).assume_role(RoleArn=srv.role_arn("open"), RoleSessionName="plain")
        assert "SourceIdentity" not in out
    finally:
        _stop(srv.proc)
