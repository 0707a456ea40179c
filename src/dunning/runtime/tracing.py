"""The functions' X-Ray tracer (Powertools' Tracer, with `Tracing: Active` in infra/template.yaml)."""

from __future__ import annotations

from aws_lambda_powertools import Tracer

# The functions' only outbound calls are AWS API calls, so botocore is the one library worth patching.
# Tracer's default (the X-Ray SDK's patch_all) also imports and patches sqlite3, http.client and whatever of
# requests, httpx and the database drivers it finds on sys.path, none of which a function uses: most of the
# tracer's cost at a cold start (issue 12). botocore's calls are traced the same either way.
TRACED_MODULES = ("botocore",)


def lambda_tracer() -> Tracer:
    """A handler's tracer: made at import, like Powertools' own `Tracer()`, so that every AWS call of the
    first invocation is traced too (the X-Ray SDK is loaded when tracing is on, which it is deployed)."""
    return Tracer(patch_modules=TRACED_MODULES)
