"""moto_server, with its authentication extended to S3 requests signed in the query string.

Usage: PYTHON moto_query_auth.py [moto_server's arguments]

facerec-model signs its S3 requests with rusty-s3, which puts AWS Signature Version 4 in the query
string (X-Amz-Credential, X-Amz-Signature, ...), as AWS, MinIO and Ceph accept. moto 5 checks
signatures in the Authorization header only: a query-signed request reaches its check without
one and fails with a KeyError (500), so wrong credentials could not be seen as refused.

This teaches moto's own check the query form and nothing else: moto still looks the key up in
its IAM backend (unknown key: InvalidAccessKeyId) and applies the user's policy; the expected
signature is computed by botocore's S3SigV4QueryAuth, an implementation independent of
rusty-s3 (mismatch: SignatureDoesNotMatch). Requests with an Authorization header are
untouched.
"""

import sys

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from moto.iam import access_control
from moto.server import main

Base = access_control.IAMRequestBase
original_init = Base.__init__
original_check = Base.check_signature


def query_params(path):
    pairs = (p.partition("=") for p in path.partition("?")[2].split("&") if p)
    return {k: v for k, _, v in pairs}


def init(self, *args, **kwargs):
    headers = kwargs["headers"]
    query = query_params(kwargs["path"])
    self._query_auth = None
    if "Authorization" not in headers and "X-Amz-Credential" in query:
        from urllib.parse import unquote

        self._query_auth = {k: unquote(v) for k, v in query.items()}
        q = self._query_auth
        # moto reads the key and the credential scope from this header only.
        headers = dict(headers)
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={q['X-Amz-Credential']}, "
            f"SignedHeaders={q.get('X-Amz-SignedHeaders', '')}, "
            f"Signature={q.get('X-Amz-Signature', '')}"
        )
        if "X-Amz-Security-Token" in q:
            headers["X-Amz-Security-Token"] = q["X-Amz-Security-Token"]
        kwargs["headers"] = headers
    original_init(self, *args, **kwargs)


def check_signature(self):
    q = self._query_auth
    if q is None:
        return original_check(self)
    path, _, raw_query = self._path.partition("?")
    # The canonical query string is the request's own, less the signature.
    unsigned = "&".join(
        p for p in raw_query.split("&") if p and not p.startswith("X-Amz-Signature=")
    )
    signed = q.get("X-Amz-SignedHeaders", "").lower().split(";")
    request = AWSRequest(
        method=self._method,
        url=f"{path}?{unsigned}",
        headers={k: v for k, v in self._headers.items() if k.lower() in signed},
    )
    request.context["timestamp"] = q.get("X-Amz-Date", "")
    auth = S3SigV4QueryAuth(
        self._access_key.create_credentials(),
        self._service,
        self._region,
        expires=int(q.get("X-Amz-Expires", "0")),
    )
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if expected != q.get("X-Amz-Signature"):
        self._raise_signature_does_not_match()


Base.__init__ = init
Base.check_signature = check_signature

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
