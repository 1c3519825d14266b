"""A REQUEST authorizer: ?token=allow-<user> allows, ?token=deny denies, ?token=crash raises."""


def handler(event, context):
    token = event["queryStringParameters"]["token"]
    if token == "crash":
        raise RuntimeError("authorizer crashed")
    effect = "Allow" if token.startswith("allow") else "Deny"
    return {
        "principalId": token.removeprefix("allow-") or "anonymous",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}],
        },
        "context": {"role": "tester", "level": 3, "seenEvent": ",".join(sorted(event))},
    }
