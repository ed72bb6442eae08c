"""Server-sent events from a streamed HTTP body, for the providers' hot path.

The anthropic SDK builds a pydantic model of every event it reads (~100 µs
of CPU per streamed token at 200 calls in flight: a third of the worker's
CPU, bench/worker.py realistic workload). The provider asks the SDK for the
raw streamed body instead (``with_streaming_response``: the SDK still builds
the request, authenticates and raises its typed errors for HTTP failures)
and reads the events here: split on blank lines, fields per the SSE spec,
``data`` parsed with orjson.
"""

import orjson

# OpenAI's chat completions stream ends with this data line, which is not JSON: it is
# yielded as these bytes, for the reader to recognise.
DONE = b"[DONE]"


def _normalise(pending):
    """LF line ends (the spec allows CRLF and CR; the APIs send LF). A CR at
    the very end stays as it is: its LF may come with the next chunk."""
    if b"\r" not in pending:
        return pending
    tail = b"\r" if pending.endswith(b"\r") else b""
    body = pending[: len(pending) - len(tail)]
    return body.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + tail


def _event(block):
    """(event name, data bytes) of one frame; name '' when it has none."""
    name, data = "", []
    for line in block.split(b"\n"):
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"event":
            name = value.decode()
        elif field == b"data":
            data.append(value)
    return name, b"\n".join(data) if data else None


async def events(chunks):
    """(event name, parsed data) for each frame with data, from an async
    iterator of body bytes. A frame cut off by the end of the body is dropped."""
    pending = b""
    async for chunk in chunks:
        pending = _normalise(pending + chunk)
        *blocks, pending = pending.split(b"\n\n")
        for block in blocks:
            name, data = _event(block)
            if data is not None:
                yield name, DONE if data == DONE else orjson.loads(data)
