"""Calls to the recommendations API as an app makes them: plain HTTP on the stack's API."""

import json
import urllib.error
import urllib.request


def get(stack, path, headers=None, body=None):
    """GET, or POST of `body` as JSON: (status, JSON body, headers)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(stack.api_url() + path, headers={**(headers or {}), "Content-Type": "application/json"},
                                     data=data)
    try:
        # above the API's own 10 s wait for a writer connection, so that a test gets the API's
        # answer (a 503) and not a timeout of its own, which raced it
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None, {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, json.loads(body) if body else None, {k.lower(): v for k, v in error.headers.items()}
