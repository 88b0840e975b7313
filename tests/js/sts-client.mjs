// The AWS SDK for JavaScript v3 as a real STS client for the keyless end-to-end tests.
//
// Usage (the endpoint comes from AWS_ENDPOINT_URL_STS, credentials from the SDK's default chain,
// e.g. AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE for the web-identity provider):
//   node sts-client.mjs caller-identity
//       GetCallerIdentity with the default credential chain.
//   node sts-client.mjs web-identity-caller-identity
//       fromTokenFile() (the web-identity provider, explicitly), then GetCallerIdentity.
//   node sts-client.mjs assume-role-with-web-identity ROLE_ARN TOKEN_FILE [SESSION] [DURATION] [MIN_TOKEN_SIZE]
//   node sts-client.mjs assume-role ROLE_ARN SESSION [POLICY_JSON]
//   node sts-client.mjs access-key-info ACCESS_KEY_ID
// Prints one JSON line: the result, or {"error": {"name", "status", "message"}} with exit code 1.

import { readFileSync } from 'node:fs';
import {
  STSClient,
  GetCallerIdentityCommand,
  AssumeRoleWithWebIdentityCommand,
  AssumeRoleCommand,
  GetAccessKeyInfoCommand,
} from '@aws-sdk/client-sts';
import { fromTokenFile } from '@aws-sdk/credential-providers';

const region = process.env.AWS_REGION ?? 'us-east-1';
const [cmd, ...args] = process.argv.slice(2);

function client(credentials) {
  return new STSClient({ region, maxAttempts: 1, ...(credentials ? { credentials } : {}) });
}

async function run() {
  switch (cmd) {
    case 'caller-identity': {
      const out = await client().send(new GetCallerIdentityCommand({}));
      return { Arn: out.Arn, Account: out.Account, UserId: out.UserId };
    }
    case 'web-identity-caller-identity': {
      const creds = await fromTokenFile({ clientConfig: { region, maxAttempts: 1 } })();
      const out = await client(creds).send(new GetCallerIdentityCommand({}));
      return {
        Arn: out.Arn,
        Account: out.Account,
        UserId: out.UserId,
        AccessKeyIdPrefix: creds.accessKeyId.slice(0, 4),
      };
    }
    case 'assume-role-with-web-identity': {
      const [roleArn, tokenFile, session = 'js-session', duration, minSize] = args;
      const out = await client({ accessKeyId: 'unused', secretAccessKey: 'unused' }).send(
        new AssumeRoleWithWebIdentityCommand({
          RoleArn: roleArn,
          RoleSessionName: session,
          WebIdentityToken: readFileSync(tokenFile, 'utf8').trim(),
          ...(duration ? { DurationSeconds: Number(duration) } : {}),
          ...(minSize ? { MinimumSessionTokenSize: Number(minSize) } : {}),
        }),
      );
      return {
        AssumedRoleUser: out.AssumedRoleUser,
        AccessKeyId: out.Credentials?.AccessKeyId,
        HasSecret: Boolean(out.Credentials?.SecretAccessKey),
        HasSessionToken: Boolean(out.Credentials?.SessionToken),
        Expiration: out.Credentials?.Expiration?.toISOString(),
        SubjectFromWebIdentityToken: out.SubjectFromWebIdentityToken,
        Audience: out.Audience,
        Provider: out.Provider,
        SessionTokenLength: out.Credentials?.SessionToken?.length,
        SessionTokenSize: out.SessionTokenSize,
        SessionTokenUtilization: out.SessionTokenUtilization,
      };
    }
    case 'assume-role': {
      const [roleArn, session, policy] = args;
      const out = await client().send(
        new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: session, ...(policy ? { Policy: policy } : {}) }),
      );
      return { AssumedRoleUser: out.AssumedRoleUser, AccessKeyId: out.Credentials?.AccessKeyId, PackedPolicySize: out.PackedPolicySize };
    }
    case 'access-key-info': {
      const out = await client().send(new GetAccessKeyInfoCommand({ AccessKeyId: args[0] }));
      return { Account: out.Account };
    }
    default:
      throw new Error(`unknown command ${cmd}`);
  }
}

try {
  const result = await run();
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (err) {
  const error = {
    name: err?.name ?? 'Error',
    code: err?.Code ?? err?.name,
    status: err?.$metadata?.httpStatusCode ?? null,
    message: String(err?.message ?? err),
  };
  process.stdout.write(`${JSON.stringify({ error })}\n`);
  process.exitCode = 1;
}
